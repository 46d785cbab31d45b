"""Run directory: DONE markers, stage guards naming the command to run, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tunebot.rundir import (
    RunDir,
    StageMissing,
    atomic_directory,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    read_jsonl,
)


def test_stage_guard_names_the_command(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path / "run")
    with pytest.raises(StageMissing, match=r"run `tunebot data CONFIG` first"):
        run_dir.start("sft")
    with pytest.raises(StageMissing, match=r"run `tunebot train CONFIG` first"):
        run_dir.mark_done("data", "f1")
        run_dir.start("eval")
    run_dir.mark_done("sft", "f2")
    assert run_dir.start("eval") == tmp_path / "run" / "eval"


def test_done_marker_carries_fingerprint(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    assert not run_dir.is_done("data") and run_dir.done_info("data") == {}
    run_dir.mark_done("data", "abc", records=3)
    info = run_dir.done_info("data")
    assert run_dir.is_done("data") and info["fingerprint"] == "abc" and info["records"] == 3


def test_rerunning_a_stage_invalidates_what_read_it(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    for stage in ("data", "sft", "eval", "merged"):
        run_dir.mark_done(stage, "x")
    run_dir.start("data")
    assert not any(run_dir.is_done(stage) for stage in ("data", "sft", "eval", "merged"))


def test_atomic_writes_leave_no_temp_files(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.txt", "日本語")
    atomic_write_json(tmp_path / "b.json", {"質問": "返品"})
    count = atomic_write_jsonl(tmp_path / "c.jsonl", ({"i": i} for i in range(3)))
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "日本語"
    assert json.loads((tmp_path / "b.json").read_text(encoding="utf-8")) == {"質問": "返品"}
    assert "返品" in (tmp_path / "b.json").read_text(encoding="utf-8")  # not \\u-escaped
    assert count == 3 and [row["i"] for row in read_jsonl(tmp_path / "c.jsonl")] == [0, 1, 2]
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.json", "c.jsonl"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "rows.jsonl"
    atomic_write_jsonl(target, [{"old": 1}])

    def broken_rows():
        yield {"new": 1}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write_jsonl(target, broken_rows())
    assert list(read_jsonl(target)) == [{"old": 1}]
    assert os.listdir(tmp_path) == ["rows.jsonl"]


def test_atomic_directory_replaces_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "adapter"
    with atomic_directory(final) as scratch:
        (scratch / "w.bin").write_bytes(b"1")
    with pytest.raises(RuntimeError):
        with atomic_directory(final) as scratch:
            (scratch / "w.bin").write_bytes(b"2")
            raise RuntimeError("crash")
    assert (final / "w.bin").read_bytes() == b"1"
    assert os.listdir(tmp_path) == ["adapter"]


def test_broken_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{broken\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"x.jsonl:2: broken JSON line"):
        list(read_jsonl(path))
