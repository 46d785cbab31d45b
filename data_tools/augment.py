"""Question paraphrases for the training split (data.augment): N variants of each training question.

    tunebot data examples/acme-demo.yaml --set data.augment.variants=2

Ovadia et al. (2024) found that seeing a fact under several phrasings helps fine-tuning absorb
it. Offline rules make the variants, in Japanese and English: a support term swapped for another
of its concept (tunebot/support_lexicon.txt: 「返品」 -> 「返送」, "order" -> "purchase"), polite
and casual forms (「できますか？」 <-> 「できる？」, 「教えてください」 -> 「知りたいです」, "Can I" ->
"Is it possible to", "hey, ..." without the question mark) and word order ("How do I X?" ->
"X: how?"). With `data.augment.endpoint` an OpenAI-compatible model writes them instead (rules fill
in what it does not give). Variants are new records marked `augmented_from` (the record's id) and
`augmentation` (how), appended to train.jsonl only, never to val or test, and counted in
report.json (`augmented`).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from tunebot.lexicon import Lexicon
from tunebot.prompts import question_of
from tunebot.text import word_edges

# (pattern, replacement) rewrites of a whole question, in the order tried; each is a rule of its own.
JA_FORMS: list[tuple[str, str]] = [
    (r"できますか[？?]$", "できる？"), (r"できる[？?]$", "できますか？"), (r"ですか[？?]$", "？"),
    (r"ますか[？?]$", "ますでしょうか？"), (r"を教えてください[。]?$", "を知りたいです。"),
    (r"教えてください[。]?$", "教えてもらえますか？"), (r"したいです[。！!]?$", "したいのですが。"),
    (r"たいです[。！!]?$", "たいんですけど。"), (r"ました[。]?$", "ましたが、どうすればいいですか？"),
]
EN_FORMS: list[tuple[str, str]] = [
    (r"(?i)^can i ", "Is it possible to "), (r"(?i)^how do i ", "How can I "),
        (r"(?i)^how can i ", "What is the way to "),
    (r"(?i)^i want to ", "I'd like to "), (r"(?i)^i can't ", "I cannot "), (r"(?i)^do you ", "Does your shop "),
    (r"(?i)^what is ", "Tell me "), (r"(?i)^when will ", "How soon will "),
]


def _casual_en(question: str) -> str:
    return "hey, " + question[0].lower() + question[1:].rstrip("?.! ")


_KANJI_KANA = re.compile(r"^[\u3005\u30a0-\u30ff\u4e00-\u9fff]{2,}$")  # no hiragana: nouns, not inflected verbs


def _swappable(term: str, lang: str) -> bool:
    return " " not in term and (bool(_KANJI_KANA.match(term)) if lang == "ja" else len(term) > 2 and term.isalpha())


def _places(question: str, term: str, lang: str) -> list[int]:
    """Where `term` stands in the question as a word of its own (Japanese: on MeCab word edges)."""
    if lang == "en":
        return [m.start() for m in re.finditer(rf"(?i)(?<![a-z]){re.escape(term)}(?![a-z])", question)]
    starts, ends = word_edges(question)
    return [m.start() for m in re.finditer(re.escape(term), question) if m.start() in starts and m.end() in ends]


def _swap(question: str, lang: str, lexicon: Lexicon, rng: random.Random) -> str | None:
    """The question with one support term replaced by another term of its concept, or None."""
    options = []
    for terms in lexicon.groups.get(lang, {}).values():
        usable = [term for term in terms if _swappable(term, lang)]
        for term in usable:
            for where in _places(question, term, lang):
                before = question[:where].rstrip().lower()
                options += [(where, term, other) for other in usable if other.lower() != term.lower()
                            and not (before.endswith((" a", " an")) or before in ("a", "an"))]
    if not options:
        return None
    where, term, other = rng.choice(sorted(options))
    return question[:where] + other + question[where + len(term):]


def rule_variants(question: str, lang: str, lexicon: Lexicon, rng: random.Random) -> list[tuple[str, str]]:
    """Every rule's variant of a question: [(variant, rule)], without the question itself."""
    found: list[tuple[str, str]] = []
    swapped = _swap(question, lang, lexicon, rng)
    if swapped:
        found.append((swapped, "synonym"))
    for index, (pattern, replacement) in enumerate(JA_FORMS if lang == "ja" else EN_FORMS):
        changed = re.sub(pattern, replacement, question, count=1)
        if changed != question:
            found.append((changed, f"form{index}"))
    if lang == "en":
        found.append((_casual_en(question), "casual"))
        order = re.match(r"(?i)^how (?:do|can) i (.+?)\??$", question)
        if order:
            found.append((f"{order.group(1)}: how?", "order"))
    if swapped:  # a synonym and a form together
        changed = next((re.sub(p, r, swapped, count=1) for p, r in (JA_FORMS if lang == "ja" else EN_FORMS)
                        if re.search(p, swapped)), None)
        if changed and changed != swapped:
            found.append((changed, "synonym+form"))
    return [(text, rule) for text, rule in found if text.strip() and text != question]


def augment_records(train: list[dict[str, Any]], variants: int, seed: int, lexicon: Lexicon,
                    writer: Callable[[str, str, int], list[str]] | None = None) -> list[dict[str, Any]]:
    """Up to `variants` new records per training record, each a paraphrase of its question (same answer)."""
    rng = random.Random(seed)
    taken = {question_of(record).strip() for record in train}
    made = []
    for record in train:
        question, lang = question_of(record), record.get("lang", "en")
        candidates = [(text, "endpoint") for text in (writer(question, lang, variants) if writer else [])]
        candidates += rule_variants(question, lang, lexicon, rng)
        chosen = 0
        for text, rule in candidates:
            if chosen == variants or text.strip() in taken:
                continue
            taken.add(text.strip())
            chosen += 1
            prompt = [*record["prompt"][:-1], {"role": "user", "content": text.strip()}]
            made.append({**record, "id": f"{record['id']}~aug{chosen}", "prompt": prompt,
                         "augmented_from": record["id"], "augmentation": rule})
    return made


def endpoint_writer(endpoint: Any) -> Callable[[str, str, int], list[str]]:
    """Variants written by an OpenAI-compatible model (data.augment.endpoint); [] when a request fails."""
    import os

    from openai import OpenAI

    client = OpenAI(base_url=endpoint.url, api_key=os.environ.get(endpoint.api_key_env) or "not-needed",
                    timeout=endpoint.timeout_s, max_retries=endpoint.max_retries)
    languages = {"ja": "Japanese", "en": "English"}

    def write(question: str, lang: str, count: int) -> list[str]:
        ask = (
            f"Write {count} different ways a customer could ask the following question, in "
            f"{languages.get(lang, 'the same language')}, "
               f"same meaning, one per line, nothing else:\n{question}")
        try:
            reply = client.chat.completions.create(model=endpoint.model, temperature=0.7,
                                                   messages=[{"role": "user", "content": ask}])
        except Exception:  # an unreachable endpoint must not stop the data stage: the rules still write variants
            return []
        lines = (reply.choices[0].message.content or "").splitlines()
        return [line.strip(" -*0123456789.").strip() for line in lines if line.strip()][:count]

    return write


def summary(made: list[dict[str, Any]], train: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """report.json's `augmented`: rows made per language and rule, of how many training records."""
    return {"rows": len(made), "from_records": len(train), "method": method,
            "by_lang": dict(Counter(record.get("lang", "?") for record in made)),
            "by_rule": dict(Counter(record["augmentation"] for record in made))}
