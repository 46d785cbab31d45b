"""Text transcripts -> conversations: `Speaker: text` logs, LINE talk histories, Teams/Slack copies, `[time] who: text`.

    python -c "from data_tools.transcripts import from_transcript as f; print(*f('chat.txt', None, [()] * 3))"

A transcript is split into conversations at `---`/`===`/`***` rules and `# heading` lines (the
heading names the conversation). Within one:
- a message line is `Speaker: text` (`：` too) with an optional date/time before it, LINE's
  `10:00<TAB>name<TAB>text`, or a speaker line as Teams and Slack copy a chat, the text below it:
  `[4/30/2026 10:32 AM] Emily Chen`, `Emily Chen  10:32 AM`, `Emily Chen [10:32]`; text on the
  following lines belongs to the same message (LINE quotes a multi-line message: `"first line ...
  last line"`);
- header lines (LINE's `[LINE] …のトーク履歴`, `保存日時：…`), date lines (`2026/04/30(木)`,
  `2026年4月30日`, `Wednesday, April 30, 2026`), system lines (`山田が退出しました`, `… joined the chat`,
  `メッセージの送信を取り消しました`, `[スタンプ]`, `[Photo]`, a LINE line without a name) and bot lines
  (a speaker in skip_roles or named bot/自動応答, text starting 自動応答/自動返信/Auto-reply) are
  skipped and counted;
- who is who: a speaker named in agent_roles / customer_roles / skip_roles, or one whose name is a
  role (Agent, 担当, 顧客, ...), takes that side. A speaker on a timed or LINE line with another
  name is a bot, skipped, when a word of it is bot/ボット/自動応答 ("ACME Bot"); a person's name
  is sided by the first-seen rule: a name with a support word in it
  (サポート, support, 担当, 窓口, staff, operator, 公式, official, center/センター) is the agent;
  otherwise the first such speaker of the conversation is the customer and every later one an
  agent. An untimed `Name: text` line whose name is no role is text of the message before it
  ("Step 1: open Mail."), and text before any speaker rejects the conversation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from data_tools.roles import Conversation, Turn, _key, role_side
from data_tools.helpdesk import SUPPORT_WORDS
from data_tools.readers import open_text

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp]\.?[Mm]\.?)?"
# 2026-04-30 10:00, [4/30/2026 10:00 AM], 10:00
_STAMP = rf"\[?(?:\d{{1,4}}[-/.]\d{{1,2}}[-/.]\d{{1,4}}(?:[ T,]+{_TIME})?|{_TIME})\]?"
# The name starts with a non-space, so a line of spaces cannot make the scan quadratic.
_SPEAKER = re.compile(
    rf"^[ \t]{{0,12}}(?P<stamp>{_STAMP}[ \t]*)?(?P<name>[^:：\n\t\s][^:：\n\t]{{0,29}}?)[ \t]*[:：][ \t]?(?P<text>.*)$")
# A speaker line with the text on the lines below it, as Teams (`[4/30/2026 10:32 AM] Emily Chen`) and
# Slack (`Emily Chen  10:32 AM`, `Emily Chen [10:32 AM]`) copy a chat: a name of 1-30 characters
# without a colon or sentence punctuation, and a time (two spaces or brackets between name and time).
_HEAD_NAME = r"(?P<name>[^\s:：\[\]。、.!?！？,，][^:：\[\]。、!?！？,，\t]{0,29}?)"
_HEAD = re.compile(rf"^[ \t]{{0,12}}(?:\[(?P<stamp>[^\]]{{1,30}})\][ \t]+{_HEAD_NAME}"
                   rf"|{_HEAD_NAME.replace('name', 'name2')}(?:[ \t]{{2,}}(?P<stamp2>{_TIME})|[ "
                   rf"\t]+\[(?P<stamp3>[^\]]{{1,30}})\]))[ \t]*$")
_HEAD_STAMP = re.compile(rf"^(?:\d{{1,4}}[-/.]\d{{1,2}}[-/.]\d{{1,4}}(?:[ T,]+{_TIME})?|{_TIME})$")
_LINE_MESSAGE = re.compile(r"^(?P<stamp>\d{1,2}:\d{2})\t(?P<name>[^\t]*)\t(?P<text>.*)$")
_TEXT_LIKE_ROLES = {"note", "memo", "メモ", "system"}
_SEPARATOR = re.compile(r"^\s*(?:[-=*]{3,}|#+\s*(.*))\s*$")
_HEADER = re.compile(
    r"^\s*(?:\[LINE\].*|.*のトーク履歴\s*|保存日時\s*[:：].*|Chat history with .*|Saved on\s*[:：].*)$")
_DATE = re.compile(
    r"^\s*(?:\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2}|\d{4}年\d{1,2}月\d{1,2}日)\s*(?:[(（][^)）]{1,4}[)）]|[月火水木金土日]曜日?)?\s*$"
                   r"|^\s*(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? [A-Z][a-z]+ \d{1,2},? \d{4}\s*$")
_SYSTEM = re.compile(
    r"(?:が退出しました|が参加しました|を招待しました|がグループに参加しました|送信を取り消しました|がアルバム|"
                     r"left the (?:chat|group|conversation)|joined the (?:chat|group|conversation)|has (?:left|joined)|"
                     r"unsent a message)\s*[。.]?\s*$"
                     r"|^\s*\[(?:スタンプ|写真|動画|ファイル|ボイスメッセージ|Sticker|Photo|Video|File)\]\s*$")
_BOT_NAME = re.compile(r"(?<![a-z])bot(?![a-z])|ボット|自動応答|自動返信|auto-?reply|chatbot", re.IGNORECASE)
_BOT_TEXT = re.compile(r"^\s*[\[【(（]?\s*(?:自動応答|自動返信|auto-?reply|automatic reply)", re.IGNORECASE)


class _Speakers:
    """The sides of one conversation's speakers: roles first, then the first-seen rule."""

    def __init__(self, roles: tuple[tuple[str, ...], ...]) -> None:
        self.roles, self.known, self.customer = roles, {}, None

    def side(self, name: str, timed: bool) -> str | None:
        found = role_side(name, *self.roles)
        if found is not None or not timed or not name.strip():
            return found
        key = _key(name)
        if key not in self.known:
            if _BOT_NAME.search(key):
                self.known[key] = "skip"
            elif any(word in key for word in SUPPORT_WORDS):
                self.known[key] = "agent"
            elif self.customer is None:
                self.known[key], self.customer = "customer", key
            else:
                self.known[key] = "agent"
        return self.known[key]


