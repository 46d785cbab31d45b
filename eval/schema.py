"""The schema of eval/scores.json as pydantic models; the eval stage validates before writing.

    python -c "from eval.schema import ScoresDocument; import json; print(json.dumps(ScoresDocument.model_json_schema())[:80])"

`tunebot.eval.scores/2`: every score is 0-100, higher is better, the mean of per-example scores
with a bootstrap 95% CI and the tokenizer it was computed with; BLEU and chrF add the corpus-level
value. The README documents the same fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SystemName = Literal["base", "tuned", "rag", "tuned_rag"]
MetricName = Literal["bleu", "chrf", "rouge1", "rouge2", "rougeL", "f1", "exact_match"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricEntry(_Strict):
    """One metric of one system: mean [ci_low, ci_high] over n examples, with its tokenizer."""

    mean: float = Field(ge=0, le=100)
    ci_low: float = Field(ge=0, le=100)
    ci_high: float = Field(ge=0, le=100)
    n: int = Field(ge=1)
    tokenizer: str = Field(min_length=1)
    corpus: float | None = Field(None, ge=0, le=100, description="Corpus-level BLEU / chrF.")

    @model_validator(mode="after")
    def _ordered(self) -> "MetricEntry":
        if not self.ci_low - 1e-6 <= self.mean <= self.ci_high + 1e-6:
            raise ValueError(f"mean {self.mean} outside its CI [{self.ci_low}, {self.ci_high}]")
        return self


Metrics = dict[MetricName, MetricEntry]


class SystemEntry(_Strict):
    """A system's metrics, and per language when the test set mixes languages."""

    metrics: Metrics
    by_lang: dict[str, Metrics] | None = None


class ComparisonRow(_Strict):
    """A paired test of system a against system b on one metric."""

    a: SystemName
    b: SystemName
    metric: MetricName
    diff: float
    p_value: float = Field(ge=0, le=1)
    p_holm: float = Field(ge=0, le=1)
    significant: bool
    n: int = Field(ge=1)
    verdict: str


class ProbeSection(_Strict):
    """The forgetting probe: base and tuned on general questions."""

    n: int = Field(ge=1)
    langs: dict[str, int]
    systems: dict[Literal["base", "tuned"], SystemEntry]
    comparisons: list[ComparisonRow]


class JudgeEntry(_Strict):
    """A system's judge scores: mean 1-5 over the answers judged; failures counted apart."""

    mean: float | None = Field(None, ge=1, le=5)
    n: int = Field(ge=0)
    failed: int = Field(ge=0)


class ScoresDocument(_Strict):
    """eval/scores.json."""

    schema_: Literal["tunebot.eval.scores/2"] = Field(alias="schema")
    run: str
    backend: Literal["hf", "vllm", "openai"]
    n: int = Field(ge=1)
    langs: dict[str, int]
    rag_k: int = Field(ge=1)
    decoding: dict[str, float | int]
    systems: dict[SystemName, SystemEntry]
    comparisons: list[ComparisonRow]
    forgetting: ProbeSection | None
    judge: dict[SystemName, JudgeEntry] | None


def validate_scores(document: dict[str, Any]) -> ScoresDocument:
    """Validates a scores.json document; raises pydantic.ValidationError naming the bad field."""
    return ScoresDocument.model_validate(document)
