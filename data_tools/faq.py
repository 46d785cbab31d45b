"""FAQ rows (question/answer columns) -> candidates or rejects, in worker processes for big files.

    python -c "from tunebot.config import parse_config; from data_tools.build import build_records; print(build_records(parse_config({'name': 'x', 'data': {'sources': [{'path': 'examples/data/acme_faq_en.jsonl'}]}}).data, 'S')[0][0])"

Reading, cleaning, PII scanning and sketching are most of the data stage's time, and rows are
independent: a large CSV/TSV/JSONL file is cut into byte ranges (`data_tools.segments`) that
`data.workers` processes (this one included) each read and clean end to end; this process merges
their results in file order and decides exact duplicates. Formats read whole (XLSX, JSON arrays)
are read here and sent out in chunks of rows. The output is the same either way.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from data_tools.build import Candidate, answer_key
from data_tools.forks import widen_result_pipe
from data_tools.jsonio import dumps_line
from data_tools.normalize import clean_text, fold
from data_tools.readers import RawRow
from tunebot.config import DataConfig, SourceConfig
from tunebot.prompts import make_record
from tunebot.text import detect_lang

if TYPE_CHECKING:
    from data_tools.build import CandidateBatch, RecordBuilder
    from data_tools.segments import FilePlan

PARALLEL_MIN_BYTES = 4 << 20  # smaller files are cleaned in-process (starting workers costs ~0.2 s)
CHUNK_ROWS = 2000
IN_FLIGHT = 4  # chunks queued per worker: enough that none runs dry while this process cleans one
Columns = tuple[str, str, "str | None"]
J = TypeVar("J")
Result = tuple[Any, int, "Counter | None"]  # (candidate, its tuple from a worker, or reject; duplicate key; PII found)
Sketches = tuple[np.ndarray, np.ndarray, np.ndarray] | None  # MinHash signatures, bottom-k values and lengths


def faq_units(builder: RecordBuilder, source: SourceConfig, path: Path, file_index: int) -> Iterator[Candidate | CandidateBatch | dict[str, Any]]:
    """Yields one candidate or reject per row of an FAQ file, in file order (a file cut into
    segments: each segment's rejects, then its candidates as one batch)."""
    from data_tools.build import rows_of, worker_count

    rows = rows_of(source, path)
    workers = worker_count(builder.cfg)
    results: Iterable[tuple[Any, Result]]
    if workers > 1 and path.is_file() and path.stat().st_size >= PARALLEL_MIN_BYTES:
        from data_tools.faq_segments import plan_source, segment_units

        plan = plan_source(source, path)
        if plan:
            yield from segment_units(builder, source, plan, file_index, workers)
            return
        results = _parallel(builder, source, path, rows, file_index, workers)
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
    record = make_record(f"{builder.prefixes[file_index]}-{row.line:05d}", row.source, detect_lang(question + answer),
                         builder.system_prompt, question, answer)  # as builder.candidate would, without its copies
    category = clean_text(row.fields.get(columns[2])) if columns[2] else ""
    if category:
        record["category"] = category
    return Candidate(record, question, answer, file_index, category, match=match), key, found


WORKER: dict[str, Any] = {}  # this process's cleaning state: builder, columns, file number, cut plan


def _start_worker(cfg: DataConfig, system_prompt: str, columns: Columns | None, file_index: int,
                  plan: FilePlan | None = None, builder: RecordBuilder | None = None) -> None:
    from data_tools.build import RecordBuilder

    WORKER.update(builder=builder or RecordBuilder(cfg, system_prompt), columns=columns, file_index=file_index, plan=plan)


def _work(rows: list[tuple[str, int, dict[str, Any], str | None]]) -> tuple[list[Result], Sketches]:
    """Cleans a chunk of rows this process was sent."""
    return clean_rows((RawRow(*row), ()) for row in rows)


def clean_rows(rows: Iterable[tuple[RawRow, tuple]]) -> tuple[list[Result], Sketches]:
    """Cleans rows; candidates travel back as a plain tuple (their JSON line, sizes, category,
    language, then the row's extras: a tenth of a Candidate's pickling), their questions'
    sketches as arrays for the whole batch (made here: they are a fifth of the per-row work)."""
    from data_tools.dedupe import sketch_batch

    builder, columns, file_index = WORKER["builder"], WORKER["columns"], WORKER["file_index"]
    results: list[Result] = []
    matches: list[str] = []
    for row, extra in rows:
        outcome, key, found = unit(builder, row, columns, file_index)
        if key:
            matches.append(outcome.match)
            outcome = (dumps_line(outcome.record), len(outcome.question), len(outcome.answer), outcome.category, outcome.lang,
                       answer_key(outcome.answer), *extra)
        results.append((outcome, key, found))
    return results, sketch_batch(matches, normalized=True) if matches else None


@contextmanager
def cleaning_pool(builder: RecordBuilder, columns: Columns | None, file_index: int, workers: int, plan: FilePlan | None = None) -> Iterator[ProcessPoolExecutor]:
    """Starts `workers - 1` forked cleaning processes; this one cleans too, with its own builder.

    One process fewer than cores: on 2 cores a third busy process made every row ~1.4x dearer.
    """
    context = multiprocessing.get_context("fork")  # not spawn: it would re-run an unguarded calling script
    args = (builder.cfg, builder.system_prompt, columns, file_index, plan)
    builder.cleaner.field("ｱ"), fold("ｱ")  # builds the lazy tables here, once, not in every worker
    with ProcessPoolExecutor(workers - 1, mp_context=context, initializer=_start_worker, initargs=args) as pool:
        widen_result_pipe(pool)
        _start_worker(*args, builder=builder)  # workers replace this process's state with their own
        try:
            yield pool
        finally:
            WORKER.clear()


def in_order(jobs: Iterable[J], submit: Callable[[J], Future], run_here: Callable[[J], Any], workers: int,
              in_flight: int = IN_FLIGHT) -> Iterator[tuple[J, Any]]:
    """Yields (job, result) in job order. A job goes to the pool while its processes have fewer than
    `in_flight` each unfinished, else this process runs it rather than wait; a job still queued when
    its turn comes is taken back and run here."""
    pending: deque[tuple[J, Future | Any]] = deque()
    for job in jobs:
        busy = sum(isinstance(done, Future) and not done.done() for _, done in pending)
        pending.append((job, submit(job) if busy < in_flight * (workers - 1) else run_here(job)))
        while pending and (len(pending) > 2 * in_flight * workers or not isinstance(pending[0][1], Future) or pending[0][1].done()):
            yield _settled(*pending.popleft(), run_here)
    while pending:
        yield _settled(*pending.popleft(), run_here)


def _settled(job: J, done: Future | Any, run_here: Callable[[J], Any]) -> tuple[J, Any]:
    if isinstance(done, Future):
        done = run_here(job) if not done.done() and done.cancel() else done.result()
    return job, done


def _parallel(
    builder: RecordBuilder, source: SourceConfig, path: Path, rows: Iterator[RawRow], file_index: int, workers: int
) -> Iterator[tuple[RawRow, Result]]:
    """Cleans chunks of rows this process reads (formats that cannot be cut: XLSX, JSON arrays,
    UTF-16) in the worker processes and here."""
    from data_tools.build import columns_of

    head: list[RawRow] = []
    for row in rows:  # the columns come from the first readable row
        head.append(row)
        if not row.error:
            break
    good = head[-1] if head and not head[-1].error else None
    columns = columns_of(source, path, good) if good else None
    rows = itertools.chain(head, rows)
    chunks = iter(lambda: list(itertools.islice(rows, CHUNK_ROWS)), [])
    with cleaning_pool(builder, columns, file_index, workers) as pool:
        for chunk, (results, sketches) in in_order(chunks, lambda chunk: pool.submit(_work, _payload(chunk)),
                                                    lambda chunk: _work(_payload(chunk)), workers):
            yield from zip(chunk, _candidates(results, sketches, file_index))


def _payload(chunk: list[RawRow]) -> list[tuple[str, int, dict[str, Any], str | None]]:
    return [(row.file, row.line, row.fields, row.error) for row in chunk]


def _candidates(results: list[Result], sketches: Sketches, file_index: int) -> Iterator[Result]:
    """Yields the results of a batch, each candidate rebuilt from its tuple and given its row of the batch's sketches."""
    number = 0
    for outcome, key, found in results:
        if key:
            line, question_chars, answer_chars, category, lang, key_of_answer = outcome[:6]
            outcome = Candidate(None, "", "", file_index, category, line=line, lang=lang, sketch=(sketches, number),
                                sizes=(question_chars, answer_chars), answer_key=key_of_answer)
            number += 1
        yield outcome, key, found