def _skip(conversation: Conversation, number: int) -> None:
    conversation.skipped += 1
    conversation.turns.append(Turn("skip", "", number))


def _head(line: str) -> str | None:
    """The speaker's name when `line` is a Teams/Slack speaker line (the text follows below), else None."""
    match = _HEAD.match(line)
    if match is None:
        return None
    stamp = next(value for value in match.group("stamp", "stamp2", "stamp3") if value is not None)
    name = match.group("name") or match.group("name2")
    return name.strip() if _HEAD_STAMP.match(stamp.strip()) and not name.strip().isdigit() else None


def _message(conversation: Conversation, speakers: _Speakers, line: str, number: int) -> bool:
    """Adds the message a line starts, if it starts one; returns whether it did (or skipped a line)."""
    line_match = _LINE_MESSAGE.match(line)
    head = None if line_match else _head(line)
    if head is not None:
        side = speakers.side(head, timed=True)
        if side == "skip":
            _skip(conversation, number)
        elif side is not None:
            conversation.turns.append(Turn(side, "", number))
        return side is not None
    match = line_match or _SPEAKER.match(line)
    if match is None:
        return False
    name, text = match.group("name").strip(), match.group("text")
    if line_match and not name:
        _skip(conversation, number)  # LINE writes system events without a name
        return True
    side = speakers.side(name, timed=bool(match.group("stamp")))
    if side == "skip" and _key(name) in _TEXT_LIKE_ROLES and not line_match:
        return False  # "Note: ..." inside a transcript is part of the message
    if side is None:
        return False
    if side == "skip" or _SYSTEM.search(text) or _BOT_TEXT.match(text):
        _skip(conversation, number)
        return True
    if line_match and text.startswith('"') and not (len(text) > 1 and (len(text) - len(text.rstrip('"'))) % 2 == 1):
        text = text[1:]  # LINE's quoted multi-line message: the quote closes on a later line
        conversation.open_quote = True
    conversation.turns.append(Turn(side, text, number))
    return True


def _line(conversation: Conversation, speakers: _Speakers, line: str, number: int) -> None:
    if conversation.open_quote:  # inside a LINE quoted message
        closing = (len(line) - len(line.rstrip('"'))) % 2 == 1  # an odd run of quotes: "" is an escaped quote
        conversation.turns[-1].text += "\n" + (line[:-1] if closing else line)
        conversation.open_quote = not closing
        return
    if _HEADER.match(line) or _DATE.match(line) or (line.strip() and _SYSTEM.search(line) and not _SPEAKER.match(line)):
        conversation.skipped += 1
        return
    if _message(conversation, speakers, line, number):
        return
    if conversation.turns:
        previous = conversation.turns[-1]
        previous.text += "\n" + line
    elif line.strip() and conversation.error is None:
        conversation.error = f"text before the first speaker at line {number}: {line[:40]!r}"


def _finish(conversation: Conversation) -> Conversation:
    if conversation.error:  # (a file that ends inside a quote ends the message there)
        conversation.turns = []
        return conversation
    turns = [Turn(t.side, t.text.strip("\n").replace('""', '"'), t.line) for t in conversation.turns
             if t.side != "skip"]
    conversation.turns = turns
    return conversation


def from_transcript(path: Path, encoding: str | None, roles: tuple[tuple[str, ...], ...]) -> Iterator[Conversation]:
    """Yields the conversations of a text transcript, in file order."""
    current: Conversation | None = None
    pending_id: str | None = None
    speakers = _Speakers(roles)
    with open_text(path, encoding) as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            separator = None if current is not None and current.open_quote else _SEPARATOR.match(line)
            if separator:
                if current is not None:
                    yield _finish(current)
                current, pending_id, speakers = None, (separator.group(1) or "").strip() or None, _Speakers(roles)
                continue
            if current is None:
                if not line.strip():
                    continue
                current = Conversation(str(path), number, pending_id or f"{path}:{number}")
            _line(current, speakers, line, number)
    if current is not None:
        yield _finish(current)
