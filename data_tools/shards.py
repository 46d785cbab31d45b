"""The read step: one source file -> shards of units (FAQ rows or conversations) in the work folder.

    python -c "from data_tools.shards import *; print(expand_sources([SourceConfig(path='examples/data/*.csv')]))"

The format readers (readers.py, sheets.py, markdown.py, conversations.py) turn a file's bytes into
units with their physical line; this step cuts them into shards of SHARD_UNITS, pickled, so the
clean step can run on any worker. A shard's number is its file's index << 16 | its part, and a
record's ordinal is its shard's number << 24 | its place in the shard: file order, worker-free.
"""

from __future__ import annotations

import glob
import itertools
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_tools.readers import (ANSWER_NAMES, QUESTION_NAMES, DataError, RawRow, find_category_column, pick_column,
                                read_rows)
from tunebot.config import SourceConfig
from tunebot.rundir import atomic_open

SHARD_UNITS = 20_000
PLACE_BITS = 24  # an ordinal is shard << PLACE_BITS | place


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
    seen: dict[str, int] = {}
    prefixes = []
    for path in paths:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        prefixes.append(path.stem if seen[path.stem] == 1 else f"{path.stem}{seen[path.stem]}")
    return prefixes


def columns_of(source: SourceConfig, path: Path, first: RawRow) -> tuple[str, str, str | None]:
    """Returns the (question, answer, category or None) columns of an FAQ file."""
    columns = list(first.fields)
    question = pick_column(columns, source.question_field, QUESTION_NAMES, "question", path)
    answer = pick_column(columns, source.answer_field, ANSWER_NAMES, "answer", path)
    if source.category_field is not None:
        return question, answer, pick_column(columns, source.category_field, (), "category", path)
    return question, answer, find_category_column(columns)


def _faq_units(source: SourceConfig, path: Path, head: dict[str, Any]) -> Iterator[tuple]:
    """Yields (line, fields, error) per FAQ row; the columns go into `head` at the first good row."""
    for row in read_rows(path, source.format, source.encoding, source.sheet, source.header_row):
        if not row.error and head["columns"] is None:
            head["columns"] = columns_of(source, path, row)
        yield row.line, row.fields, row.error


def read_source(index: int, source: SourceConfig, path: str, work: str, size: int = SHARD_UNITS) -> dict[str, Any]:
    """Reads one source file into shards of `size` units under `work`/units; returns their numbers and count."""
    head: dict[str, Any] = {"file": path, "index": index, "kind": source.kind, "columns": None}
    if source.kind == "faq":
        units: Iterator[Any] = _faq_units(source, Path(path), head)
    else:
        from data_tools.conversations import read_conversations

        units = read_conversations(path, source.format, source.encoding, source.agent_roles, source.customer_roles,
                                   source.skip_roles, source.ticket_fields)
    shards, count = [], 0
    for part in itertools.count():
        chunk = list(itertools.islice(units, size))
        if not chunk and part:
            break
        number = index << 16 | part
        with atomic_open(Path(work) / "units" / f"{number}.pickle", binary=True) as handle:
            pickle.dump({**head, "units": chunk}, handle, protocol=pickle.HIGHEST_PROTOCOL)
        shards.append(number)
        count += len(chunk)
        if len(chunk) < size:
            break
    if count == 0:
        raise DataError(f"{path}: no rows (only a header or blank lines)")
    return {"shards": shards, "units": count}


def load_units(work: Path, number: int) -> dict[str, Any]:
    """Returns a shard written by `read_source`: its file, kind, columns and units."""
    with open(work / "units" / f"{number}.pickle", "rb") as handle:
        return pickle.load(handle)
