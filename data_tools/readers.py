"""Readers for FAQ files (CSV, TSV, JSONL, JSON): bytes in any common encoding -> numbered rows.

    python -c "from data_tools.readers import read_rows; print(next(read_rows('examples/data/acme_faq_en.jsonl')))"

Every physical row comes out as a `RawRow`, good or bad, so the caller can account for each one:
a broken JSON line is a row with an error, not a crash. A file that cannot be read at all
(unknown encoding, unknown format) raises `DataError` naming the file.
"""

from __future__ import annotations

import codecs
import csv
import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from data_tools import jsonio
from data_tools.rows import ANSWER_NAMES, CATEGORY_NAMES, QUESTION_NAMES, DataError, RawRow  # noqa: F401 (re-exported)

# Tried in order when the config names no encoding; UTF-8 first because CP932 decodes almost
# any byte string (into mojibake), so it must come last.
ENCODINGS = ("utf-8-sig", "cp932", "euc_jp")


def candidate_encodings(path: Path) -> tuple[str, ...]:
    """Returns the encodings to try, most likely first: UTF-16 when the file starts with its BOM
    (Excel's "Unicode text"), else UTF-8, then CP932 and EUC-JP in the order charset-normalizer
    prefers for the file's first 256 KB (either decodes most of the other's bytes, as mojibake).
    """
    with open(path, "rb") as handle:
        head = handle.read(1 << 18)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return ("utf-16",)
    try:
        head.decode("utf-8")
        return ENCODINGS
    except UnicodeDecodeError as error:
        if len(head) == 1 << 18 and error.start >= len(head) - 3:
            return ENCODINGS  # only a character cut at the end of the sample
    from charset_normalizer import from_bytes

    best = from_bytes(head, cp_isolation=["cp932", "euc_jp"]).best()
    return ("utf-8-sig", "euc_jp", "cp932") if best is not None and best.encoding == "euc_jp" else ENCODINGS

def find_category_column(columns: list[str]) -> str | None:
    """Returns the optional category column, kept on records as metadata, or None."""
    by_key = {_name_key(column): column for column in columns}
    return next((by_key[name] for name in CATEGORY_NAMES if name in by_key), None)

csv.field_size_limit(1 << 30)


def decode(path: Path, encoding: str | None = None) -> tuple[str, str]:
    """Returns the whole file's text (newlines as written) and the encoding that decoded it.

    >>> decode(Path("examples/data/acme_faq_ja.csv"))[1]   # doctest: +SKIP
    'utf-8-sig'
    """
    chosen = detect_encoding(path, encoding)
    with open(path, encoding=chosen, newline="") as handle:
        return handle.read(), chosen


def detect_encoding(path: Path, encoding: str | None = None, chunk: int = 1 << 20) -> str:
    """Returns the encoding that decodes the whole file, checked in chunks without keeping the text.

    Raises DataError naming the line of the first bad byte, or the file when it holds only spaces.
    """
    failures = []
    for candidate in (encoding,) if encoding else candidate_encodings(path):
        decoder = codecs.getincrementaldecoder(candidate)()
        lines, content = 0, False
        with open(path, "rb") as handle:
            try:
                while data := handle.read(chunk):
                    content = content or bool(data.strip())
                    decoder.decode(data)
                    lines += data.count(b"\n")
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as error:
                line = lines + data[: error.start].count(b"\n") + 1
                if encoding:
                    raise DataError(f"{path}:{line}: not valid {encoding} ({error.reason})") from None
                failures.append(f"{candidate}: {error.reason} at line {line}")
                continue
        if not content:
            raise DataError(f"{path}: file is empty")
        return candidate
    raise DataError(f"{path}: unknown text encoding ({'; '.join(failures)}); set `encoding:` for this source")


def open_text(path: Path, encoding: str | None = None) -> IO[str]:
    """Opens a text file for streaming in its (detected) encoding, newlines untranslated."""
    return open(path, encoding=detect_encoding(path, encoding), newline="")


def detect_format(path: Path, declared: str) -> str:
    """Returns csv, tsv, jsonl or json from the config, else the extension."""
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    known = {
        ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
        ".xlsx": "xlsx", ".md": "markdown", ".markdown": "markdown",
    }
    if suffix not in known:
        raise DataError(
            f"{path}: unknown file format {suffix!r}; set `format:` (csv, tsv, jsonl, json, xlsx, markdown)")
    return known[suffix]


