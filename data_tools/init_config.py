"""`tunebot init FILE...`: inspects a user's own files and writes a commented run config for them.

    tunebot init exports/tickets.csv faq.xlsx help.md --out myshop.yaml

For each file it decides, and says why (the evidence goes into the config as comments):
- the kind: a support log when a ticket export's columns (ticket id + role + body), a help-desk
  tool's JSON shape, conversation messages or a transcript are found, else a FAQ;
- the format, the text encoding (the one that decodes the whole file), an .xlsx header row;
- the question, answer and category columns (common names, else the two text columns: the
  shorter one, more often ending in a question mark, is the question);
- for logs, the roles it could not map (given as agent_roles / customer_roles / skip_roles to fill);
- which kinds of personal data a sample of the rows holds (pii stays `redact`).
It then builds the pairs of each source as `tunebot data` would and shows 3 of them, with the
reject reasons, so a wrong guess is seen before any training.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_tools.readers import ANSWER_NAMES, QUESTION_NAMES, DataError, decode, detect_encoding, find_category_column

SAMPLE_ROWS = 500


@dataclass
class Finding:
    """What was decided for one file, and the evidence."""

    path: Path
    source: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    pii: Counter = field(default_factory=Counter)
    japanese: bool = False  # a sample holds kana or kanji


_JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")


def _names(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    by_key = {column.strip().lower(): column for column in columns}
    return next((by_key[name] for name in wanted if name in by_key), None)


def _guess_pair(columns: list[str], rows: list[dict[str, str]]) -> tuple[str, str] | None:
    """The question and answer columns of a table without common names: its two most textual columns."""
    texts = [c for c in columns if sum(len(str(r.get(c, ""))) > 8 for r in rows) >= max(1, len(rows) // 2)]
    if len(texts) < 2:
        return None
    asks = {c: sum(str(r.get(c, "")).rstrip().endswith(("?", "？")) for r in rows) for c in texts}
    length = {c: sum(len(str(r.get(c, ""))) for r in rows) for c in texts}
    question = max(texts, key=lambda c: (asks[c], -length[c]))
    answer = max((c for c in texts if c != question), key=lambda c: length[c])
    return question, answer


def _table(finding: Finding, columns: list[str], rows: list[dict[str, str]]) -> None:
    """Decides a CSV/TSV/xlsx table: a ticket export (support log), else a FAQ and its columns."""
    from data_tools.conversations import TICKET_COLUMNS, _key

    keys = {_key(column): column for column in columns}
    ticket = {part: next((keys[_key(n)] for n in names if _key(n) in keys), None)
              for part, names in TICKET_COLUMNS.items()}
    if ticket["ticket"] and ticket["role"] and ticket["body"]:
        finding.source["kind"] = "support_log"
        finding.evidence.append("a ticket export: " + ", ".join(f"{part} = {column!r}"
                                                                for part, column in ticket.items() if column))
        return
    question, answer = _names(columns, QUESTION_NAMES), _names(columns, ANSWER_NAMES)
    if question and answer:
        finding.evidence.append(f"a FAQ table: question = {question!r}, answer = {answer!r} (common column names)")
    else:
        guess = _guess_pair(columns, rows)
        if guess is None:
            finding.unmapped.append(f"no question/answer columns among {columns}: set question_field and answer_field")
            return
        question, answer = guess
        finding.source.update(question_field=question, answer_field=answer)
        finding.evidence.append(f"a FAQ table without common names: question = {question!r} (more rows end in a "
                                f"question mark), answer = {answer!r} (the longest text)")
    category = find_category_column(columns)
    if category:
        finding.evidence.append(f"category = {category!r}")


def _inspect_table(finding: Finding, path: Path, kind: str) -> list[str]:
    """Reads the header and a sample of a table; returns the sample's texts."""
    if kind == "xlsx":
        from data_tools.sheets import _cell_text, _grid, _open, find_header

        book = _open(path, data_only=True)
        grid = [[_cell_text(v) for v in row] for row in _grid(book[book.sheetnames[0]])]
        top = find_header(grid)
        if top:
            finding.source["header_row"] = top + 1
            finding.evidence.append(f"header in row {top + 1} (title rows above it)")
        columns = [cell.strip() for cell in grid[top]]
        rows = [dict(zip(columns, cells)) for cells in grid[top + 1:top + 1 + SAMPLE_ROWS]]
    else:
        encoding = detect_encoding(path)
        finding.evidence.append(f"encoding {encoding} (decodes the whole file)")
        if encoding not in ("utf-8", "utf-8-sig"):
            finding.source["encoding"] = encoding
        with open(path, encoding=encoding, newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if kind == "tsv" else ",")
            rows = [row for _, row in zip(range(SAMPLE_ROWS), reader)]
            columns = list(reader.fieldnames or [])
    _table(finding, columns, rows)
    return [str(value) for row in rows for value in row.values() if value]


