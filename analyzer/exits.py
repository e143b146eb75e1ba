"""Exit statuses and the one-line failure every command reports the same way."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `tool | head` for any Unix tool


class Failure(Exception):
    """A one-line error for the user; the run stops with ``code``."""

    def __init__(self, message: str, code: int = EXIT_UNREADABLE):
        super().__init__(message)
        self.code = code


class Interrupted(Exception):
    """Ctrl-C, with what is true of the command's output at that point."""


class OutputClosed(Exception):
    """The reader of standard output went away (``| head``): stop quietly. Not an OSError,
    so the pipeline does not take it for a failed capture read or dump write."""


@contextmanager
def interruptible(what_is_left: str) -> Iterator[None]:
    """Turn Ctrl-C inside the block into :class:`Interrupted` saying ``what_is_left``."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(what_is_left) from None
