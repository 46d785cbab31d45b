"""Reads a Markdown FAQ: each heading followed by text is a question, the text its answer.

    python -c "from data_tools.markdown import read_markdown; print(list(read_markdown('faq.md', open('faq.md').read())))"

A heading with no text of its own (a section such as `## 配送について`) becomes the `category` of
the questions under it. `line` is the question heading's line number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from data_tools.readers import RawRow

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def read_markdown(path: Path, text: str) -> Iterator[RawRow]:
    """Yields {question, answer, category} rows from Markdown text.

    >>> [r.fields for r in read_markdown(Path("f.md"), "## 配送\\n### 送料は？\\n550円です。\\n")]
    [{'question': '送料は？', 'answer': '550円です。', 'category': '配送'}]
    """
    sections: list[tuple[int, int, str, list[str]]] = []  # (line, level, heading, body lines)
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            sections.append((number, len(match.group(1)), match.group(2), []))
        elif sections:
            sections[-1][3].append(line)
    parents: dict[int, str] = {}
    for number, level, heading, body in sections:
        answer = "\n".join(body).strip()
        parents = {lvl: name for lvl, name in parents.items() if lvl < level}
        if not answer:
            parents[level] = heading
            continue
        category = parents[max(parents)] if parents else ""
        yield RawRow(str(path), number, {"question": heading, "answer": answer, "category": category})
