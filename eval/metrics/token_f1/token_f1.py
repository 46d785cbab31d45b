"""Token F1 as an `evaluate` module: SQuAD-style bag-of-words overlap with Japanese-aware tokens.

    python -m pytest -q tests/test_eval_metrics.py -k token_f1

Tokens come from `tunebot.text.tokenize_words` (MeCab words for Japanese, word tokens for
English; lower-cased, punctuation dropped). Unlike SQuAD, English articles are kept: the
answers here are sentences, not short spans. Load it from this path. Imports stay one per
line: evaluate parses them to check dependencies.
"""

from collections import Counter

import datasets
import evaluate
from tunebot.text import line_langs
from tunebot.text import tokenize_words
from tunebot.text import word_tokenizer_name

_DESCRIPTION = "SQuAD-style token F1 over language-aware word tokens, mean over lines, 0-100."

_INPUTS = """
Args:
    predictions: list of strings, one model answer per line.
    references: list of strings, one reference per line.
    langs: optional list of "ja"/"en", one per line; detected from the reference if omitted.
Returns:
    f1: mean token F1 over lines, 0-100.
    tokenizer: word tokenizer(s) used, e.g. "words", "mecab-unidic" or "mecab-unidic+words".
    per_example: token F1 per line, 0-100.
Examples:
    >>> token_f1 = evaluate.load("eval/metrics/token_f1/token_f1.py")
    >>> token_f1.compute(predictions=["the cat sat"], references=["the cat ran"])["f1"]
    66.66666666666666
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

# Languages in the order their tokenizer names are joined ("mecab-unidic+words").
LANG_ORDER = ("ja", "en")


def token_f1(prediction_tokens: list[str], reference_tokens: list[str]) -> float:
    """Returns bag-of-tokens F1 in 0-1: token_f1(['a', 'b'], ['a', 'c']) -> 0.5.

    Two empty token lists agree (1.0); one empty side scores 0.0, as in SQuAD's evaluation.
    """
    if not prediction_tokens or not reference_tokens:
        return float(prediction_tokens == reference_tokens)
    shared = sum((Counter(prediction_tokens) & Counter(reference_tokens)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(prediction_tokens)
    recall = shared / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class TokenF1(evaluate.Metric):
    """Bag-of-tokens F1 with a per-line language-aware tokenizer."""

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
            raise ValueError("token_f1: no lines to score")
        line_lang = line_langs(references, langs)
        per_example = [
            100 * token_f1(tokenize_words(prediction, lang), tokenize_words(reference, lang))
            for prediction, reference, lang in zip(predictions, references, line_lang)
        ]
        used = [word_tokenizer_name(lang) for lang in LANG_ORDER if lang in line_lang]
        return {"f1": sum(per_example) / len(per_example), "tokenizer": "+".join(used), "per_example": per_example}
