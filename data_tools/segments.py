"""Big CSV/TSV/JSONL files cut at row boundaries into byte ranges that processes read end to end.

    python -c "from pathlib import Path; from data_tools.segments import plan_file; print(plan_file(Path('examples/data/acme_faq_en.jsonl'), 'jsonl', 'utf-8-sig', size=512).segments[:2])"

Each range (a `Segment`) is read, parsed and cleaned by one process, so rows never travel between
processes; only the results do. A cut is a newline after which, counting quotes from the first row,
no quoted field is open. That is a guess (a stray quote inside an unquoted field misleads it), so a
range's reader reports where its last row really ended, and the merge reads a range again from
there when its guessed start was wrong: the rows and their line numbers are those of one reader
over the whole file, either way. Files that cannot be cut safely get no plan: UTF-16 and other
encodings whose newline byte occurs inside other characters or that keep state across lines, and
bare-CR line ends (a text reader splits lines there).
"""

from __future__ import annotations

import codecs
import csv
import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from data_tools.readers import RawRow, delimited_row, jsonl_row

SEGMENT_BYTES = 1 << 20  # ~4,000 FAQ rows: a segment's results fit the pipe, and the last one ends soon
SEARCH_BYTES = 1 << 16  # how far past a boundary a newline outside quotes is looked for
CUT_KINDS = ("csv", "tsv", "jsonl")
# Encodings (Python's names for them) whose newline byte never occurs inside another character and
# that keep no state from line to line, so any line decodes on its own; others are read whole.
CUT_ENCODINGS = frozenset({
    "utf-8", "utf-8-sig", "cp932", "shift_jis", "shift_jisx0213", "shift_jis_2004", "euc_jp", "euc_jisx0213",
    "euc_jis_2004", "ascii", "iso8859-1", "cp1252",
})


@dataclass(frozen=True)
class Segment:
    """A byte range of a file: its first row starts at `start` on physical line `line`; the
    range's last row is the one that ends at or past `end`."""

    start: int
    end: int
    line: int


@dataclass(frozen=True)
class FilePlan:
    """How a file is cut: its format, the encoding its segments decode with, its CSV header."""

    path: str
    kind: str
    encoding: str  # utf-8-sig becomes utf-8: the BOM lies before the first segment
    header: list[str] | None  # None for JSONL
    segments: list[Segment]


class _Lines:
    """Decoded lines from `start`, stopping at the first row boundary at or past `end`.

    The consumer adds one to `returned` for each row it gets; a line asked for after a row came
    back starts a new row, else it continues a row that spans lines (a quoted newline).
    """

    def __init__(self, handle: IO[bytes], start: int, end: int, encoding: str) -> None:
        handle.seek(start)
        self.handle, self.position, self.end, self.encoding = handle, start, end, encoding
        self.served = 0
        self.returned = 0
        self._returned_before = -1

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.position >= self.end and self.returned != self._returned_before:
            raise StopIteration
        self._returned_before = self.returned
        raw = self.handle.readline()
        if not raw:
            raise StopIteration
        self.position += len(raw)
        self.served += 1
        return raw.decode(self.encoding)


class SegmentReader:
    """Yields (row, start byte, end byte) for the rows of one segment; afterwards `end` and `next_line`
    say where its last row really ended.

    >>> plan = plan_file(Path("examples/data/acme_faq_en.jsonl"), "jsonl", "utf-8-sig")    # doctest: +SKIP
    >>> with open(plan.path, "rb") as handle: rows = list(SegmentReader(plan, plan.segments[0], handle).rows())  # doctest: +SKIP
    """

    def __init__(self, plan: FilePlan, segment: Segment, handle: IO[bytes]) -> None:
        self.plan, self.segment = plan, segment
        self._lines = _Lines(handle, segment.start, segment.end, plan.encoding)

    @property
    def end(self) -> int:
        return self._lines.position

    @property
    def next_line(self) -> int:
        return self.segment.line + self._lines.served

    def rows(self) -> Iterator[tuple[RawRow, int, int]]:
        lines, file, base = self._lines, self.plan.path, self.segment.line - 1
        start = lines.position
        if self.plan.header is None:
            for line in lines:
                lines.returned += 1
                row = jsonl_row(file, base + lines.served, line)
                if row is not None:
                    yield row, start, lines.position
                start = lines.position
            return
        header, line = self.plan.header, self.segment.line
        for values in csv.reader(lines, delimiter="\t" if self.plan.kind == "tsv" else ","):
            lines.returned += 1
            row = delimited_row(file, line, header, values)
            if row is not None:
                yield row, start, lines.position
            start, line = lines.position, base + 1 + lines.served


def row_at(plan: FilePlan, handle: IO[bytes], start: int, end: int, line: int) -> RawRow:
    """Reads one row again from its byte range (for a rejected duplicate's fields)."""
    return next(SegmentReader(plan, Segment(start, end, line), handle).rows())[0]


def plan_file(path: Path, kind: str, encoding: str, size: int | None = None) -> FilePlan | None:
    """Returns how to cut a CSV/TSV/JSONL file into segments of about `size` bytes (SEGMENT_BYTES),
    or None when it cannot be cut safely or has no rows after its header."""
    size = size or SEGMENT_BYTES
    encoding = codecs.lookup(encoding).name
    if kind not in CUT_KINDS or encoding not in CUT_ENCODINGS:
        return None
    with open(path, "rb") as handle:
        if not handle.read(1):
            return None
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            if _bare_cr(view):
                return None  # text readers end a line there
            first = 3 if encoding == "utf-8-sig" and view[:3] == b"\xef\xbb\xbf" else 0
            encoding = "utf-8" if encoding == "utf-8-sig" else encoding
            header, line = None, 1
            if kind != "jsonl":
                lines = _Lines(handle, first, len(view), encoding)
                header = next(csv.reader(lines, delimiter="\t" if kind == "tsv" else ","), None)
                if header is None:
                    return None
                first, line = lines.position, 1 + lines.served
            cuts = _cuts(view, first, size, quoted=kind != "jsonl")
            segments = []
            for start, end in zip(cuts, [*cuts[1:], len(view)]):
                segments.append(Segment(start, end, line))
                line += view[start:end].count(b"\n")
    return FilePlan(str(path), kind, encoding, header, segments) if segments and segments[0].start < segments[0].end else None


def _bare_cr(view: mmap.mmap, step: int = 1 << 24) -> bool:
    """Says whether the file has a CR not followed by LF."""
    for at in range(0, len(view), step):
        piece = view[at : at + step + 1]  # one byte more: the LF after a CR at the end
        returns = piece.count(b"\r", 0, step)
        if returns and returns != piece.count(b"\r\n"):
            return True
    return False


def _cuts(view: mmap.mmap, first: int, size: int, quoted: bool) -> list[int]:
    """Returns segment starts: `first`, then the first newline past each `size` bytes after which
    an even number of quotes has been seen (looked for up to SEARCH_BYTES on)."""
    cuts, counted, odd = [first], first, False
    while cuts[-1] + size < len(view):
        newline = view.find(b"\n", cuts[-1] + size)
        limit = newline + SEARCH_BYTES
        while newline != -1 and quoted:
            odd ^= bool(view[counted:newline].count(b'"') & 1)
            counted = newline
            if not odd or newline >= limit:
                break
            newline = view.find(b"\n", newline + 1)
        if newline == -1 or newline + 1 >= len(view):
            break
        cuts.append(newline + 1)
    return cuts
