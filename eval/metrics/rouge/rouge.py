"""ROUGE-1/2/L as an `evaluate` module: rouge-score with Japanese-aware word tokens.

    python -m pytest -q tests/test_eval_metrics.py -k rouge

rouge-score's default tokenizer keeps only [a-z0-9]: Japanese scores 0, or a false 1.0 when
the only shared tokens are digits. Every line here goes through `tunebot.text.tokenize_words`
for its language instead (MeCab words for Japanese, word tokens for English). Load it from
this path (evaluate.load("rouge") goes to the Hub). Imports stay one per line: evaluate parses
them to check dependencies.
"""

import functools

import datasets
import evaluate
from rouge_score import rouge_scorer
from tunebot.text import line_langs
from tunebot.text import tokenize_words
from tunebot.text import word_tokenizer_name

_DESCRIPTION = "ROUGE-1/2/L F-measure (rouge-score) over language-aware word tokens, 0-100."

_INPUTS = """
Args:
    predictions: list of strings, one model answer per line.
    references: list of strings, one reference per line.
    langs: optional list of "ja"/"en", one per line; detected from the reference if omitted.
Returns:
    rouge1, rouge2, rougeL: mean F-measure over lines, 0-100.
    tokenizer: word tokenizer(s) used, e.g. "words", "mecab-unidic" or "mecab-unidic+words".
    per_example: list of {"rouge1", "rouge2", "rougeL"} per line, 0-100.
Examples:
    >>> rouge = evaluate.load("eval/metrics/rouge/rouge.py")
    >>> rouge.compute(predictions=["返品できます。"], references=["返品できます。"])["rougeL"]
    100.0
"""

_CITATION = """\
@inproceedings{lin-2004-rouge,
  title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
  author = "Lin, Chin-Yew",
  booktitle = "Text Summarization Branches Out",
  year = "2004",
  pages = "74--81",
}
"""

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
# Languages in the order their tokenizer names are joined ("mecab-unidic+words").
LANG_ORDER = ("ja", "en")


class WordTokenizer:
    """rouge-score's tokenizer interface (`tokenize(text) -> list[str]`) over tokenize_words."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def tokenize(self, text: str) -> list[str]:
        """Splits text into word tokens: WordTokenizer('en').tokenize('Hi, you') -> ['hi', 'you']."""
        return tokenize_words(text, self.lang)


@functools.lru_cache(maxsize=None)
def scorer_for(lang: str) -> rouge_scorer.RougeScorer:
    """Returns a RougeScorer that tokenizes with tokenize_words for `lang` (one per language)."""
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=WordTokenizer(lang))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Rouge(evaluate.Metric):
    """rouge-score ROUGE-1/2/L with a per-line language-aware tokenizer."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions: list[str], references: list[str], langs: list[str] | None = None) -> dict:
        if not references:
            raise ValueError("rouge: no lines to score")
        line_lang = line_langs(references, langs)
        per_example = []
        for prediction, reference, lang in zip(predictions, references, line_lang):
            # rouge-score's argument order is (target, prediction).
            scores = scorer_for(lang).score(reference, prediction)
            per_example.append({name: float(scores[name].fmeasure) * 100 for name in ROUGE_TYPES})
        result = {name: sum(row[name] for row in per_example) / len(per_example) for name in ROUGE_TYPES}
        used = [word_tokenizer_name(lang) for lang in LANG_ORDER if lang in line_lang]
        return {**result, "tokenizer": "+".join(used), "per_example": per_example}