def _name_key(name: str) -> str:
    return unicodedata.normalize("NFKC", str(name)).strip().lower()


def pick_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...], role: str, path: Path) -> str:
    """Returns the column holding `role`: the configured one, else the first common name found."""
    if wanted is not None:
        if wanted in columns:
            return wanted
        raise DataError(f"{path}: {role} column {wanted!r} not found; columns are {columns}")
    by_key = {_name_key(column): column for column in columns}
    for name in candidates:
        if name in by_key:
            return by_key[name]
    raise DataError(
        f"{path}: no {role} column found among {columns}; name it one of {list(candidates)} "
        f"or set `{role}_field:` for this source"
    )


def delimited_row(file: str, line: int, header: list[str], values: list[str]) -> RawRow | None:
    """Returns the row of a CSV/TSV record starting on physical `line`, None for a blank separator line."""
    if not any(map(str.strip, values)):
        return None
    if len(values) != len(header):
        return RawRow(file, line, dict(zip(header, values)), f"has {len(values)} fields, header has {len(header)}")
    return RawRow(file, line, dict(zip(header, values)))


def jsonl_row(file: str, number: int, line: str) -> RawRow | None:
    """Returns the row of JSONL line `number`: its object, or an error naming what is wrong; None when blank."""
    if not line.strip():
        return None
    line = line.replace("\ufeff", "")  # a BOM where two exports were concatenated (or inside a value): no meaning
    try:
        obj = jsonio.loads(line)
    except json.JSONDecodeError as error:
        return RawRow(file, number, {"raw": line.rstrip("\r\n")},
                      f"broken JSON line: {error.msg} (column {error.colno})")
    if not isinstance(obj, dict):
        return RawRow(file, number, {"raw": line.rstrip("\r\n")}, f"expected a JSON object, got {type(obj).__name__}")
    return RawRow(file, number, obj)


def _read_delimited(path: Path, text: IO[str], delimiter: str) -> Iterator[RawRow]:
    reader = csv.reader(text, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    start, file = reader.line_num + 1, str(path)
    for values in reader:
        line, start = start, reader.line_num + 1
        row = delimited_row(file, line, header, values)
        if row is not None:
            yield row


def _read_jsonl(path: Path, text: IO[str]) -> Iterator[RawRow]:
    file = str(path)
    for number, line in enumerate(text, start=1):
        row = jsonl_row(file, number, line)
        if row is not None:
            yield row


def json_array_items(path: Path, text: str, what: str = "objects") -> list[Any]:
    """Returns the items of a file holding one JSON array; anything else is a DataError naming it."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON array of {what}, got {type(items).__name__}")
    return items


def _read_json_array(path: Path, text: str) -> Iterator[RawRow]:
    for index, obj in enumerate(json_array_items(path, text), start=1):
        if isinstance(obj, dict):
            yield RawRow(str(path), index, obj)
        else:
            yield RawRow(str(path), index, {"raw": json.dumps(obj, ensure_ascii=False)},
                         f"item {index} is not a JSON object")


def read_rows(
    path: str | Path, fmt: str = "auto", encoding: str | None = None, sheet: str | None = None,
    header_row: int | None = None,
) -> Iterator[RawRow]:
    """Yields every row of a FAQ file; `line` is the physical line (JSON arrays: the item number).

    >>> rows = list(read_rows("examples/data/acme_faq_ja.csv")); rows[0].line   # doctest: +SKIP
    2
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    kind = detect_format(path, fmt)
    if kind == "xlsx":
        from data_tools.sheets import read_xlsx

        yield from read_xlsx(path, sheet, header_row)
        return
    if kind in ("csv", "tsv", "jsonl"):
        with open_text(path, encoding) as handle:
            if kind == "jsonl":
                yield from _read_jsonl(path, handle)
            else:
                yield from _read_delimited(path, handle, "," if kind == "csv" else "\t")
        return
    text, _ = decode(path, encoding)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    if kind == "markdown":
        from data_tools.markdown import read_markdown

        yield from read_markdown(path, text)
    else:
        yield from _read_json_array(path, text)
