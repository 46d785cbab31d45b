"""Trainer checkpoints in sft/checkpoints: which one a killed run resumes from, and whether it may.

    python -c "from sft.checkpoints import *; print(last_complete(Path('runs/acme-demo/sft/checkpoints')))"

A checkpoint counts only when everything `--resume` needs is on disk (the Trainer writes
trainer_state.json last, so a process killed while saving leaves a checkpoint without it, and
that one is skipped). The config fingerprint written next to the checkpoints keeps a resume from
continuing a run that was started with different settings.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tunebot.errors import TunebotError
from tunebot.rundir import atomic_write_text

FINGERPRINT = "FINGERPRINT"
# What the Trainer needs to continue with the same optimizer, schedule, data position and RNG.
REQUIRED = ("trainer_state.json", "optimizer.pt", "scheduler.pt")
_STEP = re.compile(r"^checkpoint-(\d+)$")


class ResumeError(TunebotError, RuntimeError):
    """No usable checkpoint to resume from, or checkpoints from a run with different settings."""


def complete_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Returns (step, path) of every complete checkpoint in `folder`, oldest first.

    >>> complete_checkpoints(Path("/nonexistent"))
    []
    """
    found = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else []:
        match = _STEP.match(path.name)
        if match and all((path / name).is_file() for name in REQUIRED):
            found.append((int(match.group(1)), path))
    return sorted(found)


def last_complete(folder: Path) -> Path | None:
    """Returns the newest complete checkpoint in `folder`, or None."""
    found = complete_checkpoints(folder)
    return found[-1][1] if found else None


def checkpoint_step(path: Path) -> int:
    """Returns the optimizer step a checkpoint was saved at (from its trainer_state.json)."""
    return int(json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])


def start_fresh(folder: Path, fingerprint: str) -> None:
    """Removes checkpoints of an earlier run and records the fingerprint of the run that starts now."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / FINGERPRINT, fingerprint + "\n")


def resumable(folder: Path, fingerprint: str) -> Path | None:
    """Returns the checkpoint to resume from, None if there is none; raises if it has other settings."""
    checkpoint = last_complete(folder)
    if checkpoint is None:
        return None
    recorded = (folder / FINGERPRINT).read_text(encoding="utf-8").strip() if (folder / FINGERPRINT).is_file() else ""
    if recorded != fingerprint:
        raise ResumeError(
            f"{folder} holds checkpoints of a run with different data or sft settings; "
            "resume with the same config, or pass --overwrite to start over"
        )
    return checkpoint


def require_resumable(folder: Path, fingerprint: str) -> Path:
    """Returns the checkpoint `--resume` continues from; raises when there is none."""
    checkpoint = resumable(folder, fingerprint)
    if checkpoint is None:
        raise ResumeError(f"--resume: no complete checkpoint in {folder}; run `tunebot train CONFIG` to start")
    return checkpoint


def trim_metrics(path: Path, step: int) -> None:
    """Drops metrics.jsonl lines logged after `step` (they are logged again when training resumes)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
            if line.strip() and json.loads(line).get("step", 0) <= step]
    atomic_write_text(path, "".join(kept))
