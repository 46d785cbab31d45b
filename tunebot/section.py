"""The base of every config section: unknown keys are errors, assignments are validated.

    python -c "from tunebot.section import Section; print(Section.model_config)"
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: `extra="forbid"` turns a misspelled key into an error naming it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
