"""Input rows -> instruction records or rejects, one at a time, with a report per source file.

    tunebot data examples/acme-demo.yaml

Every input unit (an FAQ row, or an agent turn of a support log) ends up as a record or in
`rejects.jsonl` with its file, line and reason, so `rows_in == kept + rejected` holds per source.
Records stream out of `RecordBuilder.units()`; nothing here holds a whole file's records.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_tools.jsonio import loads
from data_tools.normalize import NON_ANSWERS, TextCleaner, clean_text, fold
from data_tools.pii import PiiScrubber
from data_tools.readers import ANSWER_NAMES, QUESTION_NAMES, DataError, RawRow, find_category_column, pick_column, read_rows
from tunebot.config import DataConfig, SourceConfig
from tunebot.prompts import make_record
from tunebot.text import detect_lang

_NON_WORD = re.compile(r"[\W_]+")  # as in dedupe.normalize_for_matching
LINE_BITS = 40  # a record's place as one integer: file number << LINE_BITS | line

__all__ = ["Candidate", "CandidateBatch", "RecordBuilder", "SourceReport", "build_records", "clean_text", "expand_sources"]


@dataclass
class SourceReport:
    """Counts for one input file."""

    file: str
    unit: str = "row"
    rows_in: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    pii: Counter = field(default_factory=Counter)
    extra: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        """Counts one rejected unit under the reason's short name (before any detail)."""
        self.rejected[re.split(r" \(|:", reason, maxsplit=1)[0]] += 1

    @property
    def duplicates(self) -> int:
        """Exact and near duplicates rejected from this file."""
        return self.rejected["duplicate"] + self.rejected["near-duplicate"]

    def as_json(self) -> dict[str, Any]:
        """Returns the report entry written to report.json."""
        return {
            "file": self.file,
            "unit": self.unit,
            "rows_in": self.rows_in,
            "kept": self.kept,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected),
            "duplicates": self.duplicates,
            "pii_found": dict(self.pii),
            **self.extra,
        }


@dataclass(slots=True)
class Candidate:
    """A record that passed cleaning and filters, with what dedupe and the split need."""

    record: dict[str, Any] | None  # None when it came from a worker process: see `line`
    question: str  # the customer's side of the prompt: what similarity is measured on
    answer: str
    file_index: int
    category: str = ""
    conversation: int = -1  # records of one conversation share a number and a split
    line: bytes = b""  # the record as a JSON line, when a worker process made it already
    match: str = ""  # the question as similarity sketches read it, when already computed
    lang: str = ""
    sketch: tuple[Any, int] | None = None  # (its chunk's sketches, its row in them) when a worker made them
    sizes: tuple[int, int] | None = None  # (question, answer) lengths, when the texts stayed in the worker
    answer_key: int = 0  # answer_key(answer), when the texts stayed in the worker

    def __post_init__(self) -> None:
        if self.record is not None:
            self.lang = self.record["lang"]


@dataclass(slots=True)
class CandidateBatch:
    """Consecutive candidates of one file, made in columns by `faq_segments`: what the spool keeps."""

    file_index: int
    lines: bytes  # their records as JSON lines, one after another
    line_ends: Any  # int64: where each line ends in `lines`
    count: int
    question_chars: Any  # int32 arrays
    answer_chars: Any
    answer_keys: Any  # int64 array of answer_key(answer): the split keeps a shared answer in train
    ja: Any  # bool array
    category_names: list[str]
    categories: Any  # int32 index into category_names
    sketches: Any  # (signatures, bottom-k values, lengths) of a batch, some of whose rows are these
    sketch_rows: Any  # each candidate's row in `sketches`


def expand_sources(sources: list[SourceConfig]) -> list[tuple[SourceConfig, Path]]:
    """Expands globs; a path or glob that matches nothing is an error naming it."""
    expanded = []
    for source in sources:
        matches = sorted(glob.glob(source.path, recursive=True)) if glob.has_magic(source.path) else [source.path]
        if not matches or not Path(matches[0]).exists():
            raise DataError(f"{source.path}: no such file (data.sources)")
        expanded.extend((source, Path(match)) for match in matches)
    return expanded


