"""Step 1 for support logs: conversations -> one pair per agent turn, the earlier turns as its prompt.

    python -c "from data_tools.turns import log_pairs; print(log_pairs.__doc__.splitlines()[0])"

Consecutive messages of one side are joined into one turn (an agent who writes "Let me check."
and then the answer gives one answer), so messages are cleaned and redacted here, before joining.
The unit counted in the report is the agent turn; a conversation that cannot be read at all is one
reject. Customer messages after the last agent turn are context nobody answered: counted only.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from data_tools.steps import ROLE_OF_SIDE, Context, Pair

if TYPE_CHECKING:
    from data_tools.conversations import Conversation

Turn = tuple[str, str, int, int, bool]  # side, cleaned and redacted text, first line, messages, had PII


def log_pairs(ctx: Context, number: int, extra: Counter, found: Counter) -> list[Pair]:
    """Returns a pair per agent turn of the shard's conversations (shard `number`); counts go into
    `extra` (conversations, messages...) and `found` (personal data)."""
    pairs: list[Pair] = []
    for place, conversation in enumerate(ctx.head["units"]):
        extra["conversations"] += 1
        extra["skipped_messages"] += conversation.skipped
        if conversation.error:
            row = {"conversation": conversation.conv_id, **({"raw": conversation.raw} if conversation.raw else {})}
            pairs.append(Pair(f"{conversation.file}:{conversation.line}", row, reject=(conversation.error, None)))
            continue
        extra["messages"] += len(conversation.turns)
        turns = _merged_turns(ctx, conversation, found)
        pairs.extend(_turn_pairs(ctx, conversation, turns, number << 20 | place))
        last_agent = max((index for index, turn in enumerate(turns) if turn[0] == "agent"), default=-1)
        extra["unanswered_messages"] += sum(turn[3] for turn in turns[last_agent + 1 :])
    return pairs


def _merged_turns(ctx: Context, conversation: Conversation, found: Counter) -> list[Turn]:
    """Returns the conversation's turns cleaned and redacted, consecutive same-side messages joined."""
    merged: list[Turn] = []
    names = tuple(sorted(set(conversation.names), key=len, reverse=True))
    for turn in conversation.turns:
        clean = ctx.cleaner.answer(turn.text) if turn.side == "agent" else ctx.cleaner.field(turn.text)
        text, in_text = ctx.redact(clean, names)
        found.update(in_text)
        if merged and merged[-1][0] == turn.side:
            side, previous, line, count, had = merged[-1]
            if side == "agent" and ctx.cleaner.is_non_answer(previous):
                previous = ""  # "Let me check." followed by the answer: the answer is the turn
            merged[-1] = (side, "\n".join(part for part in (previous, text) if part), line, count + 1, had
                          or bool(in_text))
        else:
            merged.append((turn.side, text, turn.line, 1, bool(in_text)))
    return merged


def _prompt(turns: list[Turn], position: int, limit: int) -> list[dict[str, str]]:
    """Returns the messages before turn `position`: at most `limit`, starting with the customer."""
    history = [{"role": ROLE_OF_SIDE[turn[0]], "content": turn[1]} for turn in turns[:position] if turn[1]][-limit:]
    while history and history[0]["role"] != "user":
        history.pop(0)
    return history


def _turn_pairs(ctx: Context, conversation: Conversation, turns: list[Turn], number: int) -> list[Pair]:
    pairs = []
    for position, (side, text, line, _, had_pii) in enumerate(turns):
        if side != "agent":
            continue
        row: dict[str, Any] = {"conversation": conversation.conv_id, "turn": position + 1, "answer": text}
        pair = Pair(f"{conversation.file}:{line}", row, answer=text, conversation=number,
                    record_id=f"{ctx.prefix}-{line:05d}-t{position + 1:02d}")
        pair.prompt = _prompt(turns, position, ctx.cfg.max_context_turns)
        pair.question = "\n".join(message["content"] for message in pair.prompt if message["role"] == "user")
        pair.had_pii = had_pii or any(turn[4] for turn in turns[:position])
        if not pair.prompt:
            pair.reject = ("agent turn with no customer message before it", "answer")
        pairs.append(pair)
    return pairs