def _inspect_json(finding: Finding, path: Path, kind: str) -> list[str]:
    from data_tools.conversations import MESSAGE_LISTS
    from data_tools.helpdesk import adapt, unwrap

    text, encoding = decode(path)
    finding.evidence.append(f"encoding {encoding}")
    users: dict = {}
    if kind == "jsonl":
        objects = []
        for number, line in enumerate(text.splitlines()[:SAMPLE_ROWS], start=1):
            try:
                objects += [json.loads(line.replace("\ufeff", ""))] if line.strip() else []
            except json.JSONDecodeError as error:  # `tunebot data` will reject that line; the rest can still be read
                finding.unmapped.append(f"line {number} is not valid JSON ({error.msg}): it will be a reject")
    else:
        try:
            objects, users = unwrap(json.loads(text))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    first = next((obj for obj in objects if isinstance(obj, dict)), {})
    adapted = adapt(first, users) if first else None
    if adapted or any(isinstance(first.get(key), list) for key in MESSAGE_LISTS):
        finding.source["kind"] = "support_log"
        finding.evidence.append(f"{adapted[0]} conversations (read from the tool's own fields)" if adapted
                                else f"conversations with a message list "
                                     f"({[k for k in MESSAGE_LISTS if k in first][0]})")
    else:
        _table(finding, list(first), [o for o in objects if isinstance(o, dict)][:SAMPLE_ROWS])
    return [json.dumps(obj, ensure_ascii=False) for obj in objects[:SAMPLE_ROWS]]


def inspect_file(path: Path) -> Finding:
    """Decides kind, format and columns of one file; raises DataError for a file it cannot read."""
    finding = Finding(path, {"path": str(path)})
    suffix = path.suffix.lower()
    kind = {".csv": "csv", ".tsv": "tsv", ".xlsx": "xlsx", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
            ".md": "markdown", ".markdown": "markdown", ".txt": "transcript", ".log": "transcript"}.get(suffix)
    if kind is None:
        raise DataError(
            f"{path}: cannot tell its format from {suffix!r}: give a .csv, .tsv, .xlsx, .jsonl, .json, .md, "
                        ".txt or .log file")
    finding.evidence.append(f"format {kind} (from the extension)")
    if kind in ("csv", "tsv", "xlsx"):
        texts = _inspect_table(finding, path, kind)
    elif kind in ("json", "jsonl"):
        texts = _inspect_json(finding, path, kind)
    else:
        text, encoding = decode(path)
        finding.evidence.append(f"encoding {encoding}")
        if kind == "transcript":
            finding.source["kind"] = "support_log"
            finding.evidence.append("a chat transcript (speaker lines)")
        texts = text.splitlines()[: SAMPLE_ROWS * 4]
    from data_tools.pii import PiiScrubber

    scrubber = PiiScrubber()
    for piece in texts:
        finding.pii.update(scrubber.scan(piece))
        finding.japanese = finding.japanese or bool(_JAPANESE.search(piece))
    return finding
