"""The schema of eval/scores.json as pydantic models; the eval stage validates before writing.

    python -c "from eval.schema import ScoresDocument as S; import json; print(json.dumps(S.model_json_schema())[:80])"

`tunebot.eval.scores/3`: every score is 0-100, the mean of per-example scores over the examples
that define it, with a bootstrap 95% CI and the tokenizer it was computed with; BLEU and chrF add
the corpus-level value; eval/registry.py says which way is better. New in /3: the correctness
metrics (answer_match, key_facts, unsupported_facts), the `retrieval` system and section (the
retriever's recall), `answer_class`, comparison rows' `better`, and `recommendation`. The README
documents the same fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eval.registry import MetricName
from tunebot.systems import SystemName


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
    better: bool = Field(description="a's difference is an improvement (for unsupported_facts: lower).")
    n: int = Field(ge=1)
    verdict: str


class QuestionsSection(_Strict):
    """The user's own questions (eval.questions), answered and scored like the test split."""

    files: list[str]
    n: int = Field(ge=1)
    langs: dict[str, int]
    answerable: int = Field(ge=0, description="Questions whose answer class occurs in training.")
    systems: dict[SystemName, SystemEntry]


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


class RecallFigures(_Strict):
    """The retriever on the test records: a hit is a training pair of the record's answer class."""

    n: int = Field(ge=0)
    answerable: int = Field(ge=0, description="Records whose answer class occurs in training at all.")
    retrieved: int = Field(ge=0, description="Records for which some pair was close enough.")
    recall_at_1: float = Field(ge=0, le=100)
    recall_at_3: float = Field(ge=0, le=100)


class RetrievalSection(RecallFigures):
    """The retriever's settings and recall, overall and per language."""

    k: int = Field(ge=1)
    min_coverage: float = Field(ge=0, le=1)
    by_lang: dict[str, RecallFigures]


class Test(_Strict):
    """The top system against a simpler one on the deciding metric (diff = top - other)."""

    a: SystemName
    b: SystemName
    diff: float
    p_value: float = Field(ge=0, le=1)
    p_holm: float = Field(ge=0, le=1)
    significant: bool
    n: int = Field(ge=0)


class Mean(_Strict):
    """A system's mean on the deciding metric with its bootstrap 95% CI."""

    mean: float
    ci_low: float
    ci_high: float
    n: int = Field(ge=1)


class Cost(_Strict):
    """What shipping a system costs."""

    latency_s_median: float | None = Field(
        description="Median seconds per answer in this eval (search time for retrieval).")
    needs: str
    on_faq_change: str


class Evidence(_Strict):
    """What the recommendation rests on: every system's mean, and the top system's paired tests."""

    means: dict[SystemName, Mean]
    tests: list[Test]


class Recommendation(_Strict):
    """The one system to ship, the rule that chose it and what it rests on."""

    system: SystemName
    metric: Literal["judge", "answer_match", "key_facts", "chrf"]
    top: SystemName
    rule: str
    evidence: Evidence
    costs: dict[SystemName, Cost]
    flags: dict[SystemName, list[str]]
    warnings: list[str]


class ScoresDocument(_Strict):
    """eval/scores.json."""

    schema_: Literal["tunebot.eval.scores/3"] = Field(alias="schema")
    run: str
    backend: Literal["hf", "vllm", "openai", "none"]
    n: int = Field(ge=1)
    langs: dict[str, int]
    rag_k: int = Field(ge=1)
    decoding: dict[str, float | int]
    answer_class: Literal["answer", "category"]
    systems: dict[SystemName, SystemEntry]
    comparisons: list[ComparisonRow]
    retrieval: RetrievalSection | None
    questions: QuestionsSection | None
    forgetting: ProbeSection | None
    judge: dict[SystemName, JudgeEntry] | None
    recommendation: Recommendation


def validate_scores(document: dict[str, Any]) -> ScoresDocument:
    """Validates a scores.json document; raises pydantic.ValidationError naming the bad field."""
    return ScoresDocument.model_validate(document)
