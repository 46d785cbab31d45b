"""The one retriever of training pairs: BM25 over language-aware content words, with a cut-off.

    python -c "from tunebot.retrieval import PairIndex; from tunebot.prompts import make_record; print(PairIndex([make_record('a', 'f:2', 'en', 'S', 'Refund?', 'Within 30 days.')]).search('refund', 1))"

Eval (the `retrieval`, `rag` and `tuned_rag` systems), grounded training and serving all search
with this class, so a pair found for a question is the same everywhere. Pairs are indexed by
question and answer as content words (tunebot.text.retrieval_tokens: MeCab lemmas without
particles and auxiliaries for Japanese, words without stopwords for English), so 「返品したい」
finds 「返品できます」; rank-bm25 (BM25Okapi) ranks them.

The retriever decides for itself whether a pair is close enough: a hit must cover at least
`min_coverage` of the question's content words, weighted by their IDF (a question sharing only
a common word such as "order" with a pair gets nothing). Below that, `search` returns no hit and
the `retrieval` system answers with its fallback instead of a wrong FAQ answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tunebot.prompts import answer_of, question_of
from tunebot.text import retrieval_tokens

EMPTY_TOKEN = "\u2205"  # stands in for a pair without content words, so BM25 keeps its place


@dataclass(frozen=True)
class Hit:
    """One retrieved training pair, its BM25 score and how much of the question it covers (0-1)."""

    record_id: str
    question: str
    answer: str
    score: float
    coverage: float = 1.0


class PairIndex:
    """A BM25 index over records (question + answer), searched with one question.

    >>> index = PairIndex(train_records)  # doctest: +SKIP
    >>> index.search('返品できますか？', k=3)[0].answer  # doctest: +SKIP
    '購入から30日以内でしたら返品できます。'
    """

    def __init__(self, records: list[dict[str, Any]], min_coverage: float = 0.0) -> None:
        from rank_bm25 import BM25Okapi

        if not records:
            raise ValueError("retrieval needs training pairs: data/train.jsonl is empty")
        self.pairs = [(str(record["id"]), question_of(record), answer_of(record)) for record in records]
        self.min_coverage = min_coverage
        corpus = [retrieval_tokens(f"{question}\n{answer}", record.get("lang") or "auto") or [EMPTY_TOKEN]
                  for record, (_, question, answer) in zip(records, self.pairs)]
        self._tokens = [set(tokens) for tokens in corpus]
        self.bm25 = BM25Okapi(corpus)
        documents = len(corpus)
        frequency: dict[str, int] = {}
        for tokens in self._tokens:
            for token in tokens:
                frequency[token] = frequency.get(token, 0) + 1
        # A smoothed IDF that stays positive (BM25Okapi's own goes negative for common words).
        self._idf = {token: math.log((documents + 1) / (count + 0.5)) for token, count in frequency.items()}
        self._unseen_idf = math.log((documents + 1) / 0.5)

    def __len__(self) -> int:
        return len(self.pairs)

    def _coverage(self, tokens: set[str], index: int) -> float:
        weights = {token: self._idf.get(token, self._unseen_idf) for token in tokens}
        total = sum(weights.values())
        return sum(weight for token, weight in weights.items() if token in self._tokens[index]) / total if total else 0.0

    def search(self, question: str, k: int, exclude: frozenset[str] | set[str] = frozenset()) -> list[Hit]:
        """Returns up to k close-enough pairs for the question, best first; ids in `exclude` are skipped."""
        tokens = retrieval_tokens(question, "auto")
        if not tokens or k <= 0:
            return []
        scores = self.bm25.get_scores(tokens)
        order = sorted(range(len(scores)), key=lambda index: (-scores[index], index))
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
