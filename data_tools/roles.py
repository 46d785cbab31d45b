"""Who speaks in a support log: the side (customer, agent, skipped) of a role or speaker name, and the
conversation types every log reader fills in.

    python -c "from data_tools.roles import role_side; print(role_side('担当 佐藤'), role_side('Customer'))"
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

AGENT_ROLES = (
    "agent", "assistant", "operator", "support", "staff", "rep", "representative", "csr", "advisor", "admin",
        "teammate",
    "担当", "担当者", "オペレーター", "サポート", "スタッフ", "係員", "窓口", "店舗",
    # whole names checked before first words, so "Customer Service" is not the customer
    "customer service", "customer support", "customer care", "live agent", "human agent",
    "カスタマーサポート", "カスタマーセンター", "サポートセンター",
)
CUSTOMER_ROLES = ("customer", "user", "client", "human", "caller", "guest", "buyer", "end-user", "end user", "enduser",
                  "requester",
                  "lead", "contact", "visitor", "顧客", "お客様", "お客さま", "客", "ユーザー", "利用者", "会員")
# Never answers: notes, system events, and bots / auto-replies (what a bot said is not what the team answers).
SKIPPED_ROLES = ("system", "note", "internal", "internal note", "private note", "memo", "メモ", "社内メモ", "内部メモ",
                 "システム",
                 "bot", "chatbot", "auto-reply", "autoreply", "auto reply", "autoresponder", "automation", "trigger",
                 "自動応答", "自動返信", "ボット", "チャットボット")

# A speaker label after a role: "Agent 2", "user_1", "担当者A", "オペレーター1" (not "customers", "Agentur").
_LABEL = re.compile(r"(.+?)[\s_\-#]*\d{1,3}|(.*[^\x00-\x7f])[a-z]")


@dataclass
class Turn:
    """One message: its side (customer or agent), its text and the line where it starts."""

    side: str
    text: str
    line: int


@dataclass
class Conversation:
    """A conversation of a support log, or why it cannot be used."""

    file: str
    line: int
    conv_id: str
    turns: list[Turn] = field(default_factory=list)
    error: str | None = None
    skipped: int = 0
    raw: str = ""  # the unreadable line, kept (scrubbed) with the reject
    names: list[str] = field(default_factory=list)  # people the export names (requester...): redacted in the text
    tool: str = ""  # the help-desk tool whose shape was read (data_tools/helpdesk.py), if any
    open_quote: bool = False  # a transcript reader inside a LINE message quoted over several lines


def _key(name: Any) -> str:
    return unicodedata.normalize("NFKC", str(name)).strip().casefold()


def role_side(role: str, agent_roles: Iterable[str] = (), customer_roles: Iterable[str] = (),
              skip_roles: Iterable[str] = ()) -> str | None:
    """Returns "agent", "customer", "skip" or None (unknown) for a role or speaker name.

    The name matches whole ("担当者"), or by its first word ("Agent Sato", "担当 佐藤",
    "Agent (Sato)"), either one also without a speaker label ("Agent 2", "担当者A").
    >>> role_side("担当 佐藤"), role_side("Customer"), role_side("system"), role_side("vendor")
    ('agent', 'customer', 'skip', None)
    """
    sides = _role_keys(tuple(agent_roles), tuple(customer_roles), tuple(skip_roles))
    name = _key(role)
    first = re.split(r"[\s(（【\[]", name, maxsplit=1)[0]
    for candidate in (name, first, _without_label(name), _without_label(first)):
        for side, names in sides:
            if candidate in names:
                return side
    return None


@functools.lru_cache(maxsize=32)
def _role_keys(agent_roles: tuple[str, ...], customer_roles: tuple[str, ...],
               skip_roles: tuple[str, ...] = ()) -> tuple[tuple[str, frozenset[str]], ...]:
    """Returns the normalized role names of each side (the user's skip names first, then agent: it wins
    a name on both sides)."""
    sides = (("skip", skip_roles), ("agent", (*AGENT_ROLES, *agent_roles)),
             ("customer", (*CUSTOMER_ROLES, *customer_roles)),
             ("skip", SKIPPED_ROLES))
    return tuple((side, frozenset(_key(name) for name in names)) for side, names in sides)


def _without_label(name: str) -> str:
    match = _LABEL.fullmatch(name)
    return (match[1] or match[2]) if match else name
