"""Domain errors every door maps the same way (the API to problem details, the pages to a message)."""

from __future__ import annotations

from synth.edits import EditError
from synth.formats import InputError

__all__ = ["Conflict", "EditError", "InputError", "Invalid", "NotFound", "TooLarge"]


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


class TooLarge(ValueError):
    """An upload or a project over one of the server's limits (HTTP 413)."""


class Invalid(ValueError):
    """A request that is well-formed but not acceptable (HTTP 422); `location` points at the bad value."""

    def __init__(self, message: str, location: list | None = None):
        super().__init__(message)
        self.location = location or []
