"""What every FAQ reader returns: numbered rows, the column names it looks for, and its error.

    python -c "from data_tools.rows import RawRow; print(RawRow('faq.csv', 2, {'q': 'x'}).source)"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunebot.errors import TunebotError

QUESTION_NAMES = ("question", "q", "質問", "問い", "問", "instruction", "prompt", "title", "input", "query")
ANSWER_NAMES = ("answer", "a", "回答", "答え", "答", "response", "completion", "body", "output", "reply")
CATEGORY_NAMES = ("category", "カテゴリ", "カテゴリー", "分類", "ジャンル", "topic")


class DataError(TunebotError, ValueError):
    """An input file that cannot be read at all; the message names the file."""


@dataclass
class RawRow:
    """One input row: where it came from and its fields, or why it could not be parsed."""

    file: str
    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def source(self) -> str:
        """`file:line`, the address kept on every record and reject."""
        return f"{self.file}:{self.line}"
