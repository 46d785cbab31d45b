"""Help-desk exports as their tools write them -> one plain message list per conversation.

    python -c "import json; from data_tools.helpdesk import adapt; print(adapt(json.load(open('ticket.json'))))"

Recognised from the object's shape (no `format:` needed); each message gets a side from the
tool's own fields, not from guessing at names:
- Zendesk ticket with `comments` (API / JSON export): `public: false` comments are internal notes
  (skipped); the author is the customer when `author_id` is the ticket's `requester_id` or the
  user list says `end-user`, an agent otherwise; `via.channel` "rule"/"api" comments of a
  non-requester (triggers, auto-replies) are skipped.
- Intercom conversation: `source` is the first message; `conversation_parts` (a list, or Intercom's
  {"conversation_parts": [...]} object) follow; `author.type` user/lead/contact is the customer,
  admin/teammate the agent, bot skipped; part types other than comment/open/message (note,
  assignment, close, snoozed, ...) are skipped.
- Freshdesk ticket with `conversations`: `description` is the customer's first message; `incoming`
  tells the customer's replies from the agent's; `private` ones are notes (skipped).
- Help Scout conversation with threads (`_embedded.threads` or `threads`): type customer ->
  customer; reply/message/chat -> agent; note, lineitem, forwardparent/child -> skipped.
- Slack export (a channel's day file: a list of messages with `ts`): one conversation per thread
  (`thread_ts`; messages outside threads form one); joins, bot messages and every other
  `subtype` are skipped; people are sided by the first-seen rule of data_tools/transcripts.py (a
  name with a support word is the agent, else the thread's first speaker is the customer).
Messages are ordered by their own timestamps (ISO 8601 or Unix seconds) where the tool gives
them. The people named in the export (requester, author names and e-mails) are returned too, so
the caller can redact them wherever they appear in the text.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

Message = tuple[str, str, Any]  # side ("customer" | "agent" | "skip"), text, timestamp (or None)

INTERCOM_CUSTOMERS = ("user", "lead", "contact", "visitor", "end-user")
INTERCOM_AGENTS = ("admin", "teammate", "agent")
INTERCOM_SPOKEN = ("comment", "open", "message", "conversation", None)


def _dicts(items: Any) -> list[dict[str, Any]]:
    """The objects of a list an export holds (anything else in it is no message: dropped from the list)."""
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _stamp(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\d+(?:\.\d+)?", value.strip()):
        return float(value)  # Unix seconds as text (Slack's ts)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    return None


def _text(item: dict[str, Any], *keys: str) -> str:
    return next((item[key] for key in keys if isinstance(item.get(key), str) and item[key].strip()), "")


def _people(*objects: Any) -> list[str]:
    names = []
    for person in objects:
        if isinstance(person, dict):
            full = " ".join(str(person[key]) for key in ("first", "last") if person.get(key))
            names += [str(person[key]) for key in ("name", "email") if person.get(key)] + ([full] if full else [])
    return names


def _ordered(messages: list[tuple[Any, int, str, str]]) -> list[Message]:
    """Messages by time; one without a time keeps its place after the message before it in the export
    (an Intercom opening message without created_at stays first)."""
    keyed, last = [], float("-inf")
    for stamp, index, side, text in sorted(messages, key=lambda item: item[1]):
        last = stamp if stamp is not None else last
        keyed.append(((last, index), (side, text, stamp)))
    return [message for _, message in sorted(keyed, key=lambda item: item[0])]


def _zendesk(ticket: dict[str, Any], users: dict[Any, dict[str, Any]]) -> tuple[list[Message], list[str]]:
    requester, found, names = ticket.get("requester_id"), [], _people(ticket.get("requester"))
    for index, comment in enumerate(_dicts(ticket["comments"])):
        author = users.get(comment.get("author_id"), {})
        names += _people(author) if comment.get("author_id") == requester or author.get("role") == "end-user" else []
        customer = comment.get("author_id") == requester or author.get("role") == "end-user"
        via = comment.get("via") if isinstance(comment.get("via"), dict) else {}
        automatic = via.get("channel") in ("rule", "api", "system") and not customer
        side = "skip" if comment.get("public") is False or automatic else "customer" if customer else "agent"
        found.append((_stamp(comment.get("created_at")), index, side,
                      _text(comment, "plain_body", "body", "html_body")))
    return _ordered(found), names


def _intercom(conversation: dict[str, Any]) -> tuple[list[Message], list[str]]:
    parts = conversation.get("conversation_parts")
    parts = _dicts(parts.get("conversation_parts") if isinstance(parts, dict) else parts)
    source = conversation.get("source") if isinstance(conversation.get("source"), dict) else {}
    found, names = [], []
    for index, part in enumerate(([{**source, "part_type": "open", "created_at": conversation.get("created_at")}]
                                  if source else [])
                                 + list(parts)):
        author = part.get("author") if isinstance(part.get("author"), dict) else {}
        kind = str(author.get("type", "")).lower()
        if kind in INTERCOM_CUSTOMERS:
            names += _people(author)
        side = ("customer" if kind in INTERCOM_CUSTOMERS else "agent" if kind in INTERCOM_AGENTS else "skip")
        if part.get("part_type") not in INTERCOM_SPOKEN:
            side = "skip"  # notes, assignments, closing, snoozing: not part of the conversation
        found.append((_stamp(part.get("created_at")), index, side, _text(part, "body")))
    return _ordered(found), names


def _freshdesk(ticket: dict[str, Any]) -> tuple[list[Message], list[str]]:
    found = [(_stamp(ticket.get("created_at")), -1, "customer", _text(ticket, "description_text", "description"))]
    for index, reply in enumerate(_dicts(ticket["conversations"])):
        side = "skip" if reply.get("private") else "customer" if reply.get("incoming") else "agent"
        found.append((_stamp(reply.get("created_at")), index, side, _text(reply, "body_text", "body")))
    requester = ticket.get("requester") if isinstance(ticket.get("requester"), dict) else {}
    return _ordered([item for item in found if item[3]]), _people(requester) + ([ticket["email"]]
            if ticket.get("email") else [])


def _helpscout(conversation: dict[str, Any], threads: list[dict[str, Any]]) -> tuple[list[Message], list[str]]:
    found, names = [], _people(conversation.get("primaryCustomer"), conversation.get("customer"))
    for index, thread in enumerate(_dicts(threads)):
        kind = str(thread.get("type", "")).lower()
        side = "customer" if kind == "customer" else "agent" if kind in ("reply", "message", "chat",
                "phone") else "skip"
        if side == "customer":
            names += _people(thread.get("createdBy") or thread.get("customer"))
        found.append((_stamp(thread.get("createdAt")), index, side, _text(thread, "body", "text")))
    return _ordered(found), names


SUPPORT_WORDS = ("サポート", "support", "担当", "窓口", "staff", "operator", "公式", "official", "center", "センター",
                 "カスタマー", "customer service", "help desk")


def _slack(messages: list[dict[str, Any]]) -> tuple[list[Message], list[str]]:
    found, names, sides = [], [], {}
    for index, message in enumerate(messages):
        profile = message.get("user_profile") or {}
        name = str(profile.get("real_name") or profile.get("display_name") or message.get("user") or "")
        if message.get("subtype") or message.get("bot_id"):
            side = "skip"  # joins, bots, edits, file shares without text
        else:
            speaker = message.get("user") or name
            if speaker not in sides:
                support = any(word in name.lower() for word in SUPPORT_WORDS)
                sides[speaker] = "agent" if support or "customer" in sides.values() else "customer"
            side = sides[speaker]
            if side == "customer" and name:
                names += [name, *([profile["display_name"]] if profile.get("display_name") else [])]
        found.append((_stamp(message.get("ts")), index, side, _text(message, "text")))
    return _ordered(found), names


def adapt(obj: dict[str, Any], users: dict[Any, dict[str, Any]] | None = None) -> tuple[str, list[Message],
        list[str]] | None:
    """(tool, messages in order, people named) for a help-desk object, or None when it is no help-desk shape."""
    if isinstance(obj.get("slack_thread"), list):
        return ("slack", *_slack(obj["slack_thread"]))
    if isinstance(obj.get("comments"), list) and any(isinstance(c, dict) and ("public" in c or "author_id" in c)
                                                     for c in obj["comments"]):
        return ("zendesk", *_zendesk(obj, users or {}))
    if "conversation_parts" in obj or (isinstance(obj.get("source"), dict) and "author" in obj["source"]):
        return ("intercom", *_intercom(obj))
    if isinstance(obj.get("conversations"), list) and any(isinstance(c, dict) and "incoming" in c
                                                          for c in obj["conversations"]):
        return ("freshdesk", *_freshdesk(obj))
    threads = (obj.get("_embedded") or {}).get("threads") if isinstance(obj.get("_embedded"),
                                                                        dict) else obj.get("threads")
    if isinstance(threads, list) and any(isinstance(t, dict) and "type" in t for t in threads):
        return ("helpscout", *_helpscout(obj, threads))
    return None


def unwrap(document: Any) -> tuple[list[Any], dict[Any, dict[str, Any]]]:
    """The conversation objects of a whole JSON export and its user list: a list, or {"tickets"/
    "conversations": [...], "users": [...]} (Zendesk's and Intercom's export files)."""
    if isinstance(document, list) and document and all(isinstance(m, dict) and "ts" in m and m.get("type") == "message"
                                                       for m in document):  # a Slack channel's day file
        threads: dict[str, list[dict[str, Any]]] = {}
        for message in document:
            threads.setdefault(str(message.get("thread_ts") or "channel"), []).append(message)
        return [{"id": thread, "slack_thread": messages} for thread, messages in threads.items()], {}
    if isinstance(document, dict):
        users = {user.get("id"): user for user in document.get("users") or [] if isinstance(user, dict)}
        for key in ("tickets", "conversations", "results", "data"):
            if isinstance(document.get(key), list) and not adapt(document, users):
                return document[key], users
        return [document], users
    return list(document) if isinstance(document, list) else [document], {}
