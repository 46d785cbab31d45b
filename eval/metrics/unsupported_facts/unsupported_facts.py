"""unsupported_facts as an `evaluate` module: does the reply state a fact given nowhere? (lower is better)

    python -m pytest -q tests/test_eval_correctness.py -k unsupported

A reply scores 100 when it states at least one key fact (eval/facts.py) that appears neither in
its reference nor in its context (the retrieved pairs, for systems that retrieve; a quoted label
is supported when its words appear there, quoted or not), else 0; the
mean is the share of replies with an invented fact: the hallucination rate. `details` lists the
unsupported facts of each line, for the report. Load it from this path. Imports stay one per
line: evaluate parses them to check dependencies.
"""

import datasets
import evaluate
from eval.facts import unsupported_facts

_DESCRIPTION = ("Share of replies stating a key fact found in neither the reference nor the context, 0-100, lower is"
                " better.")

_INPUTS = """
Args:
    predictions: list of strings, one model answer per line.
    references: list of strings, the reference answer of each line.
    contexts: optional list, one per line, of the texts the system was given (retrieved pairs).
Returns:
    unsupported_facts: share of lines with an unsupported fact, 0-100.
    tokenizer: "facts".
    per_example: 100 or 0 per line.
    details: the unsupported facts of each line, sorted.
Examples:
    >>> unsupported = evaluate.load("eval/metrics/unsupported_facts/unsupported_facts.py")
    >>> unsupported.compute(predictions=["送料は100円です。"], references=["送料は550円です。"])["unsupported_facts"]
    100.0
"""


def unsupported(prediction: str, reference: str, context: list[str] | None = None) -> list[str]:
    """Returns the facts of the prediction found in neither the reference nor the context, sorted."""
    return unsupported_facts(prediction, [reference, *(context or ())])


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class UnsupportedFacts(evaluate.Metric):
    """Replies that state facts given nowhere."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str], references: list[str], contexts: list | None = None,
                 langs: list[str] | None = None) -> dict:
        contexts = contexts if contexts is not None else [None] * len(references)
        if len(contexts) != len(references):
            raise ValueError(f"unsupported_facts: {len(contexts)} contexts for {len(references)} lines")
        details = [unsupported(p, r, c) for p, r, c in zip(predictions, references, contexts)]
        per_example = [100.0 if found else 0.0 for found in details]
        return {"unsupported_facts": sum(per_example) / len(per_example), "tokenizer": "facts",
                "per_example": per_example, "details": details}
