"""eval/judge.py: score parsing, and failures are counted, never scored as 0."""

from __future__ import annotations

import socket

from eval.judge import judge_prompt, judge_rows, parse_score
from tunebot.config_eval import JudgeConfig


def test_parse_score_reads_only_a_leading_1_to_5() -> None:
    assert parse_score("4 - mostly right") == 4
    assert parse_score("**5**: complete") == 5
    assert parse_score(" 1") == 1
    for reply in ("", "I think it is good", "10/10", "0", "6", "Score: 3"):
        assert parse_score(reply) is None, reply


def test_judge_prompt_holds_question_reference_and_answer() -> None:
    messages = judge_prompt("Grade it.", "返品できますか？", "30日以内なら可能です。", "できます。")
    assert messages[0] == {"role": "system", "content": "Grade it."}
    assert "返品できますか？" in messages[1]["content"] and "30日以内なら可能です。" in messages[1]["content"]
    assert messages[1]["content"].rstrip().endswith("Score (1-5):")


def test_an_unreachable_judge_counts_failures_and_scores_nothing() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    judge = JudgeConfig(url=f"http://127.0.0.1:{port}/v1", model="judge", max_retries=0, timeout_s=5)
    rows = [{"system": system, "question": "Q?", "reference": "A.", "prediction": "A."}
            for system in ("base", "base", "tuned")]
    summary = judge_rows(judge, rows)
    assert summary == {"base": {"mean": None, "n": 0, "failed": 2}, "tuned": {"mean": None, "n": 0, "failed": 1}}
    assert all(row["judge"] is None and row["judge_error"].startswith("request failed") for row in rows)
