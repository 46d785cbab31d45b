"""key_facts as an `evaluate` module: the share of the reference's key facts that the reply states.

    python -m pytest -q tests/test_eval_correctness.py -k key_facts

Facts are amounts, numbers with units, dates, times, durations, e-mail addresses, URLs, phone
numbers, codes and quoted UI labels, normalised for width, thousands separators and range
dashes (eval/facts.py), so 「１４日」 states the fact of "14日" and "¥5,500" that of "5500円"; a UI
label is stated when its words appear in the reply, quoted or not.
A line whose reference states no fact gets None and is left out of the mean. Load it from this
path. Imports stay one per line: evaluate parses them to check dependencies.
"""

import datasets
import evaluate
from eval.facts import extract_facts
from eval.facts import missing_facts

_DESCRIPTION = "Recall of the reference's key facts (numbers with units, dates, contacts, UI labels), 0-100."

_INPUTS = """
Args:
    predictions: list of strings, one model answer per line.
    references: list of strings, the reference answer of each line.
Returns:
    key_facts: mean recall over lines whose reference states a fact, 0-100 (None when none does).
    tokenizer: "facts".
    per_example: recall per line, 0-100, or None.
Examples:
    >>> key_facts = evaluate.load("eval/metrics/key_facts/key_facts.py")
    >>> key_facts.compute(predictions=["送料は５５０円です。"],
    ...                   references=["送料は550円、5,500円以上で無料です。"])["key_facts"]
    50.0
"""


def fact_recall(prediction: str, reference: str) -> float | None:
    """Returns 100 x the share of the reference's facts found in the prediction, or None if it has none."""
    wanted = extract_facts(reference)
    if not wanted:
        return None
    return 100.0 * (len(wanted) - len(missing_facts(wanted, prediction))) / len(wanted)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class KeyFacts(evaluate.Metric):
    """Recall of normalised key facts."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str], references: list[str], langs: list[str] | None = None) -> dict:
        per_example = [fact_recall(prediction, reference) for prediction, reference in zip(predictions, references)]
        scored = [value for value in per_example if value is not None]
        mean = sum(scored) / len(scored) if scored else None
        return {"key_facts": mean, "tokenizer": "facts", "per_example": per_example}
