"""The metric registry: every score tunebot reports, with its module, normaliser and direction.

    python -c "from eval.registry import METRICS; print([m.name for m in METRICS.values()])"

The CLI table, report.md/html, scores.json (eval/schema.py), `tunebot score` and the
recommendation all read this one list. Correctness metrics come first: they decide; the overlap
metrics are kept for comparison with other tools. Each metric is an `evaluate` module under
eval/metrics/<module>/, returning its score under `key`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    """One reported score (0-100 per example)."""

    name: str  # the key in scores.json and predictions.jsonl
    label: str  # column header
    module: str  # evaluate module under eval/metrics/
    higher_is_better: bool
    kind: Literal["correctness", "overlap"]
    normaliser: str  # how texts are compared, in words (the tokenizer actually used is recorded per score)
    corpus: bool = False  # the module also returns a corpus-level value (BLEU, chrF)
    key: str = ""  # the module's result key; default = name

    @property
    def result_key(self) -> str:
        """The key the module returns the score under."""
        return self.key or self.name


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("answer_match", "Right", "answer_match", True, "correctness",
               "the reply states the reference's facts (but quoted labels) and its sentence chrF to the reference "
               "beats its chrF to every other answer of the data (same language); 100 or 0 a record"),
        Metric("key_facts", "Facts", "key_facts", True, "correctness",
               "recall of the reference's facts (amounts, numbers with units, dates, times, contacts, codes, "
               "quoted labels), NFKC width, thousands separators and range dashes folded"),
        Metric("unsupported_facts", "Invented", "unsupported_facts", False, "correctness",
               "replies stating a fact found in neither the reference nor the retrieved context (100 a record)"),
        Metric("bleu", "BLEU", "bleu", True, "overlap", "sacrebleu: 13a (en), ja-mecab (ja)", corpus=True),
        Metric("chrf", "chrF", "chrf", True, "overlap", "sacrebleu chrF: character 6-grams, beta 2", corpus=True),
        Metric("rouge1", "ROUGE-1", "rouge", True, "overlap", "rouge-score over language-aware words"),
        Metric("rouge2", "ROUGE-2", "rouge", True, "overlap", "rouge-score over language-aware words"),
        Metric("rougeL", "ROUGE-L", "rouge", True, "overlap", "rouge-score over language-aware words"),
        Metric("f1", "F1", "token_f1", True, "overlap", "SQuAD token F1 over language-aware words, NFKC"),
        Metric("exact_match", "EM", "exact_match", True, "overlap", "NFKC, lower case, punctuation removed"),
    )
}
METRIC_NAMES = tuple(METRICS)
MODULES = tuple(dict.fromkeys(metric.module for metric in METRICS.values()))
MetricName = Literal[METRIC_NAMES]  # type: ignore[valid-type]  # for pydantic fields: the names above
# The correctness metric the recommendation uses, in order of preference (the judge, when configured, comes first).
CORRECTNESS_ORDER = ("answer_match", "key_facts")


def label(name: str) -> str:
    """The column header of a metric: label('answer_match') -> 'Right'."""
    return METRICS[name].label
