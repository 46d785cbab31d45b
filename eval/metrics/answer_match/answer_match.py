"""answer_match as an `evaluate` module: is the reply closer to its own reference than to any other answer?

    python -m pytest -q tests/test_eval_correctness.py -k answer_match

A reply that shares words with the reference but answers another question is wrong, and overlap
metrics cannot see that. Here each line comes with its pool: the distinct answers of the data in
the line's language that are not its reference's (other FAQ entries). The reply scores 100 when
its sentence chrF against the reference is higher than against every answer of the pool, and it
states every key fact of the reference (amounts, numbers with units, dates, times, contacts,
codes, UI labels: eval/facts.py; a label counts quoted or not), else 0. A tie, an empty reply or
a refusal is 0; so is a reply on the right topic that leaves out the reference's facts
("shipping depends on where you live" to "Shipping is ¥550"), or that only repeats the
question's words. A line without a pool (None: nothing to tell apart)
gets None and is left out of the mean. A pool may instead be {"others": [...], "kin": [...]}
(eval.answer_class: category, for support logs whose replies are all worded anew): then the
reply must be closer to its reference or to another answer of its class (kin) than to every
answer of another class, and the reference's own facts are not required (another agent's reply
of the same intent states other details; key_facts still reports them). With pools of more than CANDIDATES answers, chrF
is computed for the CANDIDATES closest by character 3-gram overlap (the others cannot come close). Load it from this
path. Imports stay one per line: evaluate parses them to check dependencies.
"""

import datasets
import evaluate
from eval.facts import extract_facts
from eval.facts import missing_facts
from sacrebleu.metrics import CHRF

_DESCRIPTION = ("100 when the reply states the reference's facts and is closer (sentence chrF) to it than to every"
                " other answer.")

_INPUTS = """
Args:
    predictions: list of strings, one model answer per line.
    references: list of strings, the reference answer of each line.
    pools: list, one per line: the competing answers (list of strings), or None where undefined.
Returns:
    answer_match: mean over lines with a pool, 0-100 (None when no line has one).
    tokenizer: "chrF-nearest".
    per_example: 100, 0 or None per line.
Examples:
    >>> answer_match = evaluate.load("eval/metrics/answer_match/answer_match.py")
    >>> answer_match.compute(predictions=["Returns within 30 days."], references=["Return within 30 days."],
    ...                      pools=[["Shipping is free."]])["answer_match"]
    100.0
"""

CANDIDATES = 32


def _grams(text: str) -> set[str]:
    squashed = "".join(text.split()).lower()
    return {squashed[i:i + 3] for i in range(max(1, len(squashed) - 2))}


def closest_competitors(prediction: str, pool: list[str], limit: int = CANDIDATES) -> list[str]:
    """The answers of the pool sharing the most character 3-grams with the prediction (all if few)."""
    if len(pool) <= limit:
        return list(pool)
    mine = _grams(prediction)
    ranked = sorted(pool, key=lambda answer: -len(mine & _grams(answer)) / (len(mine | _grams(answer)) or 1))
    return ranked[:limit]


def matches(prediction: str, reference: str, pool: list[str] | dict, metric: CHRF) -> bool:
    """Says whether the prediction states the reference's facts and is strictly closer to it than to every pool answer
    (a class pool: closer to an answer of the reference's class than to every answer of another)."""
    if isinstance(pool, dict):
        if not prediction.strip():
            return False
        kin = closest_competitors(prediction, [reference, *pool["kin"]])
        own = max(metric.sentence_score(prediction, [answer]).score for answer in kin)
        return own > 0 and all(metric.sentence_score(prediction, [other]).score < own
                               for other in closest_competitors(prediction, pool["others"]))
    if not prediction.strip() or missing_facts(extract_facts(reference), prediction):
        return False
    own = metric.sentence_score(prediction, [reference]).score
    if own <= 0:
        return False
    return all(metric.sentence_score(prediction, [other]).score < own
               for other in closest_competitors(prediction, pool))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class AnswerMatch(evaluate.Metric):
    """Nearest-answer correctness by sentence chrF."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str], references: list[str], pools: list | None = None,
                 langs: list[str] | None = None) -> dict:
        pools = pools if pools is not None else [None] * len(references)
        if len(pools) != len(references):
            raise ValueError(f"answer_match: {len(pools)} pools for {len(references)} lines")
        metric = CHRF()
        per_example = [None if pool is None else 100.0 * matches(prediction, reference, pool, metric)
                       for prediction, reference, pool in zip(predictions, references, pools)]
        scored = [value for value in per_example if value is not None]
        mean = sum(scored) / len(scored) if scored else None
        return {"answer_match": mean, "tokenizer": "chrF-nearest", "per_example": per_example}
