"""The text of netdumpd's info file, and how netdumpd itself reads a KDH.

netdumpd (markjdb/netdumpd, handle_kdh) reads the header with its own compiled version-4
layout and compares ``version`` and ``dumpkeysize`` without byte-swapping them; on the
little-endian servers it runs on, any non-zero value passes. We reproduce that view so the
files we write are the ones netdumpd would have written. Dump times print as ctime(3) in UTC.
"""
from __future__ import annotations

import os

import struct
import time
from typing import NamedTuple

from analyzer.wire import COMPRESSION_SUFFIXES, KDH_SIZE, KDH_V4, kdh_parity

# netdumpd's compalgos[] has a NULL sentinel at index 3, which printf shows as "(null)".
_COMPRESSION_TEXT = {0: b"none", 1: b"gzip", 2: b"zstd", 3: b"(null)"}


class ServerView(NamedTuple):
    """What netdumpd decides from a KDH: the file's name and length."""

    encrypted: bool  # rename to vmcore_encrypted.*
    suffix: str  # "", ".gz" or ".zst"
    truncate_to: int | None  # ftruncate length for compressed dumps


def server_view(raw: bytes) -> ServerView:
    raw_version = struct.unpack_from("<I", raw, 32)[0]
    hdr = KDH_V4.parse(raw)
    raw_keysize = struct.unpack_from("<I", raw, 56)[0]
    encrypted = raw_version >= 2 and raw_keysize > 0
    compressed = raw_version >= 3 and hdr.compression in COMPRESSION_SUFFIXES
    return ServerView(
        encrypted=encrypted,
        suffix=COMPRESSION_SUFFIXES[hdr.compression] if compressed else "",
        truncate_to=hdr.dumplength if compressed else None,
    )


def _cbytes(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


def ctime_utc(seconds: int) -> bytes:
    """ctime(3) output with its newline; "(null)" where ctime would fail."""
    try:
        return time.strftime("%a %b %e %H:%M:%S %Y\n", time.gmtime(seconds)).encode()
    except (OverflowError, OSError, ValueError):
        return b"(null)"


def first_line(hostname: str, ip: str) -> bytes:
    return f"Dump from {hostname} [{ip}]\n".encode()


def kdh_block(raw: bytes) -> bytes:
    """The lines netdumpd appends for one KDH message (its payload, as received)."""
    if len(raw) < KDH_SIZE:
        return b"Bad KDH: packet too small\n"
    raw = raw[:KDH_SIZE]
    hdr = KDH_V4.parse(raw)
    raw_version = struct.unpack_from("<I", raw, 32)[0]
    archver = struct.unpack_from(">i", raw, 36)[0]
    blocksize = struct.unpack_from(">i", raw, 60)[0]
    dumplen = struct.unpack_from(">q", raw, 40)[0]
    lines = [
        b"  Architecture: " + _cbytes(hdr.architecture[:11]) + b"\n",
        b"  Architecture Version: %d\n" % archver,
        b"  Dump Length: %dB (%d MB)\n" % (dumplen, dumplen >> 20),
        b"  Blocksize: %d\n" % blocksize,
    ]
    if raw_version >= 3:
        text = _COMPRESSION_TEXT.get(hdr.compression, b"???")
        lines.append(b"  Compression: " + text + b"\n")
    lines += [
        b"  Dumptime: " + ctime_utc(struct.unpack_from(">q", raw, 48)[0]),
        b"  Hostname: " + _cbytes(hdr.hostname[:63]) + b"\n",
        b"  Version String: " + _cbytes(hdr.versionstring[:191]),
        b"  Panic String: " + _cbytes(hdr.panicstring[:174]) + b"\n",
        b"  Header Parity Check: " + (b"Fail" if kdh_parity(raw) else b"Pass") + b"\n",
    ]
    return b"".join(lines)


STATUS_COMPLETE = b"Dump complete\n"
STATUS_TIMED_OUT = b"Dump incomplete: client timed out\n"
STATUS_LACKING = b"Dump incomplete: the capture lacks part of the dump\n"
STATUS_REFUSED = b"Dump incomplete: data beyond --max-dump-size refused\n"


def status_cut(frame: str) -> bytes:
    """The capture file was cut before the dump ended (not the client's doing); ``frame`` as
    text names it ("15", or "15 of b.pcap" when several files were read)."""
    return b"Dump incomplete: the capture ends mid-dump, at frame %s\n" % os.fsencode(frame)


def missing_lines(missing: list[tuple[int, int]], what: str = "vmcore") -> bytes:
    """Our addition for incomplete dumps: the byte ranges the capture does not hold."""
    return b"".join(
        b"  Missing %s bytes: [%d, %d) (%d bytes)\n" % (what.encode(), start, end, end - start)
        for start, end in missing
    )
