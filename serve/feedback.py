"""User feedback from the chat page: append votes and ratings, export DPO preference pairs.

    tunebot feedback export runs/acme-demo          # -> runs/acme-demo/serve/preferences.jsonl

serve/feedback.jsonl holds one JSON object per line. A vote:
  {"kind": "vote", "ts": ..., "conversation": [messages up to the question], "blind": true,
   "labels": {"A": "tuned", "B": "base"}, "answers": {"A": "...", "B": "..."}, "vote": "A"|"B"|"tie"|"both_bad"}
A rating: {"kind": "rating", "ts": ..., "conversation": [...], "model": "tuned", "answer": "...", "rating": "up"|"down"}
Votes carry the page session ("session") they came from. Each line is written with one O_APPEND
write under an exclusive lock, so concurrent writers never interleave and a reader never sees
half a line. Export turns the votes into TRL's conversational preference format {prompt, chosen,
rejected}: one vote per answer pair and session (a re-vote replaces the earlier one), no pair
whose sessions disagree, none for ties and "both bad"; malformed lines are reported by number and
skipped (export_preferences states the rule), and the counts of every outcome are returned.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass, field
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


@dataclass
class Malformed:
    """A line of feedback.jsonl that could not be used."""

    line: int
    reason: str


def read_feedback(path: Path, strict: bool = True) -> tuple[list[dict[str, Any]], list[Malformed]]:
    """Reads feedback.jsonl: (entries, malformed lines). A line that is not UTF-8, not JSON, not an
    object or lacks a field is reported with its number; with `strict`, the first raises FeedbackError."""
    entries, malformed = [], []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
                if not isinstance(entry, dict):
                    raise FeedbackError(f"a JSON {type(entry).__name__}, not an object")
                _check(entry)
                if entry["kind"] == "vote" and not all(isinstance(entry.get("answers", {}).get(side), str)
                                                       for side in "AB"):
                    raise FeedbackError("a vote needs the answers of A and B")
            except (UnicodeDecodeError, json.JSONDecodeError, FeedbackError) as error:
                reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else str(error)
                if strict:
                    raise FeedbackError(f"{path}: line {number}: {reason}") from None
                malformed.append(Malformed(number, reason[:200]))
                continue
            entries.append(entry)
    return entries, malformed


@dataclass
class ExportSummary:
    """What `export_preferences` wrote and left out, per outcome."""

    pairs: int
    ties: int
    both_bad: int
    ratings: int
    replaced: int = 0  # earlier votes of a session on the same answer pair (its last vote counts)
    contradictory: int = 0  # answer pairs whose sessions disagree on the winner: not exported
    malformed: list[Malformed] = field(default_factory=list)


def _pair_key(vote: dict[str, Any]) -> str:
    """The answer pair a vote is about: the conversation and the two answers, in either order."""
    return json.dumps([vote["conversation"], sorted((vote["answers"]["A"], vote["answers"]["B"]))], ensure_ascii=False,
                      sort_keys=True)


def preference_pair(vote: dict[str, Any]) -> dict[str, Any] | None:
    """Turns an A/B vote into {prompt, chosen, rejected, chosen_model, rejected_model}; None without a winner."""
    if vote["vote"] not in ("A", "B"):
        return None
    loser = "B" if vote["vote"] == "A" else "A"
    return {"prompt": vote["conversation"],
            "chosen": [{"role": "assistant", "content": vote["answers"][vote["vote"]]}],
            "rejected": [{"role": "assistant", "content": vote["answers"][loser]}],
            "chosen_model": vote["labels"][vote["vote"]], "rejected_model": vote["labels"][loser]}


def _last_votes(votes: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], dict[str, Any]], int]:
    """One vote per answer pair and session (the last; a vote without a session is its own)."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for number, vote in enumerate(votes):
        last[(_pair_key(vote), str(vote.get("session") or f"line-{number}"))] = vote
    return last, len(votes) - len(last)


def export_preferences(feedback_path: Path, out_path: Path) -> ExportSummary:
    """Writes DPO-ready pairs from the votes in feedback_path to out_path (atomically).

    The rule: malformed lines are skipped and reported (line and reason); a session's re-vote on
    an answer pair replaces its earlier vote; a pair on which sessions chose different winners is
    contradictory and not exported; ties and "both bad" have no winner. A file without one usable
    line is an error."""
    from tunebot.rundir import atomic_write_jsonl

    entries, malformed = read_feedback(feedback_path, strict=False)
    if not entries:
        raise FeedbackError(f"{feedback_path}: no usable feedback line ({len(malformed)} malformed)")
    last, replaced = _last_votes([entry for entry in entries if entry["kind"] == "vote"])
    winners: dict[str, set[str]] = {}
    for (key, _), vote in last.items():
        if (pair := preference_pair(vote)) is not None:
            winners.setdefault(key, set()).add(pair["chosen"][0]["content"])
    pairs, exported, contradictory = [], set(), set()
    for (key, _), vote in last.items():
        pair = preference_pair(vote)
        if pair is None:
            continue
        if len(winners[key]) > 1:
            contradictory.add(key)
        elif key not in exported:  # agreeing sessions: one pair
            exported.add(key)
            pairs.append(pair)
    atomic_write_jsonl(out_path, pairs)
    kept = list(last.values())
    return ExportSummary(len(pairs), sum(v["vote"] == "tie" for v in kept), sum(v["vote"] == "both_bad" for v in kept),
                         sum(entry["kind"] == "rating" for entry in entries), replaced, len(contradictory), malformed)