def id_prefixes(paths: list[Path]) -> list[str]:
    """Returns a record-id prefix per file: its stem, numbered when two files share one."""
    seen: Counter = Counter()
    prefixes = []
    for path in paths:
        seen[path.stem] += 1
        prefixes.append(path.stem if seen[path.stem] == 1 else f"{path.stem}{seen[path.stem]}")
    return prefixes


class RecordBuilder:
    """Cleans, scrubs, filters and exact-dedupes every unit of every source.

    >>> builder = RecordBuilder(cfg.data, cfg.system_prompt)                      # doctest: +SKIP
    >>> for report, outcome in builder.units(): ...                               # doctest: +SKIP
    """

    def __init__(self, cfg: DataConfig, system_prompt: str) -> None:
        self.cfg, self.system_prompt = cfg, system_prompt
        patterns = (*NON_ANSWERS, *cfg.non_answer_patterns) if cfg.non_answer_filter else tuple(cfg.non_answer_patterns)
        self.cleaner = TextCleaner(cfg.html_to_text, cfg.unicode, cfg.answer_boilerplate, patterns)
        self.scrub = None if cfg.pii == "keep" else PiiScrubber(custom=cfg.pii_patterns, allow=cfg.pii_allow,
                                                                     ner=cfg.pii_ner)
        self.seen: dict[int, str | int] = {}  # duplicate key -> where that pair was first seen
        self.sources = expand_sources(cfg.sources)
        self.prefixes = id_prefixes([path for _, path in self.sources])
        self.reports = [SourceReport(str(path), "row" if source.kind == "faq" else "agent turn") for source, path in self.sources]
        self.conversations = 0

    def units(self) -> Iterator[tuple[SourceReport, Candidate | dict[str, Any]]]:
        """Yields (report, candidate or reject) for every unit of every source, in file order."""
        for index, (source, path) in enumerate(self.sources):
            report = self.reports[index]
            if source.kind == "faq":
                from data_tools.faq import faq_units

                outcomes = faq_units(self, source, path, index)
            else:
                from data_tools.logs import log_units

                outcomes = log_units(self, source, path, index)
            for outcome in outcomes:
                if isinstance(outcome, dict):
                    report.rows_in += 1
                    report.reject(outcome["reason"])
                else:
                    added = outcome.count if isinstance(outcome, CandidateBatch) else 1
                    report.rows_in += added
                    report.kept += added
                yield report, outcome
            if report.rows_in == 0:
                raise DataError(f"{path}: no rows (only a header or blank lines)")

    def redact(self, text: str, report: SourceReport, names: tuple[str, ...] = ()) -> tuple[str, Counter]:
        """Returns the text with personal data replaced (per `pii`), counting what was found;
        `names` are the people its export names (redacted wherever they occur)."""
        if self.scrub is None:
            return text, Counter()
        text, found = self.scrub.redact_and_count(text, names)
        if found:
            report.pii.update(found)
        return text, found

    def reject(self, source: str, reason: str, field_name: str | None, row: dict[str, Any]) -> dict[str, Any]:
        """Returns a reject entry; the user's row is kept with it, and it and the reason (which may
        quote the row) are scrubbed like the records, nested objects too."""
        if self.scrub is not None:
            row, reason = self._scrubbed(row), self.scrub.redact_and_count(reason)[0]
        return {"source": source, "reason": reason, "field": field_name, "row": row}

    def _scrubbed(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub.redact_and_count(value)[0]
        if isinstance(value, dict):
            return {key: self._scrubbed(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._scrubbed(item) for item in value]
        return value

    def check(self, question: str, answer: str, source: str) -> tuple[str, str | None] | None:
        """Returns (reason, field) when a pair fails a quality filter or repeats an earlier pair, else None."""
        problem, key, _ = self.check_quality(question, answer)
        return problem or self.check_duplicate(key, source)

    def check_quality(self, question: str, answer: str) -> tuple[tuple[str, str] | None, int, str]:
        """Returns (reason and field, or None), the pair's duplicate key (same up to width, case,
        spaces) and the question as similarity sketches read it (`normalize_for_matching`)."""
        problem = self._quality(question, answer)
        if problem:
            return problem, 0, ""
        folded_question, folded_answer = fold(question), fold(answer)
        if folded_question == folded_answer:
            return ("answer repeats the question", "answer"), 0, ""
        if self.cleaner.is_non_answer(answer):
            return ("non-answer (says nothing the customer can use)", "answer"), 0, ""
        digest = hashlib.blake2b(f"{folded_question}\0{folded_answer}".encode(), digest_size=8).digest()
        return None, int.from_bytes(digest, "little"), _NON_WORD.sub("", folded_question)

    def check_duplicate(self, key: int, source: str) -> tuple[str, None] | None:
        """Returns a reason when an earlier pair had the same key; else remembers this one."""
        earlier = self.seen.get(key)
        if earlier is not None:
            return self.duplicate_reason(earlier), None
        self.seen[key] = source
        return None

    def duplicate_reason(self, earlier: str | int) -> str:
        """The reject reason of a pair that repeats the one at `earlier`: file:line, or that as
        file number << LINE_BITS | line (how segmented files record the pairs they keep)."""
        if isinstance(earlier, int):
            earlier = f"{self.reports[earlier >> LINE_BITS].file}:{earlier & ((1 << LINE_BITS) - 1)}"
        return f"duplicate (same question and answer as {earlier})"

    def _quality(self, question: str, answer: str) -> tuple[str, str] | None:
        cfg = self.cfg
        if not question:
            return "empty question", "question"
        if not answer:
            return "empty answer", "answer"
        if len(question) < cfg.min_question_chars:
            return f"question shorter than {cfg.min_question_chars} characters", "question"
        if len(answer) < cfg.min_answer_chars:
            return f"answer shorter than {cfg.min_answer_chars} characters", "answer"
        for name, text in (("question", question), ("answer", answer)):
            if len(text) > cfg.max_chars:
                return f"{name} longer than {cfg.max_chars} characters ({len(text)})", name
        return None

    def candidate(self, record_id: str, source: str, prompt_turns: list[dict[str, str]], answer: str, file_index: int) -> Candidate:
        """Builds the record of a cleaned pair; `prompt_turns` are the messages after the system prompt."""
        question = "\n".join(turn["content"] for turn in prompt_turns if turn["role"] == "user")
        record = make_record(record_id, source, detect_lang(question + answer), self.system_prompt, "", answer)
        record["prompt"] = [record["prompt"][0], *prompt_turns]
        record["kind"] = "support_log"  # an agent's reply to one customer: trains, but is no FAQ answer to retrieve
        return Candidate(record, question, answer, file_index)


def answer_key(answer: str) -> int:
    """A 63-bit key of an answer's text (the split groups by it; no folding: 2 us a row at 1M rows)."""
    return int.from_bytes(hashlib.blake2b(answer.encode(), digest_size=8).digest(), "little") >> 1


def worker_count(cfg: DataConfig) -> int:
    """Processes the data stage keeps busy, this one included: `data.workers`, else the CPU count (at most 4)."""
    return cfg.workers or min(4, os.cpu_count() or 1)


def build_records(cfg: DataConfig, system_prompt: str) -> tuple[list[dict], list[dict], list[SourceReport]]:
    """Reads every source and returns (records, rejects, per-source reports), exact duplicates removed.

    Loads everything into lists: for tests and small inputs; the data stage streams instead.
    """
    builder = RecordBuilder(cfg, system_prompt)
    records, rejects = [], []
    for _, outcome in builder.units():
        if isinstance(outcome, Candidate):
            records.append(outcome.record if outcome.record is not None else loads(outcome.line))
        elif isinstance(outcome, CandidateBatch):
            records.extend(loads(line) for line in outcome.lines.split(b"\n")[:-1])
        else:
            rejects.append(outcome)
    return records, rejects, builder.reports


def columns_of(source: SourceConfig, path: Path, first: RawRow) -> tuple[str, str, str | None]:
    """Returns the (question, answer, category or None) columns of an FAQ file."""
    columns = list(first.fields)
    question = pick_column(columns, source.question_field, QUESTION_NAMES, "question", path)
    answer = pick_column(columns, source.answer_field, ANSWER_NAMES, "answer", path)
    if source.category_field is not None:
        return question, answer, pick_column(columns, source.category_field, (), "category", path)
    return question, answer, find_category_column(columns)


def rows_of(source: SourceConfig, path: Path) -> Iterator[RawRow]:
    """Yields the raw rows of an FAQ file."""
    return read_rows(path, source.format, source.encoding, source.sheet, source.header_row)
