"""The registry of systems that eval scores, the report recommends and serve answers with.

    python -c "from tunebot.systems import SYSTEMS; print(list(SYSTEMS))"

One entry per system: which model answers (none for `retrieval`), whether retrieved pairs go
into its prompt, and what shipping it costs. `simplicity` orders the systems for the
recommendation: when a more complex system is not significantly better, the simpler one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Model = Literal["base", "tuned"]


@dataclass(frozen=True)
class System:
    """One way of answering a customer's question."""

    name: str
    model: Model | None  # None: no model at all (the retrieved answer verbatim)
    retrieves: bool  # retrieved training pairs are part of its answer or prompt
    simplicity: int  # lower = simpler to ship and keep
    description: str
    needs_gpu: str  # what serving it needs, in words
    on_faq_change: str  # what a change of the FAQ costs

    @property
    def generates(self) -> bool:
        """Says whether a language model writes the answer."""
        return self.model is not None


SYSTEMS: dict[str, System] = {
    system.name: system
    for system in (
        System("retrieval", None, True, 0, "the verbatim answer of the top retrieved training pair (no model)",
               "no model, no GPU: a search over the FAQ (milliseconds on a CPU)",
               "none: the index is rebuilt from the FAQ at startup"),
        System("base", "base", False, 1, "the base model alone",
               "a language model server (a GPU for production traffic)",
               "none, but it never learns the FAQ"),
        System("rag", "base", True, 2, "the base model with the top-k retrieved pairs in its prompt",
               "a language model server (a GPU for production traffic) + the search",
               "none: the index is rebuilt from the FAQ at startup"),
        System("tuned", "tuned", False, 3, "the fine-tuned model alone",
               "a language model server (a GPU for production traffic)",
               "retraining: what it knows of the FAQ is in its weights"),
        System("tuned_rag", "tuned", True, 4, "the fine-tuned model with the top-k retrieved pairs in its prompt",
               "a language model server (a GPU for production traffic) + the search",
               "changed answers reach it through the index at once; retrain when the FAQ changes a lot"),
    )
}
SYSTEM_NAMES = tuple(SYSTEMS)
SystemName = Literal[SYSTEM_NAMES]  # type: ignore[valid-type]  # for pydantic fields: the names above


def model_of(system: str) -> Model | None:
    """Says which model answers for a system: model_of('tuned_rag') -> 'tuned'; 'retrieval' -> None."""
    return SYSTEMS[system].model
