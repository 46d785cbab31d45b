"""Support logs -> conversations: JSONL/JSON messages, CSV/TSV ticket exports, text transcripts.

    python -c "import data_tools.conversations as c; print(next(c.read_conversations('examples/data/acme_chat.txt')))"

Each message gets a side (customer or agent) from its role or speaker name, in English or
Japanese (customer/user/顧客/お客様, agent/assistant/operator/担当/オペレーター, ...); system
messages and internal notes are skipped and counted. A conversation that cannot be used as a
whole (broken JSON line, unknown role, bad timestamp) comes out with `error` set and no turns,
so the caller can reject it with its line; nothing raises for one bad conversation.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from data_tools import jsonio
from data_tools.helpdesk import adapt, unwrap
from data_tools.readers import DataError, decode, open_text
from data_tools.roles import Conversation, Turn, _key, role_side  # noqa: F401 (Turn: imported from here by tests)

MESSAGE_LISTS = ("messages", "conversation", "turns", "dialog", "dialogue")
ROLE_KEYS = ("role", "speaker", "from", "author", "sender")
TEXT_KEYS = ("content", "text", "value", "body", "message")
TICKET_COLUMNS = {  # the common names, Zendesk's, Freshdesk's and Help Scout's CSV exports among them
    "ticket": ("ticket_id", "ticket", "ticket id", "conversation_id", "conversation id", "thread_id", "case_id",
               "チケットid", "チケット番号", "問い合わせ番号", "問合せ番号", "案件番号"),
    "time": ("comment created at", "comment_created_at", "timestamp", "created_at", "created at", "time", "date",
             "datetime", "sent_at", "日時", "作成日時", "送信日時", "日付"),
    "role": ("comment author role", "comment_author_role", "author role", "author type", "role", "author_role",
             "sender type",
             "sender", "speaker", "from", "author", "comment author", "送信者", "発言者", "役割", "担当区分"),
    "body": ("comment body", "comment_body", "comment plain body", "body", "message", "text", "content", "本文", "内容",
             "メッセージ"),
    "public": ("comment public", "comment_public", "public", "is_public", "private", "is_private", "公開"),
    # whose message it is, by name: a customer's name is redacted wherever it occurs in the ticket
    "name": ("comment author", "comment author name", "author name", "requester", "requester name", "customer name",
             "sender name", "name", "氏名", "お名前", "お客様名", "顧客名"),
}
_FALSE = ("false", "no", "0", "n", "いいえ", "非公開", "")
_SUPPORTED_FORMATS = ("jsonl", "json", "csv", "tsv", "transcript")


def read_conversations(
    path: str | Path, fmt: str = "auto", encoding: str | None = None,
    agent_roles: Iterable[str] = (), customer_roles: Iterable[str] = (), skip_roles: Iterable[str] = (),
    ticket_fields: dict[str, str] | None = None,
) -> Iterator[Conversation]:
    """Yields the conversations of a support log, in file order.

    >>> [len(c.turns) for c in read_conversations("examples/data/acme_tickets.jsonl")][:2]   # doctest: +SKIP
    [4, 2]
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    kind = _format(path, fmt)
    roles = (tuple(agent_roles), tuple(customer_roles), tuple(skip_roles))
    if kind == "jsonl":
        with open_text(path, encoding) as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield _from_json_line(path, number, line, roles)
    elif kind == "json":
        yield from _from_json_array(path, decode(path, encoding)[0], roles)
    elif kind in ("csv", "tsv"):
        yield from _from_tickets(path, encoding, "," if kind == "csv" else "\t", roles, ticket_fields)
    else:
        from data_tools.transcripts import from_transcript

        yield from from_transcript(path, encoding, roles)


def _format(path: Path, fmt: str) -> str:
    if fmt not in ("auto", None):
        if fmt not in _SUPPORTED_FORMATS:
            raise DataError(f"{path}: a support log cannot be {fmt!r}; use one of {list(_SUPPORTED_FORMATS)}")
        return fmt
    known = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "transcript",
             ".log": "transcript"}
    if path.suffix.lower() not in known:
        raise DataError(
            f"{path}: unknown support-log format {path.suffix!r}; set `format:` (jsonl, json, csv, tsv, transcript)")
    return known[path.suffix.lower()]


