"""Cutting big CSV/TSV/JSONL files into byte ranges: the rows read range by range, with every
wrong guess of a cut repaired, are exactly those (and their line numbers) of one reader over the file."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from data_tools.readers import RawRow, detect_encoding, read_rows
from data_tools.segments import FilePlan, Segment, SegmentReader, plan_file, row_at

PIECES = ["a", "b,c", 'say "hi"', "line1\nline2", "two\r\nlines", "ｱｲｳ返品", "", " ", "tab\there", "x\"y"]


def _read_by_segments(plan: FilePlan) -> tuple[list[tuple], int]:
    """Reads the plan's segments in order as the data stage merges them; returns the rows and how many segments were read again."""
    rows, again = [], 0
    position, line = plan.segments[0].start, plan.segments[0].line
    with open(plan.path, "rb") as handle:
        for segment in plan.segments:
            if segment.start != position:
                again += 1
                if position >= segment.end:
                    continue
                segment = Segment(position, segment.end, line)
            reader = SegmentReader(plan, segment, handle)
            for row, start, end in reader.rows():
                rows.append((row.line, row.fields, row.error))
                if not row.error:  # a row read again from its byte range is the same row
                    assert row_at(plan, handle, start, end, row.line).fields == row.fields
            position, line = reader.end, reader.next_line
    return rows, again


def _write_csv(path: Path, rng: random.Random, delimiter: str) -> None:
    encoding = rng.choice(["utf-8", "utf-8-sig", "cp932"])
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator=rng.choice(["\n", "\r\n"]))
        writer.writerow(["question", "answer", "category"])
        for index in range(rng.randint(1, 300)):
            roll = rng.random()
            if roll < 0.05:
                handle.write("\n")  # blank separator line
            elif roll < 0.08:
                handle.write(f'stray"quote{delimiter}in an unquoted field\n')  # misleads the quote count
            else:
                writer.writerow([rng.choice(PIECES) + str(index) for _ in range(rng.choice([3, 3, 3, 2]))])


def _write_jsonl(path: Path, rng: random.Random) -> None:
    with open(path, "w", encoding=rng.choice(["utf-8", "utf-8-sig"]), newline="") as handle:
        for _ in range(rng.randint(1, 300)):
            roll = rng.random()
            if roll < 0.05:
                handle.write("\n")
            elif roll < 0.1:
                handle.write("{broken\n")
            else:
                handle.write(json.dumps({"q": rng.choice(PIECES), "a": "x"}, ensure_ascii=False) + rng.choice(["\n", "\r\n"]))


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl"])
def test_segments_read_the_rows_of_one_reader(tmp_path: Path, kind: str) -> None:
    rng = random.Random(kind)
    again = 0
    for number in range(25):
        path = tmp_path / f"f{number}.{kind}"
        if kind == "jsonl":
            _write_jsonl(path, rng)
        else:
            _write_csv(path, rng, "\t" if kind == "tsv" else ",")
        expected = [(row.line, row.fields, row.error) for row in read_rows(path)]
        plan = plan_file(path, kind, detect_encoding(path), size=rng.choice([16, 64, 300, 2000]))
        assert plan is not None
        rows, redone = _read_by_segments(plan)
        assert rows == expected, path.read_bytes()[:300]
        again += redone
    if kind != "jsonl":
        assert again > 0  # quoted newlines and stray quotes did mislead some cuts, and were repaired


def test_segments_cut_only_between_rows_when_quotes_are_balanced(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    rows = [["question", "answer"]] + [[f"q{index}", "first line\nsecond line\nthird"] for index in range(200)]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    plan = plan_file(path, "csv", "utf-8-sig", size=100)
    assert plan is not None and plan.header == ["question", "answer"] and len(plan.segments) > 20
    assert _read_by_segments(plan)[1] == 0  # no cut fell inside a quoted answer
    counts = [_rows_in(plan, index) for index in range(len(plan.segments))]
    assert sum(counts) == 200
    assert [segment.line for segment in plan.segments] == [2 + 3 * sum(counts[:index]) for index in range(len(counts))]


def _rows_in(plan: FilePlan, index: int) -> int:
    with open(plan.path, "rb") as handle:
        return len(list(SegmentReader(plan, plan.segments[index], handle).rows()))


def test_files_that_cannot_be_cut_get_no_plan(tmp_path: Path) -> None:
    utf16 = tmp_path / "excel.csv"
    utf16.write_text("question,answer\nq,a\n", encoding="utf-16")
    assert plan_file(utf16, "csv", detect_encoding(utf16)) is None
    assert plan_file(utf16, "csv", "UTF16") is None and plan_file(utf16, "csv", "iso2022_jp") is None  # as a config may name them
    ascii_csv = tmp_path / "plain.csv"
    ascii_csv.write_text("question,answer\nq,a\n", encoding="ascii")
    assert plan_file(ascii_csv, "csv", "UTF_8_SIG") is not None
    bare_cr = tmp_path / "mac.csv"
    bare_cr.write_bytes(b"question,answer\rq,a\rq2,a2\r")
    assert plan_file(bare_cr, "csv", "utf-8-sig") is None
    header_only = tmp_path / "empty.csv"
    header_only.write_text("question,answer\n", encoding="utf-8")
    assert plan_file(header_only, "csv", "utf-8-sig") is None
    assert plan_file(tmp_path / "faq.xlsx", "xlsx", "utf-8-sig") is None


def test_bom_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_bytes("\ufeff".encode() + b'{"q": "first"}\n\n{"q": "third"}\n')
    plan = plan_file(path, "jsonl", "utf-8-sig", size=4)
    assert plan is not None and plan.encoding == "utf-8" and plan.segments[0].start == 3
    rows, _ = _read_by_segments(plan)
    assert rows == [(1, {"q": "first"}, None), (3, {"q": "third"}, None)]
    with open(path, "rb") as handle:
        assert row_at(plan, handle, 3, 3 + len(b'{"q": "first"}\n'), 1) == RawRow(str(path), 1, {"q": "first"})
