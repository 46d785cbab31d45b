"""Big CSV/TSV/JSONL FAQ files, cleaned segment by segment in parallel and merged in file order.

    python -c "from data_tools.faq_segments import SegmentResult; print(SegmentResult.__doc__.splitlines()[0])"

Each segment (`data_tools.segments`) is read, cleaned and sketched end to end by one process, the
worker processes or this one, so no row travels between processes. A worker's result travels as
columns (one bytes string of JSON lines, arrays of numbers) through a file, not as pickled rows
through the pool's pipe. This process decides exact duplicates across segments in file order,
writes rejects in row order, and hands the rest to the spool as one `CandidateBatch` a segment.
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from data_tools.build import LINE_BITS
from data_tools.faq import WORKER, Columns, Result, Sketches, clean_rows, cleaning_pool, in_order
from data_tools.readers import detect_encoding, detect_format
from data_tools.segments import CUT_KINDS, FilePlan, Segment, SegmentReader, plan_file, row_at
from tunebot.config import SourceConfig

if TYPE_CHECKING:
    from data_tools.build import CandidateBatch, RecordBuilder

SEGMENTS_IN_FLIGHT = 4  # segments (~4,000 rows) per worker: enough that none runs dry while this process cleans one


@dataclass(slots=True)
class SegmentResult:
    """A cleaned segment in columns: rejects with their row number in the segment, and per candidate
    its duplicate key, JSON line, address and sizes; where the segment's last row really ended."""

    rejects: list[tuple[int, dict[str, Any]]]  # (row number in the segment, reject)
    keys: np.ndarray  # uint64 duplicate keys
    lines: bytes  # the candidates' JSON lines, one after another
    ends: np.ndarray  # where each line ends in `lines`
    numbers: np.ndarray  # (n, 7) int64: row number in the segment, file line, byte start, byte end, question chars,
    # answer chars, answer key
    ja: np.ndarray  # bool
    category_names: list[str]
    categories: np.ndarray  # int32 index into category_names
    found: Counter  # personal data found in the segment's rows, duplicates too
    sketches: Sketches
    end: int
    next_line: int


def plan_source(source: SourceConfig, path: Path) -> FilePlan | None:
    """Returns how to cut an FAQ file into segments, or None when it is read whole or cannot be cut."""
    kind = detect_format(path, source.format)
    return plan_file(path, kind, detect_encoding(path, source.encoding)) if kind in CUT_KINDS else None


def segment_units(builder: RecordBuilder, source: SourceConfig, plan: FilePlan, file_index: int,
                  workers: int) -> Iterator[CandidateBatch | dict[str, Any]]:
    """Yields each segment's rejects, then its candidates as one batch, in file order. A segment whose
    guessed start was not where the previous one's last row ended is read again from there (or
    skipped when that row covered it)."""
    columns = _first_columns(source, plan)
    position, line = plan.segments[0].start, plan.segments[0].line
    with cleaning_pool(builder, columns, file_index, workers, plan) as pool, open(plan.path, "rb") as handle, \
            tempfile.TemporaryDirectory(prefix="tunebot-segments-") as folder:
        submit = lambda segment: pool.submit(_work_segment_spilled, segment, folder)  # noqa: E731
        for segment, done in in_order(plan.segments, submit, _work_segment, workers, SEGMENTS_IN_FLIGHT):
            result: SegmentResult = _unspilled(done) if isinstance(done, str) else done
            if segment.start != position:
                if position >= segment.end:
                    continue
                result = _work_segment(Segment(position, segment.end, line))
            position, line = result.end, result.next_line
            yield from _merged(builder, plan, handle, file_index, result)


def _work_segment(segment: Segment) -> SegmentResult:
    """Reads and cleans one segment of the file (in whichever process runs it)."""
    plan = WORKER["plan"]
    with open(plan.path, "rb") as handle:
        reader = SegmentReader(plan, segment, handle)
        results, sketches = clean_rows((row, (row.line, start, end)) for row, start, end in reader.rows())
        return _columns(results, sketches, reader.end, reader.next_line)