def _text_of(message: dict[str, Any]) -> str | None:
    for key in TEXT_KEYS:
        value = message.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list):  # OpenAI-style content parts
            return "\n".join(part.get("text", "") for part in value if isinstance(part, dict)
                             and part.get("type", "text") == "text")
    return None


def _from_json_object(path: Path, number: int, obj: Any, roles: tuple[tuple[str, ...], tuple[str, ...]],
                      users: dict[Any, dict[str, Any]] | None = None) -> Conversation:
    conversation = Conversation(str(path), number, f"{path}:{number}")
    if not isinstance(obj, dict):
        conversation.error = f"expected a JSON object, got {type(obj).__name__}"
        return conversation
    conv_id = next((obj[key] for key in ("id", "conversation_id") if obj.get(key) not in (None, "")), None)
    conversation.conv_id = conversation.conv_id if conv_id is None else str(conv_id)
    adapted = adapt(obj, users)
    if adapted is not None:  # a help-desk tool's own shape: its fields say who spoke
        conversation.tool, messages, conversation.names = adapted
        for side, text, _ in messages:
            if side == "skip" or not text.strip():
                conversation.skipped += 1
            else:
                conversation.turns.append(Turn(side, text, number))
        return conversation
    messages = next((obj[key] for key in MESSAGE_LISTS if isinstance(obj.get(key), list)), None)
    if messages is None:
        conversation.error = f"no message list (one of {list(MESSAGE_LISTS)}); keys are {list(obj)[:10]}"
        return conversation
    for index, message in enumerate(messages, start=1):
        role = next((message.get(key) for key in ROLE_KEYS if isinstance(message, dict) and message.get(key)), None)
        if isinstance(role, dict):  # an author object: {"type": "customer", "name": ..., "email": ...}
            conversation.names += [str(role[key]) for key in ("name", "email") if role.get(key)]
            role = next((role[key] for key in ("type", "role", "kind") if role.get(key)), None)
        text = _text_of(message) if isinstance(message, dict) else None
        if role is None or text is None:
            conversation.error, conversation.turns = f"message {index} has no role or text field", []
            return conversation
        side = role_side(str(role), *roles)
        if side is None:
            conversation.error = f"unknown role {role!r} in message {index}; add it to agent_roles or customer_roles"
            conversation.turns = []
            return conversation
        if side == "skip":
            conversation.skipped += 1
        else:
            conversation.turns.append(Turn(side, text, number))
    return conversation


def _from_json_line(path: Path, number: int, line: str, roles: tuple[tuple[str, ...], tuple[str, ...]]) -> Conversation:
    try:
        obj = jsonio.loads(line)
    except json.JSONDecodeError as error:
        return Conversation(str(path), number, f"{path}:{number}",
                            error=f"broken JSON line: {error.msg} (column {error.colno})",
                            raw=line.rstrip("\r\n"))
    return _from_json_object(path, number, obj, roles)


def _from_json_array(path: Path, text: str, roles: tuple[tuple[str, ...], tuple[str, ...]]) -> Iterator[Conversation]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    objects, users = unwrap(document)  # a list, or an export file {"tickets": [...], "users": [...]}
    for index, obj in enumerate(objects, start=1):
        yield _from_json_object(path, index, obj, roles, users)


