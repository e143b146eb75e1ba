"""Exit statuses and the one-line failure every command reports the same way."""
from __future__ import annotations

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


class Failure(Exception):
    """A one-line error for the user; the run stops with ``code``."""

    def __init__(self, message: str, code: int = EXIT_UNREADABLE):
        super().__init__(message)
        self.code = code

