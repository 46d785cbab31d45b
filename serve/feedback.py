"""User feedback from the chat page: append votes and ratings, export DPO preference pairs.

    tunebot feedback export runs/acme-demo          # -> runs/acme-demo/serve/preferences.jsonl

serve/feedback.jsonl holds one JSON object per line. A vote:
  {"kind": "vote", "ts": ..., "conversation": [messages up to the question], "blind": true,
   "labels": {"A": "tuned", "B": "base"}, "answers": {"A": "...", "B": "..."}, "vote": "A"|"B"|"tie"|"both_bad"}
A rating: {"kind": "rating", "ts": ..., "conversation": [...], "model": "tuned", "answer": "...", "rating": "up"|"down"}
Each line is written with one O_APPEND write under an exclusive lock, so concurrent writers never
interleave and a reader never sees half a line. Export turns every A/B vote into TRL's
conversational preference format {prompt, chosen, rejected}; ties and "both bad" have no winner
and are counted, not exported.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VOTES = ("A", "B", "tie", "both_bad")
RATINGS = ("up", "down")
_LOCK = threading.Lock()


class FeedbackError(ValueError):
    """A feedback entry or file that cannot be used, with the file and line named."""


def _check(entry: dict[str, Any]) -> None:
    kind = entry.get("kind")
    if kind == "vote":
        if entry.get("vote") not in VOTES or set(entry.get("labels", {})) != {"A", "B"}:
            raise FeedbackError(f"a vote needs vote in {VOTES} and labels for A and B, got {entry!r:.200}")
    elif kind == "rating":
        if entry.get("rating") not in RATINGS or not entry.get("model"):
            raise FeedbackError(f"a rating needs rating in {RATINGS} and a model, got {entry!r:.200}")
    else:
        raise FeedbackError(f"unknown feedback kind {kind!r}")
    if not isinstance(entry.get("conversation"), list):
        raise FeedbackError("feedback needs the conversation (a list of messages)")


def append_feedback(path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Appends one validated entry (timestamped) as a single line; returns what was written.

    >>> append_feedback(Path("/tmp/f.jsonl"), {"kind": "rating", "conversation": [], "model": "tuned",
    ...                 "answer": "Hi", "rating": "up"})["kind"]  # doctest: +SKIP
    'rating'
    """
    entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **entry}
    _check(entry)
    data = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # other processes appending to the same file wait
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    return entry


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """Reads feedback.jsonl; a broken line raises FeedbackError naming the file and line."""
    entries = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                _check(entry)
            except (json.JSONDecodeError, FeedbackError) as error:
                raise FeedbackError(f"{path}: line {number}: {error}") from None
            entries.append(entry)
    return entries


@dataclass
class ExportSummary:
    """What `export_preferences` wrote and left out."""

    pairs: int
    ties: int
    both_bad: int
    ratings: int


def preference_pair(vote: dict[str, Any]) -> dict[str, Any] | None:
    """Turns an A/B vote into {prompt, chosen, rejected, chosen_model, rejected_model}; None without a winner."""
    if vote["vote"] not in ("A", "B"):
        return None
    loser = "B" if vote["vote"] == "A" else "A"
    return {"prompt": vote["conversation"],
            "chosen": [{"role": "assistant", "content": vote["answers"][vote["vote"]]}],
            "rejected": [{"role": "assistant", "content": vote["answers"][loser]}],
            "chosen_model": vote["labels"][vote["vote"]], "rejected_model": vote["labels"][loser]}


def export_preferences(feedback_path: Path, out_path: Path) -> ExportSummary:
    """Writes DPO-ready pairs from the votes in feedback_path to out_path (atomically)."""
    from tunebot.rundir import atomic_write_jsonl

    entries = read_feedback(feedback_path)
    votes = [entry for entry in entries if entry["kind"] == "vote"]
    pairs = [pair for pair in map(preference_pair, votes) if pair is not None]
    atomic_write_jsonl(out_path, pairs)
    return ExportSummary(pairs=len(pairs), ties=sum(v["vote"] == "tie" for v in votes),
                         both_bad=sum(v["vote"] == "both_bad" for v in votes), ratings=len(entries) - len(votes))
