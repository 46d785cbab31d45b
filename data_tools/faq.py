"""FAQ rows (question/answer columns) -> candidates or rejects, in worker processes for big files.

    python -c "from tunebot.config import parse_config; from data_tools.build import build_records; print(build_records(parse_config({'name': 'x', 'data': {'sources': [{'path': 'examples/data/acme_faq_en.jsonl'}]}}).data, 'S')[0][0])"

Cleaning, PII scanning and sketching are most of the data stage's time, and rows are independent:
large files are cut into chunks that `data.workers` processes clean (this one included), while
this process also reads the file, keeps the order and decides exact duplicates. The output is the
same either way.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from data_tools.forks import widen_result_pipe
from data_tools.jsonio import dumps_line
from data_tools.normalize import clean_text
from data_tools.readers import RawRow
from tunebot.config import DataConfig, SourceConfig

if TYPE_CHECKING:
    from data_tools.build import Candidate, RecordBuilder

PARALLEL_MIN_BYTES = 4 << 20  # smaller files are cleaned in-process (starting workers costs ~0.2 s)
CHUNK_ROWS = 2000
IN_FLIGHT = 4  # chunks queued per worker: enough that none runs dry while this process cleans one
Columns = tuple[str, str, "str | None"]
Result = tuple[Any, int, "Counter | None"]  # (candidate, its tuple from a worker, or reject; duplicate key; PII found)
Sketches = tuple[np.ndarray, np.ndarray, np.ndarray] | None  # MinHash signatures, bottom-k values and lengths


def faq_units(builder: RecordBuilder, source: SourceConfig, path: Path, file_index: int) -> Iterator[Candidate | dict[str, Any]]:
    """Yields one candidate or reject per row of an FAQ file, in file order."""
    from data_tools.build import rows_of, worker_count

    rows = rows_of(source, path)
    workers = worker_count(builder.cfg)
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
        return builder.reject(row.source, row.error or "unreadable row", None, row.fields), 0, None
    for name in columns[:2]:
        if name not in row.fields:
            return builder.reject(row.source, f"missing field {name!r}", name, row.fields), 0, None
    question = builder.cleaner.field(row.fields[columns[0]])
    answer = builder.cleaner.answer(row.fields[columns[1]])
    found: Counter | None = None
    if builder.scrub is not None:
        (question, in_question), (answer, in_answer) = builder.scrub.redact_and_count(question), builder.scrub.redact_and_count(answer)
        if in_question or in_answer:
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


def _start_worker(cfg: DataConfig, system_prompt: str, columns: Columns | None, file_index: int, builder: RecordBuilder | None = None) -> None:
    from data_tools.build import RecordBuilder

    _WORKER.update(builder=builder or RecordBuilder(cfg, system_prompt), columns=columns, file_index=file_index)


def _work(rows: list[tuple[str, int, dict[str, Any], str | None]]) -> tuple[list[Result], Sketches]:
    """Cleans a chunk of rows; candidates travel back as their JSON line, their question's
    sketches as arrays for the whole chunk (made here: they are a fifth of the per-row work)."""
    from data_tools.dedupe import sketch_batch

    builder, columns, file_index = _WORKER["builder"], _WORKER["columns"], _WORKER["file_index"]
    results: list[Result] = []
    matches: list[str] = []
    for row in rows:
        outcome, key, found = unit(builder, RawRow(*row), columns, file_index)
        if key:  # serialized here, and sent as a plain tuple (a tenth of a Candidate's pickling)
            matches.append(outcome.match)
            outcome = (dumps_line(outcome.record), len(outcome.question), len(outcome.answer), outcome.category, outcome.lang)
        results.append((outcome, key, found))
    return results, sketch_batch(matches, normalized=True) if matches else None


def _parallel(
    builder: RecordBuilder, source: SourceConfig, path: Path, rows: Iterator[RawRow], file_index: int, workers: int
) -> Iterator[tuple[RawRow, Result]]:
    """Cleans chunks of rows in `workers - 1` processes and in this one, which reads the file and
    takes the next chunk itself whenever the others have IN_FLIGHT chunks each in flight.

    One process fewer than cores: on 2 cores a third busy process made every row ~1.4x dearer.
    """
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
    builder.cleaner.field("ｱ")  # builds the cleaner's lazy tables here, once, not in every worker
    with ProcessPoolExecutor(workers - 1, mp_context=context, initializer=_start_worker, initargs=args) as pool:
        widen_result_pipe(pool)
        _start_worker(*args, builder=builder)  # this process cleans chunks too (workers replace it with their own)
        try:
            pending: deque[tuple[list[RawRow], Future | tuple]] = deque()
            for chunk in iter(lambda: list(itertools.islice(rows, CHUNK_ROWS)), []):
                if sum(isinstance(done, Future) and not done.done() for _, done in pending) < IN_FLIGHT * (workers - 1):
                    pending.append((chunk, pool.submit(_work, _payload(chunk))))
                else:  # the workers are busy: clean this chunk here rather than wait
                    pending.append((chunk, _work(_payload(chunk))))
                while pending and (len(pending) > 2 * IN_FLIGHT * workers or not isinstance(pending[0][1], Future) or pending[0][1].done()):
                    yield from _collect(pending.popleft(), file_index)
            while pending:
                yield from _collect(pending.popleft(), file_index)
        finally:
            _WORKER.clear()


def _payload(chunk: list[RawRow]) -> list[tuple[str, int, dict[str, Any], str | None]]:
    return [(row.file, row.line, row.fields, row.error) for row in chunk]


def _collect(item: tuple[list[RawRow], Future | tuple], file_index: int) -> Iterator[tuple[RawRow, Result]]:
    """Yields a chunk's rows and results, each candidate rebuilt from its tuple and given its row
    of the chunk's sketches.

    A chunk still queued for a worker is taken back and cleaned here rather than waited for.
    """
    from data_tools.build import Candidate

    chunk, done = item
    if isinstance(done, Future):
        done = _work(_payload(chunk)) if not done.done() and done.cancel() else done.result()
    results, sketches = done
    number = 0
    for row, (outcome, key, found) in zip(chunk, results):
        if key:
            line, question_chars, answer_chars, category, lang = outcome
            outcome = Candidate(None, "", "", file_index, category, line=line, lang=lang, sketch=(sketches, number),
                                sizes=(question_chars, answer_chars))
            number += 1
        yield row, (outcome, key, found)
