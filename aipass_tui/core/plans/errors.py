"""The error raised for plans: a message that names the fix, and the command's exit code."""

from __future__ import annotations


class PlanError(Exception):
    """A failed plan command. ``exit_code`` is 2 for bad input and 1 for a failed operation."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
