"""The one retriever of training pairs: BM25 over language-aware content words and concepts, with a cut-off.

    python -c "from tunebot.retrieval import *; \\
        from tunebot.prompts import make_record as r; \\
        print(PairIndex([r('a', 'f:2', 'en', 'S', 'Refund?', 'Within 30 days.')]).search('refund', 1))"

Eval (the `retrieval`, `rag` and `tuned_rag` systems), grounded training and serving all search
with this class (built by `build_index` from the `retrieval` config), so a pair found for a
question is the same everywhere. Each pair (question + answer) is indexed by:
- content words (tunebot.text.retrieval_tokens: MeCab lemmas without particles and auxiliaries
  for Japanese; English words without stopwords, Snowball-stemmed), so 「返品したい」 finds
  「返品できます」 and "returning" finds "returns";
- concept tokens of the support lexicon (tunebot/lexicon.py), so "where's my package" finds
  "track my order" and 「メアド」 finds 「メールアドレス」;
- optionally character n-grams (Japanese bigrams, English 4-grams) in a second BM25 whose
  scores, scaled to the best hit, are added with weight `gram_weight`.
rank-bm25 (BM25Okapi, with Lucene's always-positive IDF) ranks them. A question is answered from pairs of its own
language when the index has any.

The retriever decides for itself whether a pair is close enough: a hit must cover at least
`min_coverage` of the question's words and concepts, weighted by their IDF (a question sharing
only a common word such as "order" with a pair gets nothing). Below that, `search` returns no hit
and the `retrieval` system answers with its fallback instead of a wrong FAQ answer.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from tunebot.lexicon import Lexicon, load_lexicon
from tunebot.prompts import answer_of, question_of
from tunebot.text import detect_lang, retrieval_tokens

EMPTY_TOKEN = "\u2205"  # stands in for a pair without content words, so BM25 keeps its place


@dataclass(frozen=True)
class Hit:
    """One retrieved training pair, its BM25 score and how much of the question it covers (0-1)."""

    record_id: str
    question: str
    answer: str
    score: float
    coverage: float = 1.0


def _bm25(corpus: list[list[str]]) -> Any:
    """BM25Okapi with Lucene's IDF, log(1 + (N - n + 0.5) / (n + 0.5)): positive for every word.

    rank-bm25's own IDF is 0 for a word in half the documents and floored at a fraction of the
    mean below that, so in a FAQ of a few entries a shared word could score nothing at all.
    """
    from rank_bm25 import BM25Okapi

    class LuceneBM25(BM25Okapi):
        def _calc_idf(self, nd: dict[str, int]) -> None:
            for word, freq in nd.items():
                self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))
            self.average_idf = sum(self.idf.values()) / max(1, len(self.idf))

    return LuceneBM25(corpus)


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


_RUNS = re.compile(r"[^\W_]+")
_CONTRACTIONS = re.compile(r"(?i)(?<=[a-z])(?:'s|'re|'ll|'ve|'d|'m|n't)\b")


def char_grams(text: str) -> list[str]:
    """Character n-grams: bigrams of Japanese runs, 4-grams of English words (padded with spaces)."""
    grams = []
    for run in _RUNS.findall(unicodedata.normalize("NFKC", text).lower()):
        if run.isascii():
            padded = f" {run} "
            grams += [padded[i:i + 4] for i in range(max(1, len(padded) - 3))]
        else:
            grams += [run[i:i + 2] for i in range(len(run) - 1)] or [run]
    return grams


def index_tokens(text: str, lang: str, lexicon: Lexicon | None) -> list[str]:
    """The words (stemmed in English) and concept tokens BM25 indexes a text by."""
    lang = detect_lang(text) if lang == "auto" else lang
    if lang == "en":  # "where's" -> "where" (a stopword), "can't" -> "can"; concepts see the text as written
        plain = _CONTRACTIONS.sub("", unicodedata.normalize("NFKC", text).replace("\u2019", "'"))
        words = _stemmer().stemWords(retrieval_tokens(plain, lang))
    else:
        words = retrieval_tokens(text, lang)
    return words + (lexicon.concepts(text, lang) if lexicon is not None else [])


def _scaled(scores: Any, eligible: Any) -> Any:
    best = float(scores[eligible].max()) if eligible.any() else 0.0
    return scores / best if best > 0 else scores * 0


class PairIndex:
    """A BM25 index over records (question + answer), searched with one question.

    >>> index = PairIndex(train_records)  # doctest: +SKIP
    >>> index.search('返品できますか？', k=3)[0].answer  # doctest: +SKIP
    '購入から30日以内でしたら返品できます。'
    """

    def __init__(self, records: list[dict[str, Any]], min_coverage: float = 0.0, lexicon: Lexicon | None = None,
                 gram_weight: float = 0.0, answer_weight: float | None = None) -> None:
        import numpy as np

        if not records:
            raise ValueError("retrieval needs training pairs: data/train.jsonl is empty")
        self.pairs = [(str(record["id"]), question_of(record), answer_of(record)) for record in records]
        self.min_coverage, self.lexicon, self.gram_weight = min_coverage, lexicon, gram_weight
        self.answer_weight = answer_weight
        texts = [f"{question}\n{answer}" for _, question, answer in self.pairs]
        self.langs = np.array([record.get("lang") or detect_lang(text) for record, text in zip(records, texts)])
        corpus = [index_tokens(text, lang, lexicon) or [EMPTY_TOKEN] for text, lang in zip(texts, self.langs)]
        self._tokens = [set(tokens) for tokens in corpus]
        if answer_weight is None:  # one field: question + answer
            self.bm25 = _bm25(corpus)
        else:  # questions and answers as two fields: bm25 = questions, answers apart
            self.bm25 = _bm25([index_tokens(q, lang, lexicon) or [EMPTY_TOKEN]
                               for (_, q, _), lang in zip(self.pairs, self.langs)])
            self.answers = _bm25([index_tokens(a, lang, lexicon) or [EMPTY_TOKEN]
                                  for (_, _, a), lang in zip(self.pairs, self.langs)])
        self.grams = _bm25([char_grams(text) or [EMPTY_TOKEN] for text in texts]) if gram_weight > 0 else None
        frequency: dict[str, int] = {}
        for tokens in self._tokens:
            for token in tokens:
                frequency[token] = frequency.get(token, 0) + 1
        # A smoothed IDF that stays positive (BM25Okapi's own goes negative for common words).
        self._idf = {token: math.log((len(corpus) + 1) / (count + 0.5)) for token, count in frequency.items()}
        self._unseen_idf = math.log((len(corpus) + 1) / 0.5)

    def __len__(self) -> int:
        return len(self.pairs)

    def _coverage(self, tokens: set[str], index: int) -> float:
        weights = {token: self._idf.get(token, self._unseen_idf) for token in tokens}
        total = sum(weights.values())
        return sum(weight for token, weight in weights.items()
                   if token in self._tokens[index]) / total if total else 0.0

    def _scores(self, question: str, lang: str, tokens: list[str]) -> tuple[Any, Any]:
        """Fused scores of every pair, and which pairs may answer (the question's language, if indexed)."""
        eligible = self.langs == lang
        if not eligible.any():
            eligible = eligible | True
        scores = self.bm25.get_scores(tokens)
        if self.answer_weight is not None:
            scores = _scaled(scores, eligible) + self.answer_weight * _scaled(self.answers.get_scores(tokens), eligible)
        if self.grams is not None:
            scores = _scaled(scores, eligible) + self.gram_weight * _scaled(self.grams.get_scores(char_grams(question)),
                                                                             eligible)
        return scores, eligible

    def search(self, question: str, k: int, exclude: frozenset[str] | set[str] = frozenset()) -> list[Hit]:
        """Returns up to k close-enough pairs for the question, best first; ids in `exclude` are skipped."""
        lang = detect_lang(question)
        tokens = index_tokens(question, lang, self.lexicon)
        if not tokens or k <= 0:
            return []
        scores, eligible = self._scores(question, lang, tokens)
        order = sorted((index for index in range(len(scores)) if eligible[index]),
                       key=lambda index: (-scores[index], index))
        found, wanted = [], set(tokens)
        for index in order:
            if len(found) == k or scores[index] <= 0:
                break
            if self.pairs[index][0] in exclude:
                continue
            coverage = self._coverage(wanted, index)
            if coverage >= self.min_coverage:
                found.append(Hit(*self.pairs[index], float(scores[index]), round(coverage, 4)))
        return found


def build_index(records: list[dict[str, Any]], cfg: Any) -> PairIndex:
    """The index of `records` as the `retrieval` config section describes it (one place for eval, sft, serve).

    With FAQ pairs among them, only those are indexed: a support-log record (`kind: support_log`)
    is an agent's reply to one customer's case, training material but no answer to hand to the next
    customer. A run of support logs alone indexes them."""
    faq = [record for record in records if record.get("kind") != "support_log"]
    return PairIndex(faq or records, cfg.min_coverage, load_lexicon(cfg.synonyms), cfg.gram_weight, cfg.answer_weight)


MAX_AUTO_K = 3


def resolve_k(cfg: Any, records: list[dict[str, Any]], model: str) -> Any:
    """The retrieval config with k fixed: as given, or for auto as many pairs (1-3) as fit cfg.context_budget
    at the median length of the pairs (`Q: ...\nA: ...` in the model's tokens). Eval, grounded training and
    serving resolve it from the same training split, so they agree."""
    if cfg.k != "auto":
        return cfg
    from tunebot.models import load_tokenizer, resolve_model

    if not records:
        return cfg.model_copy(update={"k": MAX_AUTO_K})
    tokenizer = load_tokenizer(resolve_model(model))
    sizes = sorted(len(tokenizer(f"Q: {question_of(r)}\nA: {answer_of(r)}", add_special_tokens=False)["input_ids"])
                   for r in records)
    median = sizes[len(sizes) // 2]
    return cfg.model_copy(update={"k": max(1, min(MAX_AUTO_K, cfg.context_budget // max(1, median)))})
