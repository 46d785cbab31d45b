"""Optional LLM judge: an OpenAI-compatible model scores each answer's correctness from 1 to 5.

    tunebot eval run.yaml --set eval.judge.url=http://127.0.0.1:9000/v1 --set eval.judge.model=judge

Off unless `eval.judge` is configured. Each answer is sent with its question and reference under
the configured rubric; the reply must start with a digit 1-5. A request that fails or a reply
without a score is counted as a failure and left out of the mean, never scored as 0.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eval.openai_backend import make_client
from tunebot.config_eval import JudgeConfig

_SCORE = re.compile(r"^\W*([1-5])(?!\d)")


def parse_score(reply: str) -> int | None:
    """Reads the leading 1-5 score of a judge reply: parse_score('4 - mostly right') -> 4; else None."""
    found = _SCORE.match(reply or "")
    return int(found.group(1)) if found else None


def judge_prompt(rubric: str, question: str, reference: str, answer: str) -> list[dict[str, str]]:
    """Builds the judge's messages for one answer."""
    user = f"Question:\n{question}\n\nReference answer:\n{reference}\n\nAnswer to grade:\n{answer}\n\nScore (1-5):"
    return [{"role": "system", "content": rubric}, {"role": "user", "content": user}]


def judge_rows(judge: JudgeConfig, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Scores every prediction row in place (`judge` = 1-5 or None, `judge_error`) and summarizes per system.

    Returns {system: {"mean": float | None, "n": judged, "failed": failures}}.
    """
    client = make_client(judge)

    def grade(row: dict[str, Any]) -> tuple[int | None, str | None]:
        try:
            response = client.chat.completions.create(
                model=judge.model,
                    messages=judge_prompt(judge.rubric, row["question"], row["reference"], row["prediction"]),
                max_tokens=32, temperature=0.0)
        except Exception as error:  # counted below, never a silent 0
            return None, f"request failed: {error}"
        reply = response.choices[0].message.content or ""
        score = parse_score(reply)
        return (score, None) if score is not None else (None, f"no 1-5 score in reply {reply[:80]!r}")

    with ThreadPoolExecutor(judge.concurrency) as pool:
        grades = list(pool.map(grade, rows))
    summary: dict[str, dict[str, Any]] = {}
    for row, (score, error) in zip(rows, grades):
        row["judge"], row["judge_error"] = score, error
        entry = summary.setdefault(row["system"], {"scores": [], "failed": 0})
        if score is None:
            entry["failed"] += 1
        else:
            entry["scores"].append(score)
    return {system: {"mean": round(sum(e["scores"]) / len(e["scores"]), 4) if e["scores"] else None,
                     "n": len(e["scores"]), "failed": e["failed"]} for system, e in summary.items()}
