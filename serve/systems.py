"""Every evaluated system behind one gateway: retrieval, rag and tuned_rag beside base and tuned.

    tunebot serve runs/acme-demo          # model="retrieval" | "base" | "rag" | "tuned" | "tuned_rag"

`rag` and `tuned_rag` search the FAQ with the retriever eval uses (tunebot.retrieval) and put the
hits into the system message with the prompt eval uses (tunebot.prompts.with_context), then ask
the base or tuned engine; `retrieval` answers with the top pair's answer itself (or the fallback),
no model involved. A shipped bot knows the whole FAQ, so the index holds every kept record:
train, val and test (the held-out splits are for measuring, not for hiding answers from
customers). The ids of the pairs used travel with each response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunebot.config_eval import RetrievalConfig
from tunebot.prompts import Message, with_context
from tunebot.retrieval import build_index
from tunebot.rundir import read_jsonl
from tunebot.systems import SYSTEMS
from tunebot.text import detect_lang

SPLITS = ("train", "val", "test")


@dataclass
class Plan:
    """How one request is answered: which engine model and prompt, or a ready answer."""

    system: str
    model: str | None  # the engine model; None = answered without a model (`answer`)
    messages: list[Message]
    retrieved: list[str] = field(default_factory=list)
    answer: str | None = None


def index_records(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every kept record of the run (train + val + test) and how many came from each split."""
    records, counts = [], {}
    for split in SPLITS:
        path = run_dir / "data" / f"{split}.jsonl"
        found = list(read_jsonl(path)) if path.is_file() else []
        counts[split] = len(found)
        records += found
    return records, counts


class SystemRouter:
    """Maps a requested system onto an engine model and prompt (retrieval: onto an answer)."""

    def __init__(self, engine: Any, records: list[dict[str, Any]] | None = None,
                 cfg: RetrievalConfig | None = None) -> None:
        self.engine, self.cfg = engine, cfg or RetrievalConfig()
        self.index = build_index(records, self.cfg) if records else None

    def names(self) -> list[str]:
        """The systems served, simplest first: those whose model the engine has, and retrieval with an index."""
        models = set(self.engine.names())
        found = []
        for name, system in sorted(SYSTEMS.items(), key=lambda item: item[1].simplicity):
            if system.retrieves and self.index is None:
                continue
            if system.model is None or system.model in models:
                found.append(name)
        return found

    def plan(self, system: str, messages: list[Message]) -> Plan:
        """How to answer `messages` (system prompt first) as `system`, the same way eval asked it."""
        entry = SYSTEMS[system]
        if not entry.retrieves:
            return Plan(system, entry.model, messages)
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        k = 1 if entry.model is None else self.cfg.k
        if not isinstance(k, int):
            raise ValueError("retrieval.k is auto: resolve it first (tunebot.retrieval.resolve_k)")
        hits = self.index.search(question, k) if self.index is not None else []
        ids = [hit.record_id for hit in hits]
        if entry.model is None:
            lang = detect_lang(question)
            answer = hits[0].answer if hits else self.cfg.fallback.get(lang, self.cfg.fallback["en"])
            return Plan(system, None, messages, ids, answer)
        return Plan(system, entry.model, with_context(messages, hits), ids)