def parse_time(value: str) -> datetime | None:
    """Parses the timestamps of common ticket exports (ISO 8601, 2024/01/02 10:00, 2024年1月2日 10:00).

    >>> parse_time("２０２４年１月２日 10:05").isoformat()
    '2024-01-02T10:05:00'
    """
    text = unicodedata.normalize("NFKC", value).strip()
    text = re.sub(r"^(\d{4})年(\d{1,2})月(\d{1,2})日\s*", r"\1-\2-\3 ", text).strip()
    text = re.sub(r"^(\d{4})/(\d{1,2})/(\d{1,2})", r"\1-\2-\3", text)
    match = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})(.*)$", text)
    if match:
        rest = re.sub(r"^([ T])(\d):", r"\g<1>0\2:", match[4])  # Excel writes 9:05 for 09:05
        text = f"{match[1]}-{int(match[2]):02d}-{int(match[3]):02d}{rest}"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def _ticket_columns(path: Path, header: list[str], given: dict[str, str] | None = None) -> dict[str, str | None]:
    by_key = {_key(column): column for column in header}
    found = {role: next((by_key[_key(name)] for name in names if _key(name) in by_key), None)
             for role, names in TICKET_COLUMNS.items()}
    for part, column in (given or {}).items():
        if _key(column) not in by_key:
            raise DataError(f"{path}: ticket_fields.{part} names column {column!r}, which is not among {header}")
        found[part] = by_key[_key(column)]
    missing = [role for role in ("ticket", "role", "body") if found[role] is None]
    if missing:
        raise DataError(
            f"{path}: no {', '.join(missing)} column found among {header}; a ticket export needs ticket id, "
                        f"role and body columns: name yours with ticket_fields, e.g. {{{missing[0]}: <column>}}")
    return found


def _from_tickets(path: Path, encoding: str | None, delimiter: str, roles: tuple[tuple[str, ...], ...],
                  ticket_fields: dict[str, str] | None = None) -> Iterator[Conversation]:
    tickets: dict[str, Conversation] = {}
    stamps: dict[str, list[tuple[datetime | None, int, Turn | None]]] = {}
    with open_text(path, encoding) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        columns = _ticket_columns(path, header, ticket_fields)
        start = reader.line_num + 1
        for values in reader:
            line, start = start, reader.line_num + 1
            if not any(value.strip() for value in values):
                continue
            row = dict(zip(header, values))
            ticket = row.get(columns["ticket"], "") or f"{path}:{line}"
            conversation = tickets.setdefault(ticket, Conversation(str(path), line, ticket))
            stamps.setdefault(ticket, [])
            if conversation.error:
                continue
            conversation.error = _ticket_row(row, values, header, columns, line, roles, conversation, stamps[ticket])
    for ticket, conversation in tickets.items():
        if not conversation.error:
            ordered = sorted(stamps[ticket], key=lambda item: (item[0] is None, item[0] or datetime.min, item[1]))
            conversation.turns = [turn for _, _, turn in ordered if turn is not None]
        else:
            conversation.turns = []
        yield conversation


def _ticket_row(row: dict[str, str], values: list[str], header: list[str], columns: dict[str, str | None], line: int,
                roles: tuple[tuple[str, ...], tuple[str, ...]], conversation: Conversation,
                stamps: list[tuple[datetime | None, int, Turn | None]]) -> str | None:
    """Adds one message row to its ticket; returns an error for the whole ticket, or None."""
    if len(values) != len(header):
        return f"row at line {line} has {len(values)} fields, header has {len(header)}"
    side = role_side(row[columns["role"]], *roles)  # type: ignore[index]
    if side is None:
        return f"unknown role {row[columns['role']]!r} at line {line}; add it to agent_roles or customer_roles"  # type: ignore[index]
    stamp = None
    if columns["time"] and row[columns["time"]].strip():
        stamp = parse_time(row[columns["time"]])
        if stamp is None:
            return f"unreadable timestamp {row[columns['time']]!r} at line {line} (field {columns['time']})"
    name = columns.get("name")
    if side == "customer" and name and name != columns["role"] and row.get(name, "").strip():
        conversation.names.append(row[name].strip())
    if side == "skip" or _internal(row, columns["public"]):
        conversation.skipped += 1
        return None
    stamps.append((stamp, len(stamps), Turn(side, row[columns["body"]], line)))  # type: ignore[index]
    return None


def _internal(row: dict[str, str], column: str | None) -> bool:
    """Says whether a ticket row is an internal note by its public/private column (none: it is not)."""
    if column is None:
        return False
    value = _key(row.get(column, ""))
    return value not in _FALSE if "private" in _key(column) else value in _FALSE and value != ""
