"""Where a dump may be written: the HERALD path, checked as netdumpd's sandbox checks it.

Everything is opened relative to a directory descriptor, one component at a time, with
O_NOFOLLOW: a symlink planted in the output directory is never followed, and no path a
client sends can name a file outside the output directory.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import NamedTuple

from analyzer.wire import MAX_PATH

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class HeraldPath(NamedTuple):
    parts: tuple[bytes, ...]  # directories below the output directory; () for the top
    text: str | None  # the path as sent, for reports (None when the HERALD carried none)
    refused: str | None  # why the sent path was not used


def display(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def check_herald_path(payload: bytes | None) -> HeraldPath:
    """Decide the directory from a HERALD payload (path + NUL), as netdumpd would."""
    if not payload:
        return HeraldPath((), None, None)
    text = display(payload.rstrip(b"\0")) if payload.endswith(b"\0") else display(payload)
    if len(payload) > MAX_PATH:
        return HeraldPath((), text, f"path of {len(payload)} bytes is over {MAX_PATH}")
    if not payload.endswith(b"\0"):
        return HeraldPath((), text, "path is not NUL-terminated")
    raw = payload[:-1]
    if b"\0" in raw:
        return HeraldPath((), text, "path holds a NUL byte")
    if raw.startswith(b"/") or raw.startswith(b"\\"):
        return HeraldPath((), text, "absolute path")
    parts = []
    for part in raw.replace(b"\\", b"/").split(b"/"):
        if part == b"..":
            return HeraldPath((), text, "path holds a '..' component")
        if part and part != b".":
            parts.append(part)
    if any(len(p) > 255 for p in parts):
        return HeraldPath((), text, "a path component is over 255 bytes")
    return HeraldPath(tuple(parts), text, None)


def open_directory(top_fd: int, parts: tuple[bytes, ...], create: bool = True) -> int:
    """A descriptor for ``parts`` below ``top_fd``, creating directories, never following links.

    Raises OSError (ELOOP for a symlink, ENOTDIR for a file in the way).
    """
    fd = os.dup(top_fd)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ENOTDIR and stat.S_ISLNK(
                        os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise OSError(errno.ELOOP, "symbolic link in the output path") from exc
                raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def relative_name(parts: tuple[bytes, ...], name: str) -> str:
    """The path below the output directory, as Python names it: ``open(outdir / name)`` works
    even for bytes that are not UTF-8 (they become surrogate escapes, as in os.fsdecode)."""
    return "/".join([os.fsdecode(p) for p in parts] + [name])
