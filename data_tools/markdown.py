"""Reads a Markdown FAQ in the shapes help centers write: Q/A markers, definition lists, or headings.

    python -c "from data_tools.markdown import read_markdown; print(list(read_markdown('f.md', open('f.md').read())))"

The shape is chosen from the file itself, in this order:
1. Q/A markers: a line that starts with a question marker (`**Q:**`, `Q.`, `Q：`, `Ｑ．`, `【Q】`,
   `「Q」`, `Question:`, `質問：`, in a list item or not) opens a question; one with an answer
   marker (`**A:**`, `A.`, `【A】`, `Answer:`, `回答：`, ...) opens its answer, which runs to the next
   question or heading. Headings are categories.
2. Definition lists: a line followed by `: text` lines is a question and its answer.
3. Headings: a heading with text under it and no headings below it is a question, the text its
   answer; a heading with headings below it is a section, the category of the questions in it
   (its own text is an introduction, not an answer).
In every shape a section heading is never a question. `line` is the question's line number; a
question left without an answer is a row with an error, so it is rejected and counted, not lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from data_tools.rows import RawRow

_HEADING = re.compile(r"^(#{1,6})[ \t]+(\S.*)$")  # closing #s and spaces are stripped in _heading (no backtracking)
_FENCE = re.compile(r"^\s*(```|~~~)")
_EMPHASIS = r"(?:\*\*|__|\*|_)?"


def _heading_text(match: re.Match[str]) -> str:
    """The heading's text without a closing run of #s (`## Title ##`), in linear time."""
    text = match.group(2).rstrip()
    bare = text.rstrip("#")
    return (bare if bare != text and (not bare or bare[-1] in " \t") else text).strip()


def _marker(words: str) -> re.Pattern[str]:
    # the word needs its punctuation, brackets or bold: prose that starts "A flat fee..." is no marker
    return re.compile(
        rf"^[ \t]{{0,12}}(?:[-*+][ \t]+|\d+[.)][ \t]+)?{_EMPHASIS}[ "
        rf"\t]*(?:【\s*(?:{words})\s*】|「\s*(?:{words})\s*」|\[(?:{words})\]"
                      rf"|(?:{words})\s*[.:：．)）]|(?:{words})(?=\*\*|__))\s*{_EMPHASIS}\s*[:：]?\s*(?P<text>.*)$")


_QUESTION = _marker("Q|Ｑ|q|Question|QUESTION|質問|問")
_ANSWER = _marker("A|Ａ|Answer|ANSWER|回答|答え|答")
_DEFINITION = re.compile(r"^:\s+(?P<text>.*)$")


def _lines(text: str) -> list[tuple[int, str, bool]]:
    """(number, line, inside a code fence) for every line."""
    found, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            found.append((number, line, True))
            continue
        found.append((number, line, fenced))
    return found


def _row(path: Path, number: int, question: str, answer: list[str], category: str) -> RawRow:
    text = "\n".join(answer).strip()
    fields = {"question": question.strip(), "answer": text, "category": category}
    return RawRow(str(path), number, fields, None if text else "a question without an answer under it")


def _by_markers(path: Path, lines: list[tuple[int, str, bool]]) -> Iterator[RawRow]:
    category, open_q, answer, mode = "", None, [], None  # mode: "q" collecting the question, "a" the answer
    for number, line, fenced in lines:
        heading = None if fenced else _HEADING.match(line)
        question = None if fenced else _QUESTION.match(line)
        if heading or question:
            if open_q is not None:
                yield _row(path, open_q[0], open_q[1], answer, category)
            open_q, answer, mode = None, [], None
            if heading:
                category = _heading_text(heading)
                continue
            open_q, mode = [number, question.group("text")], "q"
            continue
        answer_start = None if fenced or open_q is None else _ANSWER.match(line)
        if answer_start:
            answer, mode = [answer_start.group("text")], "a"
        elif mode == "q" and line.strip():
            open_q[1] += " " + line.strip()
        elif mode == "a":
            answer.append(line)
    if open_q is not None:
        yield _row(path, open_q[0], open_q[1], answer, category)


def _by_definitions(path: Path, lines: list[tuple[int, str, bool]]) -> Iterator[RawRow]:
    category, previous, term, answer = "", None, None, []
    for number, line, fenced in lines:
        heading = None if fenced else _HEADING.match(line)
        definition = None if fenced else _DEFINITION.match(line)
        if definition and previous is not None and term is None:
            term, answer = previous, [definition.group("text")]
            continue
        if definition and term is not None:
            answer.append(definition.group("text"))
            continue
        if term is not None and (heading or line.strip()):
            yield _row(path, term[0], term[1], answer, category)
            term, answer = None, []
        if heading:
            category, previous = _heading_text(heading), None
        elif line.strip():
            previous = (number, line.strip())
        elif term is not None:
            answer.append("")
    if term is not None:
        yield _row(path, term[0], term[1], answer, category)


def _by_headings(path: Path, lines: list[tuple[int, str, bool]]) -> Iterator[RawRow]:
    sections: list[tuple[int, int, str, list[str]]] = []  # (line, level, heading, body lines)
    for number, line, fenced in lines:
        match = None if fenced else _HEADING.match(line)
        if match:
            sections.append((number, len(match.group(1)), _heading_text(match), []))
        elif sections:
            sections[-1][3].append(line)
    parents: dict[int, str] = {}
    for index, (number, level, heading, body) in enumerate(sections):
        parents = {lvl: name for lvl, name in parents.items() if lvl < level}
        has_children = index + 1 < len(sections) and sections[index + 1][1] > level
        if has_children or not "\n".join(body).strip():
            parents[level] = heading  # a section: the category of what is under it
            continue
        yield _row(path, number, heading, body, parents[max(parents)] if parents else "")


def read_markdown(path: Path, text: str) -> Iterator[RawRow]:
    """Yields {question, answer, category} rows from Markdown text, in the shape the text uses.

    >>> [r.fields for r in read_markdown(Path("f.md"), "## 配送\\n### 送料は？\\n550円です。\\n")]
    [{'question': '送料は？', 'answer': '550円です。', 'category': '配送'}]
    >>> [r.fields["question"] for r in read_markdown(Path("f.md"), "## 配送\\n**Q:** 送料は？\\n**A:** 550円です。\\n")]
    ['送料は？']
    """
    lines = _lines(text)
    plain = [line for _, line, fenced in lines if not fenced]
    if any(_QUESTION.match(line) for line in plain) and any(_ANSWER.match(line) for line in plain):
        yield from _by_markers(path, lines)
    elif any(_DEFINITION.match(line) for line in plain):
        yield from _by_definitions(path, lines)
    else:
        yield from _by_headings(path, lines)
