"""Support-log conversations -> one candidate per agent turn, the earlier turns as its prompt.

    python -c "from data_tools.conversations import read_conversations; print(next(read_conversations('examples/data/acme_tickets.jsonl')))"

Consecutive messages of one side are joined into one turn (an agent who writes "Let me check."
and then the answer gives one answer). The unit counted in the report is the agent turn: each
ends up as a record or a reject; a conversation that cannot be read at all is one reject.
Customer messages after the last agent turn are context nobody answered: counted, not records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunebot.config import SourceConfig

if TYPE_CHECKING:
    from data_tools.build import Candidate, RecordBuilder
    from data_tools.conversations import Conversation

ROLE_OF_SIDE = {"customer": "user", "agent": "assistant"}


def log_units(builder: RecordBuilder, source: SourceConfig, path: Path, file_index: int) -> Iterator[Candidate | dict[str, Any]]:
    """Yields one candidate or reject per agent turn of every conversation in a support log."""
    from data_tools.conversations import read_conversations

    report = builder.reports[file_index]
    for key in ("conversations", "messages", "skipped_messages", "unanswered_messages"):
        report.extra.setdefault(key, 0)
    for conversation in read_conversations(path, source.format, source.encoding, source.agent_roles, source.customer_roles,
                                           source.skip_roles, source.ticket_fields):
        report.extra["conversations"] += 1
        report.extra["skipped_messages"] += conversation.skipped
        if conversation.error:
            row = {"conversation": conversation.conv_id, **({"raw": conversation.raw} if conversation.raw else {})}
            yield builder.reject(f"{path}:{conversation.line}", conversation.error, None, row)
            continue
        report.extra["messages"] += len(conversation.turns)
        builder.conversations += 1
        yield from _conversation_units(builder, conversation, path, file_index, builder.conversations)


Turn = tuple[str, str, int, int, bool]  # side, cleaned and redacted text, first line, messages, had PII


def _merged_turns(builder: RecordBuilder, conversation: Conversation, file_index: int) -> list[Turn]:
    """Returns the conversation's turns cleaned and redacted, consecutive same-side messages joined."""
    merged: list[Turn] = []
    report = builder.reports[file_index]
    for turn in conversation.turns:
        clean = builder.cleaner.answer(turn.text) if turn.side == "agent" else builder.cleaner.field(turn.text)
        text, found = builder.redact(clean, report, tuple(sorted(set(conversation.names), key=len, reverse=True)))
        if merged and merged[-1][0] == turn.side:
            side, previous, line, count, had = merged[-1]
            if side == "agent" and builder.cleaner.is_non_answer(previous):
                previous = ""  # "Let me check." followed by the answer: the answer is the turn
            merged[-1] = (side, "\n".join(part for part in (previous, text) if part), line, count + 1, had or bool(found))
        else:
            merged.append((turn.side, text, turn.line, 1, bool(found)))
    return merged


def _prompt(turns: list[Turn], position: int, limit: int) -> list[dict[str, str]]:
    """Returns the messages before turn `position`: at most `limit`, starting with the customer."""
    history = [{"role": ROLE_OF_SIDE[turn[0]], "content": turn[1]} for turn in turns[:position] if turn[1]][-limit:]
    while history and history[0]["role"] != "user":
        history.pop(0)
    return history


def _conversation_units(
    builder: RecordBuilder, conversation: Conversation, path: Path, file_index: int, number: int
) -> Iterator[Candidate | dict[str, Any]]:
    turns = _merged_turns(builder, conversation, file_index)
    for position, (side, text, line, _, had_pii) in enumerate(turns):
        if side != "agent":
            continue
        source = f"{path}:{line}"
        row = {"conversation": conversation.conv_id, "turn": position + 1, "answer": text}
        history = _prompt(turns, position, builder.cfg.max_context_turns)
        if not history:
            yield builder.reject(source, "agent turn with no customer message before it", "answer", row)
            continue
        if builder.cfg.pii == "drop" and (had_pii or any(turn[4] for turn in turns[:position])):
            yield builder.reject(source, "contains personal data", None, row)
            continue
        problem = builder.check("\n".join(message["content"] for message in history if message["role"] == "user"), text, source)
        if problem:
            yield builder.reject(source, problem[0], problem[1], row)
            continue
        candidate = builder.candidate(f"{builder.prefixes[file_index]}-{line:05d}-t{position + 1:02d}", source, history, text, file_index)
        candidate.conversation = number
        yield candidate
    last_agent = max((index for index, turn in enumerate(turns) if turn[0] == "agent"), default=-1)
    builder.reports[file_index].extra["unanswered_messages"] += sum(turn[3] for turn in turns[last_agent + 1 :])
