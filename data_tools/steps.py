"""The per-record steps, as plain functions over a batch of pairs: pairs -> normalise -> PII -> filters -> keys.

    python -c "from data_tools.steps import STEPS; print([step.__name__ for step in STEPS])"

A pair is one unit on its way to a record: an FAQ row, or an agent turn of a support log with the
turns before it. A step either fills in a pair or gives it a reject (reason, field); a rejected pair
passes through untouched. `clean_shard` runs the steps over one shard in whichever process the
engine chose; nothing here knows about other shards or about the executor.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from data_tools.matching import match_text
from data_tools.normalize import NON_ANSWERS, TextCleaner, clean_text, fold
from tunebot.config import DataConfig
from tunebot.prompts import make_record
from tunebot.text import detect_lang

ROLE_OF_SIDE = {"customer": "user", "agent": "assistant"}


@dataclass(slots=True)
class Pair:
    """One FAQ row or agent turn, what the steps made of it, or why it was rejected."""

    source: str  # file:line
    row: dict[str, Any]  # what the user gave, kept with a reject
    question: str = ""
    answer: str = ""
    prompt: list[dict[str, str]] | None = None  # support log: the messages before the answer
    record_id: str = ""
    category: str = ""
    conversation: int = -1  # records of one conversation share a number and so a split
    had_pii: bool = False
    found: Counter = field(default_factory=Counter)
    reject: tuple[str, str | None] | None = None
    key: int = 0  # exact-duplicate key: question and answer, folded
    match: str = ""  # the question as similarity reads it (matching.normalize_for_matching)


@dataclass
class Context:
    """What the steps of one shard share: the config, the cleaner and scrubber, the shard's head."""

    cfg: DataConfig
    system_prompt: str
    head: dict[str, Any]
    prefix: str
    cleaner: TextCleaner = field(init=False)
    scrub: Any = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.cfg
        patterns = (*NON_ANSWERS, *cfg.non_answer_patterns) if cfg.non_answer_filter else tuple(cfg.non_answer_patterns)
        self.cleaner = TextCleaner(cfg.html_to_text, cfg.unicode, cfg.answer_boilerplate, patterns)
        self.scrub = None
        if cfg.pii != "keep":
            from data_tools.pii import PiiScrubber

            self.scrub = PiiScrubber(custom=cfg.pii_patterns, allow=cfg.pii_allow, ner=cfg.pii_ner)

    def redact(self, text: str, names: tuple[str, ...] = ()) -> tuple[str, Counter]:
        """Returns the text with personal data replaced (per `data.pii`) and what was found."""
        return self.scrub.redact_and_count(text, names) if self.scrub is not None else (text, Counter())

    def scrubbed(self, value: Any) -> Any:
        """Returns a reject's row or reason with personal data replaced, nested objects too."""
        if self.scrub is None:
            return value
        if isinstance(value, str):
            return self.scrub.redact_and_count(value)[0]
        if isinstance(value, dict):
            return {key: self.scrubbed(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrubbed(item) for item in value]
        return value


def faq_pairs(ctx: Context) -> list[Pair]:
    """Step 1 (FAQ): one pair per row, its question and answer fields as given; unreadable rows rejected."""
    columns, file, pairs = ctx.head["columns"], ctx.head["file"], []
    for line, fields, error in ctx.head["units"]:
        pair = Pair(f"{file}:{line}", fields, record_id=f"{ctx.prefix}-{line:05d}")
        missing = next((name for name in (columns or ())[:2] if name not in fields), None)
        if error or columns is None:
            pair.reject = (error or "unreadable row", None)
        elif missing:
            pair.reject = (f"missing field {missing!r}", missing)
        else:
            pair.question, pair.answer = fields[columns[0]], fields[columns[1]]
            pair.category = clean_text(fields.get(columns[2])) if columns[2] else ""
        pairs.append(pair)
    return pairs


def normalise(pairs: list[Pair], ctx: Context) -> list[Pair]:
    """Step 2: Unicode, HTML, spacing and answer boilerplate (support-log turns were cleaned as they merged)."""
    for pair in pairs:
        if pair.reject is None and pair.prompt is None:
            pair.question, pair.answer = ctx.cleaner.field(pair.question), ctx.cleaner.answer(pair.answer)
    return pairs


def scrub_pii(pairs: list[Pair], ctx: Context) -> list[Pair]:
    """Step 3: personal data redacted and counted; with `pii: drop` a pair holding any is rejected."""
    for pair in pairs:
        if pair.reject is not None:
            continue
        if pair.prompt is None and ctx.scrub is not None:
            (pair.question, in_question), (pair.answer, in_answer) = ctx.redact(pair.question), ctx.redact(pair.answer)
            pair.found = in_question + in_answer
            pair.had_pii = bool(pair.found)
        if ctx.cfg.pii == "drop" and pair.had_pii:
            kinds = f" ({', '.join(sorted(pair.found))})" if pair.found else ""
            pair.reject = (f"contains personal data{kinds}", None)
    return pairs


def filter_quality(pairs: list[Pair], ctx: Context) -> list[Pair]:
    """Step 4: empty, too short or too long texts, answers that repeat the question or say nothing."""
    cfg = ctx.cfg
    for pair in pairs:
        if pair.reject is not None:
            continue
        question, answer = pair.question, pair.answer
        pair.reject = _length_reject(question, answer, cfg)
        if pair.reject is None:
            folded_question, folded_answer = fold(question), fold(answer)
            if folded_question == folded_answer:
                pair.reject = ("answer repeats the question", "answer")
            elif ctx.cleaner.is_non_answer(answer):
                pair.reject = ("non-answer (says nothing the customer can use)", "answer")
            else:
                digest = hashlib.blake2b(f"{folded_question}\0{folded_answer}".encode(), digest_size=8).digest()
                pair.key, pair.match = int.from_bytes(digest, "little"), match_text(folded_question)
    return pairs


def _length_reject(question: str, answer: str, cfg: DataConfig) -> tuple[str, str] | None:
    """The first length check a pair fails, as (reason, field): empty, then too short, then too long."""
    texts = (("question", question, cfg.min_question_chars), ("answer", answer, cfg.min_answer_chars))
    for name, text, _ in texts:
        if not text:
            return f"empty {name}", name
    for name, text, least in texts:
        if len(text) < least:
            return f"{name} shorter than {least} characters", name
    for name, text, _ in texts:
        if len(text) > cfg.max_chars:
            return f"{name} longer than {cfg.max_chars} characters ({len(text)})", name
    return None


def to_record(pair: Pair, ctx: Context) -> dict[str, Any]:
    """Returns the instruction record of a pair that passed every step."""
    record = make_record(pair.record_id, pair.source, detect_lang(pair.question + pair.answer), ctx.system_prompt,
                         pair.question, pair.answer)
    if pair.prompt is not None:
        record["prompt"] = [record["prompt"][0], *pair.prompt]
        record["kind"] = "support_log"  # an agent's reply to one customer: trains, but is no FAQ answer to retrieve
    elif pair.category:
        record["category"] = pair.category
    return record


def answer_key(answer: str) -> int:
    """A 63-bit key of an answer's text: the split keeps one record of an answer several give in train."""
    return int.from_bytes(hashlib.blake2b(answer.encode(), digest_size=8).digest(), "little") >> 1


STEPS = (normalise, scrub_pii, filter_quality)
