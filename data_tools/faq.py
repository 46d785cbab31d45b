"""FAQ rows (question/answer columns) -> candidates or rejects, in worker processes for big files.

    python -c "from tunebot.config import parse_config; from data_tools.build import build_records; print(build_records(parse_config({'name': 'x', 'data': {'sources': [{'path': 'examples/data/acme_faq_en.jsonl'}]}}).data, 'S')[0][0])"

Cleaning and PII scanning are most of the data stage's time, and rows are independent: large
files are cut into chunks that `data.workers` processes clean, while this process reads the
file, keeps the order and decides exact duplicates. The output is the same either way.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_tools.normalize import clean_text
from data_tools.readers import RawRow
from tunebot.config import DataConfig, SourceConfig

if TYPE_CHECKING:
    from data_tools.build import Candidate, RecordBuilder

PARALLEL_MIN_BYTES = 4 << 20  # smaller files are cleaned in-process (starting workers costs ~0.2 s)
CHUNK_ROWS = 2000
Columns = tuple[str, str, "str | None"]
Result = tuple[Any, int, Counter]  # (candidate or reject, duplicate key, PII found)


def faq_units(builder: RecordBuilder, source: SourceConfig, path: Path, file_index: int) -> Iterator[Candidate | dict[str, Any]]:
    """Yields one candidate or reject per row of an FAQ file, in file order."""
    from data_tools.build import rows_of

    rows = rows_of(source, path)
    workers = builder.cfg.workers or min(4, os.cpu_count() or 1)
    if workers > 1 and path.stat().st_size >= PARALLEL_MIN_BYTES:
        results: Iterable[tuple[RawRow, Result]] = _parallel(builder, source, path, rows, file_index, workers)
    else:
        results = _serial(builder, source, path, rows, file_index)
    for row, (outcome, key, found) in results:
        if found:
            builder.reports[file_index].pii.update(found)
        if key:  # it passed the filters; duplicates are decided here, in file order
            problem = builder.check_duplicate(key, row.source)
            if problem:
                outcome = builder.reject(row.source, problem[0], None, row.fields)
        yield outcome


def _serial(builder: RecordBuilder, source: SourceConfig, path: Path, rows: Iterator[RawRow], file_index: int) -> Iterator[tuple[RawRow, Result]]:
    from data_tools.build import columns_of

    columns: Columns | None = None
    for row in rows:
        if not row.error:
            columns = columns or columns_of(source, path, row)
        yield row, unit(builder, row, columns, file_index)


def unit(builder: RecordBuilder, row: RawRow, columns: Columns | None, file_index: int) -> Result:
    """Cleans and checks one row (everything but the duplicate check)."""
    if row.error or columns is None:
        return builder.reject(row.source, row.error or "unreadable row", None, row.fields), 0, Counter()
    for name in columns[:2]:
        if name not in row.fields:
            return builder.reject(row.source, f"missing field {name!r}", name, row.fields), 0, Counter()
    question = builder.cleaner.field(row.fields[columns[0]])
    answer = builder.cleaner.answer(row.fields[columns[1]])
    found: Counter = Counter()
    if builder.scrub is not None:
        (question, in_question), (answer, in_answer) = builder.scrub.redact_and_count(question), builder.scrub.redact_and_count(answer)
        found = in_question + in_answer
    if found and builder.cfg.pii == "drop":
        return builder.reject(row.source, f"contains personal data ({', '.join(sorted(found))})", None, row.fields), 0, found
    problem, key, match = builder.check_quality(question, answer)
    if problem:
        return builder.reject(row.source, problem[0], problem[1], row.fields), 0, found
    record_id = f"{builder.prefixes[file_index]}-{row.line:05d}"
    candidate = builder.candidate(record_id, row.source, [{"role": "user", "content": question}], answer, file_index)
    candidate.match = match
    category = clean_text(row.fields.get(columns[2])) if columns[2] else ""
    if category:
        candidate.record["category"] = candidate.category = category
    return candidate, key, found


_WORKER: dict[str, Any] = {}


def _start_worker(cfg: DataConfig, system_prompt: str, columns: Columns | None, file_index: int) -> None:
    from data_tools.build import RecordBuilder

    _WORKER.update(builder=RecordBuilder(cfg, system_prompt), columns=columns, file_index=file_index)


def _work(rows: list[tuple[str, int, dict[str, Any], str | None]]) -> list[Result]:
    """Cleans a chunk of rows; candidates travel back as their JSON line and sketch texts only."""
    from data_tools.build import Candidate

    builder, columns, file_index = _WORKER["builder"], _WORKER["columns"], _WORKER["file_index"]
    results: list[Result] = []
    for row in rows:
        outcome, key, found = unit(builder, RawRow(*row), columns, file_index)
        if key:  # serialize here, not in the reading process
            line = json.dumps(outcome.record, ensure_ascii=False) + "\n"
            outcome = Candidate(None, outcome.question, outcome.answer, file_index, outcome.category, line=line, lang=outcome.lang, match=outcome.match)
        results.append((outcome, key, found))
    return results


def _parallel(
    builder: RecordBuilder, source: SourceConfig, path: Path, rows: Iterator[RawRow], file_index: int, workers: int
) -> Iterator[tuple[RawRow, Result]]:
    """Cleans chunks of rows in worker processes, at most 2 chunks per worker in flight."""
    from data_tools.build import columns_of

    head: list[RawRow] = []
    for row in rows:  # the columns come from the first readable row
        head.append(row)
        if not row.error:
            break
    good = head[-1] if head and not head[-1].error else None
    columns = columns_of(source, path, good) if good else None
    rows = itertools.chain(head, rows)
    context = multiprocessing.get_context("fork")  # not spawn: it would re-run an unguarded calling script
    args = (builder.cfg, builder.system_prompt, columns, file_index)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=args) as pool:
        pending: deque[tuple[list[RawRow], Future]] = deque()
        for chunk in iter(lambda: list(itertools.islice(rows, CHUNK_ROWS)), []):
            pending.append((chunk, pool.submit(_work, [(r.file, r.line, r.fields, r.error) for r in chunk])))
            if len(pending) >= 2 * workers:
                yield from _collect(pending.popleft())
        while pending:
            yield from _collect(pending.popleft())


def _collect(item: tuple[list[RawRow], Future]) -> Iterator[tuple[RawRow, Result]]:
    chunk, future = item
    yield from zip(chunk, future.result())
