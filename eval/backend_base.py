"""What every eval generation backend is: the interface, and the model kinds it answers with.

    python -c "from eval.backend_base import Backend; help(Backend)"
"""

from __future__ import annotations

from typing import Protocol

from eval.generate import Generation
from tunebot.prompts import Message
from tunebot.systems import Model as Kind

__all__ = ["Backend", "Generation", "Kind"]


class Backend(Protocol):
    """Answers conversations with the base or the tuned model."""

    name: str

    def answer(self, batches: dict[Kind, list[list[Message]]]) -> dict[Kind, list[Generation]]:
        """Returns one Generation per conversation, per model, in input order."""
