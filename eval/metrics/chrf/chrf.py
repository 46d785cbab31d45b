"""chrF as an `evaluate` module: sacrebleu's character n-gram F-score, the same for every language.

    python -m pytest -q tests/test_eval_metrics.py -k chrf

chrF compares character 6-grams (whitespace removed), so it needs no word segmentation and is
directly meaningful for Japanese; the recorded tokenizer is "char6" (sacrebleu's signature
calls it nc:6 nw:0). Corpus chrF plus a sentence chrF per line. Load it from this path.
Imports stay one per line: evaluate parses them to check dependencies.
"""

import datasets
import evaluate
from sacrebleu.metrics import CHRF

_DESCRIPTION = "Corpus chrF (sacrebleu, character 6-grams, beta 2), 0-100, language independent."

_INPUTS = """
Args:
    predictions: list of strings, one model answer per line.
    references: list of strings, or list of lists of strings for several references per line.
    langs: accepted for a uniform interface; chrF does not depend on the language.
Returns:
    chrf: corpus chrF, 0-100.
    tokenizer: "char6".
    per_example: sentence chrF per line, 0-100.
Examples:
    >>> chrf = evaluate.load("eval/metrics/chrf/chrf.py")
    >>> chrf.compute(predictions=["The cat sat."], references=["The cat sat."])["chrf"]
    100.0
"""

_CITATION = """\
@inproceedings{popovic-2015-chrf,
  title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
  author = "Popovi{\\'c}, Maja",
  booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
  year = "2015",
  pages = "392--395",
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Chrf(evaluate.Metric):
    """sacrebleu chrF (character n-grams only, as in sacrebleu's default)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Sequence(datasets.Value("string")),
                    }
                ),
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
                ),
            ],
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions: list[str], references: list, langs: list[str] | None = None) -> dict:
        reference_lists = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
        if not reference_lists or any(not refs for refs in reference_lists):
            raise ValueError("chrf: every line needs at least one reference")
        width = max(len(refs) for refs in reference_lists)
        streams = [[refs[i] if i < len(refs) else None for refs in reference_lists] for i in range(width)]
        metric = CHRF()
        corpus = metric.corpus_score(predictions, streams)
        per_example = [metric.sentence_score(prediction, refs).score
                       for prediction, refs in zip(predictions, reference_lists)]
        return {"chrf": corpus.score, "tokenizer": "char6", "per_example": per_example}
