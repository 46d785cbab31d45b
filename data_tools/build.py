"""FAQ rows -> instruction records, rejects and a per-source report; then a deterministic split.

    tunebot data examples/acme.yaml

Every input row ends up in exactly one of: a split, or `rejects.jsonl` with its file, line and
reason, so `rows_in == kept + rejected` holds per source and is written to `report.json`.
"""

from __future__ import annotations

import glob
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_tools.readers import (
    ANSWER_NAMES,
    QUESTION_NAMES,
    DataError,
    RawRow,
    find_category_column,
    pick_column,
    read_rows,
)
from data_tools.html_text import html_to_text
from data_tools.pii import PiiScrubber
from tunebot.config import DataConfig, SourceConfig
from tunebot.prompts import make_record
from tunebot.text import detect_lang

_SPACE_RUN = re.compile(r"[ \t\u3000]+")


@dataclass
class SourceReport:
    """Counts for one input file."""

    file: str
    rows_in: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    pii: Counter = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        """Returns the report entry written to report.json."""
        return {
            "file": self.file,
            "rows_in": self.rows_in,
            "kept": self.kept,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected),
            "pii_found": dict(self.pii),
        }


def clean_text(value: Any) -> str:
    """Trims a field and tidies whitespace while keeping line breaks inside an answer.

    >>> clean_text("  Hello\\r\\n  world  ")
    'Hello\\nworld'
    """
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACE_RUN.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def dedupe_key(question: str, answer: str) -> str:
    """Returns the key two pairs share when they are the same pair up to width, case and spacing."""
    folded = unicodedata.normalize("NFKC", f"{question}\u0000{answer}").casefold()
    return re.sub(r"\s+", "", folded)


def expand_sources(sources: list[SourceConfig]) -> list[tuple[SourceConfig, Path]]:
    """Expands globs; a path or glob that matches nothing is an error naming it."""
    expanded = []
    for source in sources:
        matches = sorted(glob.glob(source.path, recursive=True)) if glob.has_magic(source.path) else [source.path]
        if not matches or not Path(matches[0]).exists():
            raise DataError(f"{source.path}: no such file (data.sources)")
        expanded.extend((source, Path(match)) for match in matches)
    return expanded


def _columns(source: SourceConfig, path: Path, first: RawRow) -> tuple[str, str, str | None]:
    columns = list(first.fields)
    question = pick_column(columns, source.question_field, QUESTION_NAMES, "question", path)
    answer = pick_column(columns, source.answer_field, ANSWER_NAMES, "answer", path)
    return question, answer, find_category_column(columns)


def _reject(row: RawRow, reason: str, field_name: str | None, scrub: PiiScrubber | None) -> dict[str, Any]:
    # The user's row is kept with the reject, scrubbed like the records: nothing unredacted leaks.
    fields = {key: scrub.redact_and_count(value)[0] if scrub and isinstance(value, str) else value for key, value in row.fields.items()}
    return {"source": row.source, "reason": reason, "field": field_name, "row": fields}


def _check_pair(question: str, answer: str, cfg: DataConfig) -> tuple[str, str] | None:
    if not question:
        return "empty question", "question"
    if not answer:
        return "empty answer", "answer"
    if len(answer) < cfg.min_answer_chars:
        return f"answer shorter than {cfg.min_answer_chars} characters", "answer"
    for name, text in (("question", question), ("answer", answer)):
        if len(text) > cfg.max_chars:
            return f"{name} longer than {cfg.max_chars} characters ({len(text)})", name
    if dedupe_key(question, "") == dedupe_key(answer, ""):
        return "answer repeats the question", "answer"
    return None


def build_records(cfg: DataConfig, system_prompt: str) -> tuple[list[dict], list[dict], list[SourceReport]]:
    """Reads every source and returns (records, rejects, per-source reports).

    >>> records, rejects, reports = build_records(cfg.data, cfg.system_prompt)   # doctest: +SKIP
    """
    records: list[dict] = []
    rejects: list[dict] = []
    reports: list[SourceReport] = []
    seen: dict[str, str] = {}
    scrub = None if cfg.pii == "keep" else PiiScrubber(custom=cfg.pii_patterns, allow=cfg.pii_allow)
    for source, path in expand_sources(cfg.sources):
        report = SourceReport(str(path))
        reports.append(report)
        columns: tuple[str, str, str | None] | None = None
        for row in read_rows(path, source.format, source.encoding, source.sheet):
            report.rows_in += 1
            if row.error:
                rejects.append(_reject(row, row.error, None, scrub))
                report.rejected[row.error.split(":")[0]] += 1
                continue
            columns = columns or _columns(source, path, row)
            outcome = _process_row(row, columns, cfg, seen, scrub, report)
            if isinstance(outcome, Problem):
                rejects.append(_reject(row, outcome.reason, outcome.field, scrub))
                report.rejected[outcome.reason.split(" (")[0]] += 1
                continue
            question, answer = outcome
            seen[dedupe_key(question, answer)] = row.source
            record_id = f"{path.stem}-{row.line:05d}"
            record = make_record(record_id, row.source, detect_lang(question + answer), system_prompt, question, answer)
            category = clean_text(row.fields.get(columns[2])) if columns[2] else ""
            if category:
                record["category"] = category
            records.append(record)
            report.kept += 1
        if report.rows_in == 0:
            raise DataError(f"{path}: no rows (only a header or blank lines)")
    return records, rejects, reports


@dataclass(frozen=True)
class Problem:
    """Why a row was rejected, and which field is at fault (None when it is the row as a whole)."""

    reason: str
    field: str | None = None


def _field_text(value: Any, cfg: DataConfig) -> str:
    text = clean_text(value)
    return clean_text(html_to_text(text)) if cfg.html_to_text else text


def _process_row(
    row: RawRow, columns: tuple[str, str, str | None], cfg: DataConfig, seen: dict[str, str], scrub: PiiScrubber | None,
    report: SourceReport,
) -> tuple[str, str] | Problem:
    for name in columns[:2]:
        if name not in row.fields:
            return Problem(f"missing field {name!r}", name)
    question, answer = _field_text(row.fields[columns[0]], cfg), _field_text(row.fields[columns[1]], cfg)
    for pattern in cfg.answer_boilerplate:
        answer = clean_text(re.sub(pattern, "", answer, flags=re.MULTILINE))
    if scrub is not None:
        (question, in_question), (answer, in_answer) = scrub.redact_and_count(question), scrub.redact_and_count(answer)
        found = in_question + in_answer
        report.pii.update(found)
        if found and cfg.pii == "drop":
            return Problem(f"contains personal data ({', '.join(sorted(found))})")
    problem = _check_pair(question, answer, cfg)
    if problem:
        return Problem(*problem)
    earlier = seen.get(dedupe_key(question, answer))
    if earlier:
        return Problem(f"duplicate (same question and answer as {earlier})")
    return question, answer
