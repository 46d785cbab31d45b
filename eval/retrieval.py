"""BM25 retrieval of training pairs for the RAG baseline, with language-aware tokens.

    python -c "from eval.retrieval import PairIndex; print(PairIndex([{'id': 'a', 'lang': 'en', 'prompt': [{'role': 'user', 'content': 'Refund?'}], 'completion': [{'role': 'assistant', 'content': 'Within 30 days.'}]}]).search('refund', 1))"

The `rag` and `tuned_rag` systems answer with the top-k training pairs placed in the system
message. Pairs are indexed by question and answer as content words (tunebot.text.retrieval_tokens:
MeCab lemmas without particles and auxiliaries for Japanese, words without stopwords for
English), so 「返品したい」 finds 「返品できます」 although Japanese has no spaces and its particles
would otherwise dominate small FAQs. rank-bm25 (BM25Okapi) does the scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunebot.prompts import Message, answer_of, question_of
from tunebot.text import detect_lang, retrieval_tokens

# How retrieved pairs are introduced in the system message, in the question's language.
CONTEXT_HEADINGS = {
    "en": "Answer using these entries from the support knowledge base where they are relevant:",
    "ja": "関連する場合は、サポートのナレッジベースにある次の項目を使って回答してください。",
}


@dataclass(frozen=True)
class Hit:
    """One retrieved training pair and its BM25 score."""

    record_id: str
    question: str
    answer: str
    score: float


class PairIndex:
    """A BM25 index over training records (question + answer), searched with one question.

    >>> index = PairIndex(train_records)  # doctest: +SKIP
    >>> index.search('返品できますか？', k=3)[0].answer  # doctest: +SKIP
    '購入から30日以内でしたら返品できます。'
    """

    def __init__(self, records: list[dict[str, Any]]) -> None:
        from rank_bm25 import BM25Okapi

        if not records:
            raise ValueError("the RAG baseline needs training pairs: data/train.jsonl is empty")
        self.pairs = [(str(record["id"]), question_of(record), answer_of(record)) for record in records]
        corpus = [
            retrieval_tokens(f"{question}\n{answer}", record.get("lang") or "auto") or ["\u2205"]
            for record, (_, question, answer) in zip(records, self.pairs)
        ]
        self.bm25 = BM25Okapi(corpus)

    def search(self, question: str, k: int) -> list[Hit]:
        """Returns the k best pairs for the question, best first (pairs sharing no token are left out)."""
        tokens = retrieval_tokens(question, "auto")
        if not tokens or k <= 0:
            return []
        scores = self.bm25.get_scores(tokens)
        best = sorted(range(len(scores)), key=lambda index: (-scores[index], index))[:k]
        return [Hit(*self.pairs[index], float(scores[index])) for index in best if scores[index] > 0]


def context_block(hits: list[Hit], lang: str) -> str:
    """Formats retrieved pairs as the text appended to the system message.

    >>> context_block([Hit('a', 'Refund?', 'Within 30 days.', 1.2)], 'en').splitlines()[-2:]
    ['Q: Refund?', 'A: Within 30 days.']
    """
    lines = [CONTEXT_HEADINGS.get(lang, CONTEXT_HEADINGS["en"])]
    for hit in hits:
        lines += ["", f"Q: {hit.question}", f"A: {hit.answer}"]
    return "\n".join(lines)


def with_context(messages: list[Message], hits: list[Hit], lang: str | None = None) -> list[Message]:
    """Returns the conversation with the retrieved pairs added to its system message.

    The user turns stay as they are, so `rag` differs from `base` only by the retrieved text.
    >>> with_context([{'role': 'system', 'content': 'S'}, {'role': 'user', 'content': 'Q'}], [])[0]['content']
    'S'
    """
    if not hits:
        return list(messages)
    if not messages or messages[0]["role"] != "system":
        raise ValueError("a conversation must start with the system prompt before context is added")
    question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    block = context_block(hits, lang or detect_lang(question))
    return [{"role": "system", "content": f"{messages[0]['content']}\n\n{block}"}, *messages[1:]]
