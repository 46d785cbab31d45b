"""serve/feedback.py: concurrent appends stay whole lines; votes export as DPO pairs."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from serve.feedback import FeedbackError, append_feedback, export_preferences, read_feedback

CONVERSATION = [{"role": "system", "content": "S"}, {"role": "user", "content": "返品できますか？"}]


def _vote(vote: str, answer_a: str = "はい、30日以内なら。", answer_b: str = "わかりません。") -> dict:
    return {"kind": "vote", "conversation": CONVERSATION, "blind": True, "labels": {"A": "tuned", "B": "base"},
            "answers": {"A": answer_a, "B": answer_b}, "vote": vote}


def _writer(path: str, worker: int) -> None:
    for index in range(50):
        append_feedback(Path(path), _vote("A", answer_a=f"{worker}-{index} " + "長い回答。" * 400))


def test_concurrent_processes_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "serve" / "feedback.jsonl"
    workers = [multiprocessing.Process(target=_writer, args=(str(path), n)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    entries, _ = read_feedback(path)  # raises on any torn or interleaved line
    assert len(entries) == 200
    assert {entry["answers"]["A"].split(" ")[0] for entry in entries} == {f"{w}-{i}" for w in range(4)
            for i in range(50)}


def test_export_turns_votes_into_preference_pairs(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    append_feedback(path, _vote("A"))
    append_feedback(path, _vote("B", answer_a="いいえ。", answer_b="はい、30日以内なら。"))
    append_feedback(path, _vote("tie", answer_a="t1", answer_b="t2"))
    append_feedback(path, _vote("both_bad", answer_a="b1", answer_b="b2"))
    append_feedback(path,
                    {"kind": "rating", "conversation": CONVERSATION, "model": "tuned", "answer": "x", "rating": "up"})
    summary = export_preferences(path, tmp_path / "preferences.jsonl")
    assert (summary.pairs, summary.ties, summary.both_bad, summary.ratings) == (2, 1, 1, 1)
    pairs = [json.loads(line) for line in (tmp_path / "preferences.jsonl").read_text(encoding="utf-8").splitlines()]
    assert pairs[0]["prompt"] == CONVERSATION
    assert pairs[0]["chosen"] == [{"role": "assistant", "content": "はい、30日以内なら。"}]
    assert pairs[0]["rejected"] == [{"role": "assistant", "content": "わかりません。"}]
    assert (pairs[0]["chosen_model"], pairs[1]["chosen_model"]) == ("tuned", "base")


def test_bad_feedback_is_refused_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(FeedbackError, match="vote"):
        append_feedback(tmp_path / "f.jsonl", {**_vote("A"), "vote": "C"})
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(_vote("A"), ensure_ascii=False) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(FeedbackError, match=r"broken.jsonl: line 2"):
        read_feedback(path)


def test_export_reports_every_malformed_line_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    good = json.dumps(_vote("A"), ensure_ascii=False).encode()
    path.write_bytes(b"\n".join([good, b"\xff\xfe\x00garbage", b"[1, 2]", b'{"kind": "vote", "conversation": []}',
                                b"{not json", json.dumps({**_vote("B"), "answers": {"A": "x"}}).encode(),
                                    good]) + b"\n")
    summary = export_preferences(path, tmp_path / "preferences.jsonl")
    assert [bad.line for bad in summary.malformed] == [2, 3, 4, 5, 6]
    assert "UTF-8" in summary.malformed[0].reason and "not an object" in summary.malformed[1].reason
    assert summary.pairs == 1  # the two good lines are the same vote without a session: agreeing, one pair
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\x00\x01\x02\n")
    with pytest.raises(FeedbackError, match="no usable feedback line"):
        export_preferences(garbage, tmp_path / "none.jsonl")


def test_one_vote_per_pair_and_session_and_no_contradictory_pairs(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    for vote in ("A", "B", "A"):  # one session changes its mind twice: its last vote counts
        append_feedback(path, {**_vote(vote), "session": "s1"})
    append_feedback(path, {**_vote("A"), "session": "s2"})  # agrees with s1: still one pair
    other = {**_vote("A", answer_a="5営業日以内です。", answer_b="知りません。")}
    append_feedback(path, {**other, "session": "s1"})
    append_feedback(path, {**other, "vote": "B", "session": "s3"})  # disagrees on the same answers
    swapped = {**other, "labels": {"A": "base", "B": "tuned"},
               "answers": {"A": "知りません。", "B": "5営業日以内です。"}}
    append_feedback(path, {**swapped, "vote": "B", "session": "s4"})  # the same choice as s1, panes swapped
    summary = export_preferences(path, tmp_path / "preferences.jsonl")
    pairs = [json.loads(line) for line in (tmp_path / "preferences.jsonl").read_text(encoding="utf-8").splitlines()]
    assert summary.pairs == 1 and summary.replaced == 2 and summary.contradictory == 1
    assert pairs[0]["chosen"][0]["content"] == "はい、30日以内なら。"
