"""BLEU as an `evaluate` module: sacrebleu, each line tokenized for its own language.

    python -m pytest -q tests/test_eval_metrics.py -k bleu

Each line is NFKC-normalised (full-width and half-width forms agree, as in every metric here)
and tokenized with sacrebleu's own tokenizer for its language (`ja-mecab` for Japanese, `13a`
for English; `char` for Japanese where MeCab or IPADIC cannot load), then the whole corpus is
scored with tokenize='none'. A corpus in one language therefore gets exactly sacrebleu's number
with that tokenizer on NFKC text, and a mixed corpus is still one corpus-level BLEU.
Load it from this path (evaluate.load("bleu") goes to the Hub). Imports stay one per line:
evaluate parses them to check dependencies.
"""

import functools
import unicodedata
from collections.abc import Callable

import datasets
import evaluate
from sacrebleu.metrics import BLEU
from tunebot.text import line_langs

_DESCRIPTION = "Corpus BLEU (sacrebleu) with ja-mecab for Japanese and 13a for English lines, 0-100."

_INPUTS = """
Args:
    predictions: list of strings, one model answer per line.
    references: list of strings, or list of lists of strings for several references per line.
    langs: optional list of "ja"/"en", one per line; detected from the first reference if omitted.
Returns:
    bleu: corpus BLEU, 0-100.
    tokenizer: sacrebleu tokenizer(s) used, e.g. "13a", "ja-mecab" or "ja-mecab+13a".
    per_example: sentence BLEU per line (effective order, exp smoothing), 0-100.
    precisions, brevity_penalty, sys_len, ref_len: corpus BLEU's parts.
Examples:
    >>> bleu = evaluate.load("eval/metrics/bleu/bleu.py")
    >>> round(bleu.compute(predictions=["The dog bit the man."], references=["The dog bit the man."])["bleu"], 2)
    100.0
"""

_CITATION = """\
@inproceedings{post-2018-call,
  title = "A Call for Clarity in Reporting {BLEU} Scores",
  author = "Post, Matt",
  booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
  year = "2018",
  pages = "186--191",
}
"""

# Sacrebleu's recommended tokenizer per target language (its own BLEU._TOKENIZER_MAP for ja).
SACREBLEU_TOKENIZERS = {"ja": "ja-mecab", "en": "13a"}
# Languages in the order their tokenizer names are joined ("ja-mecab+13a").
LANG_ORDER = ("ja", "en")


@functools.lru_cache(maxsize=None)
def sacrebleu_tokenizer(lang: str) -> tuple[str, Callable[[str], str]]:
    """Returns (name, tokenizer) for a language, with `char` where ja-mecab cannot load."""
    name = SACREBLEU_TOKENIZERS[lang]
    try:
        return name, BLEU(tokenize=name).tokenizer
    except (ImportError, RuntimeError, AssertionError, OSError):
        # sacrebleu raises RuntimeError without mecab-python3/ipadic and asserts on a non-IPA
        # dictionary; characters are the usual fallback for Japanese BLEU.
        return "char", BLEU(tokenize="char").tokenizer


def tokenize_lines(texts: list[str], langs: list[str]) -> list[str]:
    """Tokenizes each line with its language's sacrebleu tokenizer; tokens joined by spaces."""
    # sacrebleu strips trailing whitespace before tokenizing: do the same so numbers match.
    # NFKC first, as every metric here: full-width ５５０ and half-width 550 are the same characters.
    return [sacrebleu_tokenizer(lang)[1](unicodedata.normalize("NFKC", text).rstrip())
            for text, lang in zip(texts, langs)]


def reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """Turns per-line reference lists into sacrebleu's streams, None where a line has fewer."""
    width = max(len(line_refs) for line_refs in references)
    return [[line_refs[i] if i < len(line_refs) else None for line_refs in references] for i in range(width)]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Bleu(evaluate.Metric):
    """sacrebleu BLEU with a per-line language-appropriate tokenizer."""

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
            raise ValueError("bleu: every line needs at least one reference")
        line_lang = line_langs([refs[0] for refs in reference_lists], langs)
        hypotheses = tokenize_lines(predictions, line_lang)
        tokenized_refs = [
            tokenize_lines(refs, [lang] * len(refs)) for refs, lang in zip(reference_lists, line_lang)
        ]

        # Lines are already tokenized; force=True silences the "forgot to detokenize" warning.
        corpus = BLEU(tokenize="none", force=True).corpus_score(hypotheses, reference_streams(tokenized_refs))
        sentence_bleu = BLEU(tokenize="none", force=True, effective_order=True)
        per_example = [
            sentence_bleu.sentence_score(hyp, refs).score for hyp, refs in zip(hypotheses, tokenized_refs)
        ]
        used = [sacrebleu_tokenizer(lang)[0] for lang in LANG_ORDER if lang in line_lang]
        return {
            "bleu": corpus.score,
            "tokenizer": "+".join(used),
            "per_example": per_example,
            "precisions": corpus.precisions,
            "brevity_penalty": corpus.bp,
            "sys_len": corpus.sys_len,
            "ref_len": corpus.ref_len,
        }
