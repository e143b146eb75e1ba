"""Files the tool creates: always new, never through a symlink, never over an existing file.

One rule for every output (dump files, derived dumps, reports), so that "existing files are
never overwritten" holds everywhere the same way, even against a file or link made meanwhile.
"""
from __future__ import annotations

import os

from analyzer.exits import Failure

NEW_FILE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def create_exclusive(path: str, mode: int = 0o600) -> int:
    """A descriptor on a new file at ``path``; a Failure (one line) when anything is there."""
    try:
        return os.open(path, NEW_FILE, mode)
    except FileExistsError:
        raise Failure(f"{path} exists; not overwriting it") from None
    except OSError as exc:
        raise Failure(f"cannot create {path}: {exc.strerror}") from None
