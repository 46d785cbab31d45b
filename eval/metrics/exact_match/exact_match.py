"""Exact match as an `evaluate` module: answers equal after `tunebot.text.normalize_answer`.

    python -m pytest -q tests/test_eval_metrics.py -k exact_match

Normalization is NFKC (full-width and half-width forms agree), lower case, punctuation removed
(ASCII and Japanese 、。！？「」…), spaces collapsed, and spaces next to Japanese removed.
Load it from this path (evaluate.load("exact_match") goes to the Hub). Imports stay one per
line: evaluate parses them to check dependencies.
"""

import datasets
import evaluate
from tunebot.text import normalize_answer

_DESCRIPTION = "Share of answers equal to their reference after normalization, 0-100."

_INPUTS = """
Args:
    predictions: list of strings, one model answer per line.
    references: list of strings, one reference per line.
    langs: optional list of "ja"/"en"; accepted for a uniform interface, normalization does
        not depend on it.
Returns:
    exact_match: mean over lines, 0-100.
    tokenizer: "normalize_answer" (no tokens: whole normalized strings are compared).
    per_example: 100.0 or 0.0 per line.
Examples:
    >>> exact_match = evaluate.load("eval/metrics/exact_match/exact_match.py")
    >>> exact_match.compute(predictions=["はい、できます。"], references=["はい できます"])["exact_match"]
    100.0
"""

_CITATION = """\
@inproceedings{rajpurkar-etal-2016-squad,
  title = "{SQ}u{AD}: 100,000+ Questions for Machine Comprehension of Text",
  author = "Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy",
  booktitle = "Proceedings of EMNLP",
  year = "2016",
  pages = "2383--2392",
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class ExactMatch(evaluate.Metric):
    """Exact match of normalized answers."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions: list[str], references: list[str], langs: list[str] | None = None) -> dict:
        if not references:
            raise ValueError("exact_match: no lines to score")
        if langs is not None and len(langs) != len(references):
            raise ValueError(f"got {len(langs)} languages for {len(references)} lines")
        per_example = [
            100.0 * (normalize_answer(prediction) == normalize_answer(reference))
            for prediction, reference in zip(predictions, references)
        ]
        return {
            "exact_match": sum(per_example) / len(per_example),
            "tokenizer": "normalize_answer",
            "per_example": per_example,
        }
