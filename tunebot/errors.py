"""The base class of every error tunebot reports to a user as one line (no traceback).

    tunebot data missing.yaml   # -> tunebot: error: missing.yaml: config file not found
"""


class TunebotError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class StageNotApplicable(TunebotError):
    """A stage that has nothing to do for this run (e.g. merging a prompt-tuning adapter); `tunebot run` skips it."""
