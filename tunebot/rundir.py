"""The run directory: the files stages hand each other, `DONE` markers and atomic writes.

    tunebot data examples/acme.yaml && ls runs/acme-demo/data

Layout (DESIGN.md): config.yaml, data/, sft/, eval/, merged/, serve/. A stage writes its `DONE`
file last, so its existence means the stage finished; the next stage refuses to start without
it and names the command to run. Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tunebot.errors import TunebotError

# stage -> (the stages it reads, the command that produces it)
STAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "data": ((), "tunebot data CONFIG"),
    "sft": (("data",), "tunebot train CONFIG"),
    "eval": (("data", "sft"), "tunebot eval CONFIG"),
    "merged": (("sft",), "tunebot merge CONFIG"),
    "tune": (("data",), "tunebot tune CONFIG"),
}


class StageMissing(TunebotError, RuntimeError):
    """A stage was asked to run before the stage it reads from finished."""


@contextmanager
def atomic_open(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """Opens a file to stream into (UTF-8 text unless `binary`); it appears at `path`, whole, only
    when the block succeeds, so readers see the old file or the new one, never a part.

    >>> with atomic_open(Path("/tmp/x.jsonl")) as handle: handle.write("{}\n")   # doctest: +SKIP
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be read (reports, served files)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes `data` to `path` atomically (see `atomic_open`).

    >>> atomic_write_bytes(Path("/tmp/x.txt"), b"hi")
    """
    with atomic_open(path, binary=True) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Writes UTF-8 text atomically (see `atomic_open`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Writes one JSON document atomically, UTF-8 and readable (Japanese is not escaped)."""
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def atomic_write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Streams rows into a JSONL file atomically and returns how many were written."""
    count = 0
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_json(path: Path) -> dict[str, Any]:
    """Returns a JSON file's object, or {} when the file is missing or unreadable (a run's optional files)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yields the objects of a JSONL file written by a stage; a broken line names file and line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: broken JSON line ({error.msg})") from None


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yields a scratch folder that replaces `final` only when the block finishes without error.

    >>> with atomic_directory(Path("/tmp/adapter")) as tmp:   # doctest: +SKIP
    ...     model.save_pretrained(tmp)
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(scratch, final)
    shutil.rmtree(old, ignore_errors=True)


class RunDir:
    """One run's folder under `runs_dir/name`; the only place stages read and write.

    >>> run_dir = RunDir(Path("runs/acme-demo")); run_dir.path("data", "train.jsonl")
    PosixPath('runs/acme-demo/data/train.jsonl')
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, *parts: str) -> Path:
        """Returns a path inside the run directory."""
        return self.root.joinpath(*parts)

    def stage_dir(self, stage: str) -> Path:
        """Returns (and creates) a stage's folder."""
        folder = self.root / stage
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def is_done(self, stage: str) -> bool:
        """Tells whether `stage` finished (its DONE file exists)."""
        return (self.root / stage / "DONE").is_file()

    def done_info(self, stage: str) -> dict[str, Any]:
        """Returns what the stage wrote into its DONE file ({} when it has not finished)."""
        return read_json(self.root / stage / "DONE")

    def mark_done(self, stage: str, fingerprint: str, **info: Any) -> None:
        """Writes the stage's DONE file last, with the config fingerprint it ran under."""
        record = {"stage": stage, "fingerprint": fingerprint, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_json(self.stage_dir(stage) / "DONE", record | info)

    def start(self, stage: str, needs: tuple[str, ...] | None = None) -> Path:
        """Checks the stage's inputs (`needs`, default all of STAGES) are finished, clears its stale
        DONE and returns its folder.

        A stage re-run invalidates every stage that read from it, so their DONE files go too.
        """
        self.require_inputs(stage, needs)
        self._invalidate(stage)
        return self.stage_dir(stage)

    def require_inputs(self, stage: str, needs: tuple[str, ...] | None = None) -> None:
        """Raises `StageMissing` naming the command to run when an input stage has not finished."""
        for needed in STAGES[stage][0] if needs is None else needs:
            if not self.is_done(needed):
                command = STAGES[needed][1]
                raise StageMissing(
                    f"{stage} needs the {needed} stage, which has not finished in {self.root}: "
                    f"run `{command}` first (or `tunebot run CONFIG` for every stage)"
                )

    def _invalidate(self, stage: str) -> None:
        (self.root / stage / "DONE").unlink(missing_ok=True)
        for other, (needs, _) in STAGES.items():
            if stage in needs and self.is_done(other):
                self._invalidate(other)
