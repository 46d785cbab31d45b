"""Your own questions: a file of customer wordings, each with the answer a right reply must give.

    tunebot eval examples/acme-demo.yaml --set 'eval.questions=[data/acme_questions.jsonl]'

Each line of a JSONL file is {"question": ..., "answer": ...} or {"question": ..., "same_as": <a
question of the FAQ>}, whose answer is then looked up among the run's records (width and case
folded). Every system answers them as it answers the test split (same prompt, same retrieval
over the training pairs), and they are scored the same way, so the report shows whether the
recommended system is also right on wordings the FAQ never used.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

from tunebot.errors import TunebotError
from tunebot.prompts import answer_of, make_record, question_of
from tunebot.text import detect_lang


class QuestionsError(TunebotError, ValueError):
    """A question file that cannot be read, naming file, line and field."""


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _row(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise QuestionsError(f"{path}: line {number}: not valid JSON ({error.msg})") from None
    if not isinstance(row, dict):
        raise QuestionsError(f"{path}: line {number}: expected a JSON object")
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        raise QuestionsError(f"{path}: line {number}: field 'question' is missing or empty")
    if not isinstance(row.get("answer", row.get("same_as")), str):
        raise QuestionsError(f"{path}: line {number}: give the expected 'answer' or the FAQ question it is 'same_as'")
    return row


def load_questions(paths: list[str], everything: list[dict[str, Any]], system_prompt: str) -> list[dict[str, Any]]:
    """Reads the question files into records (system prompt + question, the expected answer)."""
    answers = {_fold(question_of(record)): answer_of(record) for record in everything}
    records = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise QuestionsError(f"{path}: eval.questions file not found")
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = _row(path, number, line)
            answer = row.get("answer")
            if answer is None:
                answer = answers.get(_fold(row["same_as"]))
                if answer is None:
                    raise QuestionsError(f"{path}: line {number}: field 'same_as': no FAQ question "
                                         f"{row['same_as']!r} among the run's records")
            question = row["question"].strip()
            records.append(make_record(f"{path.stem}-{number}", f"{path}:{number}", detect_lang(question),
                                       system_prompt, question, answer))
    if not records:
        raise QuestionsError(f"eval.questions: {', '.join(paths)} hold no question")
    return records
