"""Which answers count as the same: answer classes, answer_match's pools, and the retriever's recall.

    python -c "from eval.answers import *; \\
        print(answer_key({'completion': [{'role': 'assistant', 'content': 'Yes!'}]}, 'answer'))"

Two records give the same answer when their answer texts are equal after normalisation (NFKC,
case, punctuation and spaces: tunebot.text.normalize_answer), or, with eval.answer_class =
category, when they share a category (data whose every reply is worded anew, one intent per
category). answer_match's pool for a test record is every distinct answer of another class in its
language, from every record of the run (train, val and test). A record whose reference is unique in the
data (a support-log reply) is scored the same way: its reply must be closer to its own
reference than to every other reply of the data, which is strict by design.
"""

from __future__ import annotations

from typing import Any

from tunebot.prompts import answer_of
from tunebot.text import normalize_answer


def answer_key(record: dict[str, Any], answer_class: str) -> str:
    """The class of a record's answer: its normalised text, or its category (when asked and present)."""
    if answer_class == "category" and record.get("category"):
        return f"category:{record['category']}"
    return normalize_answer(answer_of(record))


def answer_pools(test: list[dict[str, Any]], everything: list[dict[str, Any]], answer_class: str,
                 langs: list[str]) -> list[list[str] | None]:
    """One pool per test record: every distinct answer of another class in its language (None if none).

    With answer_class "category" the pool is {"others": those answers, "kin": the other answers of
    the record's own class} (answer_match then asks for the nearest class, see its module)."""
    texts: dict[tuple[str, str], str] = {}  # (lang, normalised text) -> (text, class)
    classes: dict[tuple[str, str], str] = {}
    for record in everything:
        where = (record["lang"], normalize_answer(answer_of(record)))
        texts.setdefault(where, answer_of(record))
        classes.setdefault(where, answer_key(record, answer_class))
    pools = []
    for record, lang in zip(test, langs):
        mine = answer_key(record, answer_class)
        pool = [text for where, text in texts.items() if where[0] == lang and classes[where] != mine]
        if answer_class == "answer" or not pool or not record.get("category"):
            pools.append(pool or None)
            continue
        own = normalize_answer(answer_of(record))
        kin = [text for where, text in texts.items() if where[0] == lang and classes[where] == mine and where[1] != own]
        pools.append({"others": pool, "kin": kin})
    return pools


def retrieval_recall(test: list[dict[str, Any]], hits: list[list[Any]], train: list[dict[str, Any]],
                     answer_class: str) -> dict[str, Any]:
    """Recall@1 and @3 of the retriever on the test records: a hit is a training pair of the same answer class.

    `answerable` counts the test records whose answer class occurs in training at all (the others
    no retriever can find). Rates are over all test records, 0-100, overall and per language.
    """
    by_id = {str(record["id"]): answer_key(record, answer_class) for record in train}
    known = set(by_id.values())
    rows = []
    for record, found in zip(test, hits):
        mine = answer_key(record, answer_class)
        ranks = [rank for rank, hit in enumerate(found) if by_id.get(hit.record_id) == mine]
        rows.append((record["lang"], mine in known, bool(ranks) and ranks[0] < 1, bool(ranks) and ranks[0] < 3,
                     bool(found)))

    def summary(chosen: list[tuple]) -> dict[str, Any]:
        n = len(chosen)
        return {"n": n, "answerable": sum(row[1] for row in chosen), "retrieved": sum(row[4] for row in chosen),
                "recall_at_1": round(100 * sum(row[2] for row in chosen) / n, 2) if n else 0.0,
                "recall_at_3": round(100 * sum(row[3] for row in chosen) / n, 2) if n else 0.0}

    section = summary(rows)
    langs = sorted({row[0] for row in rows})
    section["by_lang"] = {lang: summary([row for row in rows if row[0] == lang]) for lang in langs}
    return section
