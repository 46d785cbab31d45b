"""Exact match as an `evaluate` module: answers whose word tokens are the same, in order.

    python -m pytest -q tests/test_eval_metrics.py -k exact_match

The tokens are token F1's and ROUGE's (`tunebot.text.tokenize_words`: NFKC, so full-width and
half-width forms agree; lower case; punctuation dropped; MeCab words for Japanese), so an exact
match always has token F1 100. A number keeps its separators (500 != 5.00, 15 != 1.5; only the
thousands separator goes: 5,500 == 5500).
Load it from this path (evaluate.load("exact_match") goes to the Hub). Imports stay one per
line: evaluate parses them to check dependencies.
"""

import datasets
import evaluate
from tunebot.text import line_langs
from tunebot.text import tokenize_words
from tunebot.text import word_tokenizer_name

_DESCRIPTION = "Share of answers equal to their reference after normalization, 0-100."

_INPUTS = """
Args:
    predictions: list of strings, one model answer per line.
    references: list of strings, one reference per line.
    langs: optional list of "ja"/"en", one per line; detected from the reference if omitted.
Returns:
    exact_match: mean over lines, 0-100.
    tokenizer: word tokenizer(s) used, e.g. "words", "mecab-unidic" or "mecab-unidic+words".
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
        line_lang = line_langs(references, langs)
        per_example = [
            100.0 * (tokenize_words(prediction, lang) == tokenize_words(reference, lang))
            for prediction, reference, lang in zip(predictions, references, line_lang)
        ]
        return {
            "exact_match": sum(per_example) / len(per_example),
            "tokenizer": "+".join(word_tokenizer_name(lang) for lang in ("ja", "en") if lang in line_lang),
            "per_example": per_example,
        }
