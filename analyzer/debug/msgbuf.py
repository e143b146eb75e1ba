"""The kernel message buffer of a minidump, as text, oldest line first.

The section is the raw ring ``msg_ptr[msg_size]``; its write position lives outside it. The
kernel prints "Dumping N out of M MB:" just before it writes the dump, so the newest text
ends right after that line: in a ring that has wrapped the oldest text starts there, in one
that has not the text runs from 0 to it and NUL bytes follow. Bytes the capture lacks read as
zeros: they are never taken for the NULs of an unwrapped ring, and each is shown as U+FFFD
in ``text`` with its [start, end) character range in ``missing``.
"""
from __future__ import annotations

import re

from analyzer.debug.files import Ranges, coalesce, present

LOST = "\ufffd"
_DUMPING = re.compile(rb"Dumping \d+ out of \d+ MB:")
_PANIC = re.compile(r"^panic: (.*)$", re.M)
_VERSION = re.compile(r"^FreeBSD \d+\.\d+-\S+.*$", re.M)


def _captured_nul(ring: bytes, start: int, end: int, missing: Ranges) -> bool:
    """Whether a captured NUL lies in [start, end): the kernel's text holds none, so the
    ring never wrapped past it."""
    for a, b in present([(max(x, start), min(y, end)) for x, y in missing if y > start],
                        end):
        if b > start and b"\0" in ring[max(a, start):b]:
            return True
    return False


def _newest(ring: bytes, ends: list[int]) -> int | None:
    """The write position among the ends of several "Dumping" lines. An earlier attempt's
    line (a minidump retry, or one kept from an earlier boot) is followed by what the kernel
    printed next: progress dots or a newline. The newest is followed by the oldest text of
    the ring, or by never-written NULs."""
    fresh = [e for e in ends if ring[e:e + 1] not in (b".", b"\n", b"\r", b" ")]
    return (fresh or ends or [None])[-1]


def write_position(ring: bytes, missing: Ranges) -> tuple[int | None, bool]:
    """(offset where the newest text ends, whether the ring has wrapped); None: not found."""
    size = len(ring)
    doubled = ring + ring[:64]  # the line may straddle the end of the ring
    shifted = missing + [(a + size, b + size) for a, b in missing]
    ends = [m.end() % size for m in _DUMPING.finditer(doubled)
            if m.start() < size and not any(a < m.end() and b > m.start() for a, b in shifted)]
    found = _newest(ring, ends)
    if found is None:
        # No "Dumping" line: an unwrapped ring still ends where its captured NULs begin.
        tail = max([len(ring.rstrip(b"\0"))] + [b for _a, b in missing])
        if tail < size:
            return tail, False
        return None, True
    # Unwrapped: the captured bytes after the write position are NULs never written.
    return found, not (found and _captured_nul(ring, found, size, missing))


def unroll(ring: bytes, missing: Ranges) -> tuple[str, Ranges, list[str]]:
    """(text, missing character ranges, problems) of the ring, oldest text first."""
    size = len(ring)
    missing = coalesce((max(0, a), min(b, size)) for a, b in missing)
    pos, wrapped = write_position(ring, missing)
    problems = []
    if pos is None:
        problems.append("msgbuf: write position not found (no \"Dumping ... MB:\" line); "
                        "the ring is shown from its offset 0")
        order = [(0, size)]
    elif wrapped:
        order = [(pos, size), (0, pos)]
    else:
        order = [(0, pos)]
    text_parts: list[str] = []
    lost: Ranges = []
    at = 0
    for start, end in order:
        holes = [(max(a, start), min(b, end)) for a, b in missing if a < end and b > start]
        pieces = sorted([(max(a, start), b, True) for a, b in present(holes, end) if b > start] +
                        [(a, b, False) for a, b in holes])
        for a, b, have in pieces:
            if have:
                chunk = ring[a:b].decode("utf-8", "replace")
            else:
                chunk = LOST * (b - a)
                lost.append((at, at + len(chunk)))
            text_parts.append(chunk)
            at += len(chunk)
    return "".join(text_parts), coalesce(lost), problems


def _whole_line(text: str, lost: Ranges, pattern: re.Pattern, group: int) -> str | None:
    """The last line matching ``pattern`` that no missing byte touches."""
    best = None
    for m in pattern.finditer(text):
        if not any(a < m.end() and b > m.start() for a, b in lost):
            best = m.group(group)
    return best


def read_msgbuf(ring: bytes, missing: Ranges) -> dict:
    """The report's ``msgbuf`` object (and problems, under ``_problems``)."""
    text, lost, problems = unroll(ring, missing)
    return {"text": text, "missing": [list(r) for r in lost],
            "panic": _whole_line(text, lost, _PANIC, 1),
            "version_line": _whole_line(text, lost, _VERSION, 0),
            "_problems": problems}