def _columns(results: list[Result], sketches: Sketches, end: int, next_line: int) -> SegmentResult:
    rejects, keys, lines, numbers, ja, categories = [], [], [], [], [], []
    names: dict[str, int] = {}
    found: Counter = Counter()
    for number, (outcome, key, in_row) in enumerate(results):
        if in_row:
            found.update(in_row)
        if not key:
            rejects.append((number, outcome))
            continue
        line, question_chars, answer_chars, category, lang, key_of_answer, file_line, start, stop = outcome
        keys.append(key)
        lines.append(line)
        numbers.append((number, file_line, start, stop, question_chars, answer_chars, key_of_answer))
        ja.append(lang == "ja")
        categories.append(names.setdefault(category, len(names)))
    return SegmentResult(
        rejects, np.array(keys, dtype=np.uint64), b"".join(lines), np.cumsum([len(line) for line in lines], dtype=np.int64),
        np.array(numbers, dtype=np.int64).reshape(-1, 7), np.array(ja, dtype=bool), list(names),
        np.array(categories, dtype=np.int32), found, sketches, end, next_line,
    )


def _work_segment_spilled(segment: Segment, folder: str) -> str:
    """`_work_segment` in a worker process: the result goes to a file in `folder`, and only its
    name through the pipe. Through the pipe, ~4 MB results made the worker wait for this process's
    result thread, which waits for the GIL between reads (1M rows: 7 s of 40 blocked)."""
    handle, name = tempfile.mkstemp(dir=folder, suffix=".pickle")
    with os.fdopen(handle, "wb") as spill:
        pickle.dump(_work_segment(segment), spill, protocol=pickle.HIGHEST_PROTOCOL)
    return name


def _unspilled(name: str) -> SegmentResult:
    with open(name, "rb") as spill:
        data = spill.read()
    os.unlink(name)
    return pickle.loads(data)


def _merged(builder: RecordBuilder, plan: FilePlan, handle: IO[bytes], file_index: int,
            result: SegmentResult) -> Iterator[CandidateBatch | dict[str, Any]]:
    """Yields a segment's rejects in row order, exact duplicates decided here in file order (their
    fields read again from the file), then the rest of its candidates as one batch."""
    from data_tools.build import CandidateBatch

    builder.reports[file_index].pii.update(result.found)
    codes = (result.numbers[:, 1] + (file_index << LINE_BITS)).tolist()  # where each pair was first seen, unless earlier
    firsts = list(map(builder.seen.setdefault, result.keys.tolist(), codes))
    kept = np.ones(len(codes), dtype=bool)
    duplicates = []
    for index in [index for index, (first, code) in enumerate(zip(firsts, codes)) if first != code]:
        kept[index] = False
        number, file_line, start, stop = result.numbers[index, :4].tolist()
        fields = row_at(plan, handle, start, stop, file_line).fields
        duplicates.append((number, builder.reject(f"{plan.path}:{file_line}", builder.duplicate_reason(firsts[index]), None, fields)))
    for _, reject in heapq.merge(result.rejects, duplicates, key=lambda item: item[0]):
        yield reject
    if kept.any():
        lines, sizes = result.lines, np.diff(result.ends, prepend=0)
        if not kept.all():
            lines = np.frombuffer(lines, dtype=np.uint8)[np.repeat(kept, sizes)].tobytes()
        yield CandidateBatch(
            file_index, lines, np.cumsum(sizes[kept]), int(kept.sum()), result.numbers[kept, 4].astype(np.int32), result.numbers[kept, 5].astype(np.int32),
            result.numbers[kept, 6], result.ja[kept], result.category_names, result.categories[kept], result.sketches, np.flatnonzero(kept),
        )


def _first_columns(source: SourceConfig, plan: FilePlan) -> Columns | None:
    """Returns the columns of a cut file, from its first readable row (None when it has none)."""
    from data_tools.build import columns_of

    whole = Segment(plan.segments[0].start, plan.segments[-1].end, plan.segments[0].line)
    with open(plan.path, "rb") as handle:
        good = next((row for row, _, _ in SegmentReader(plan, whole, handle).rows() if not row.error), None)
    return columns_of(source, Path(plan.path), good) if good else None
