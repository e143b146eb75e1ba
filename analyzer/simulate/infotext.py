"""netdumpd's info file as the simulated server writes it (protocol reference §11.7-§11.8).

Written here from the reference, not shared with the recovery code it is checked against.
netdumpd reads a KDH with its own compiled version-4 layout and prints it with ``dtoh``
conversions (big-endian, signed), but tests ``version`` and ``dumpkeysize`` raw, in the host
order of a little-endian server, so any non-zero value passes "version >= 2 / >= 3".
"""
from __future__ import annotations

import time

from analyzer.wire import COMPRESSION_SUFFIXES, KDH_SIZE, KDH_V4, kdh_parity

COMPLETE = b"Dump complete\n"
TIMED_OUT = b"Dump incomplete: client timed out\n"
TOO_SMALL = b"Bad KDH: packet too small\n"
# compalgos[] ends with a NULL at index 3, which printf shows as "(null)"; others are "???".
_ALGOS = [b"none", b"gzip", b"zstd", b"(null)"]


def header_line(host: str, ip: str) -> bytes:
    return b"Dump from %s [%s]\n" % (host.encode(), ip.encode())


def _host_order(raw: bytes, offset: int) -> int:
    """A u32 as a little-endian host reads it without byte-swapping."""
    return int.from_bytes(raw[offset:offset + 4], "little")


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


def _text(field: bytes) -> bytes:
    """A C string copied into a buffer one byte shorter than the field (NUL forced)."""
    return field[: len(field) - 1].split(b"\0", 1)[0]


def _dumptime(seconds: int) -> bytes:
    try:
        return time.strftime("%a %b %e %H:%M:%S %Y\n", time.gmtime(seconds)).encode()
    except (OverflowError, OSError, ValueError):
        return b"(null)"  # ctime(3) failed: printf of a NULL string, no newline


class KdhView:
    """What netdumpd makes of one KDH payload: its info lines and the file's fate."""

    def __init__(self, payload: bytes):
        self.ok = len(payload) >= KDH_SIZE
        self.encrypted = False
        self.suffix = ""
        self.truncate_to = None
        if not self.ok:
            self.lines = TOO_SMALL
            return
        raw = payload[:KDH_SIZE]
        h = KDH_V4.parse(raw)
        version = _host_order(raw, 32)
        self.encrypted = version >= 2 and _host_order(raw, 56) > 0
        if version >= 3 and h.compression in COMPRESSION_SUFFIXES:
            self.suffix = COMPRESSION_SUFFIXES[h.compression]
            self.truncate_to = h.dumplength
        length = _signed(h.dumplength, 64)
        out = [b"  Architecture: %s\n" % _text(h.architecture),
               b"  Architecture Version: %d\n" % _signed(h.architectureversion, 32),
               b"  Dump Length: %dB (%d MB)\n" % (length, length >> 20),
               b"  Blocksize: %d\n" % _signed(h.blocksize, 32)]
        if version >= 3:
            algo = _ALGOS[h.compression] if h.compression < len(_ALGOS) else b"???"
            out.append(b"  Compression: %s\n" % algo)
        out += [b"  Dumptime: " + _dumptime(_signed(h.dumptime, 64)),
                b"  Hostname: %s\n" % _text(h.hostname),
                b"  Version String: " + _text(h.versionstring),
                b"  Panic String: %s\n" % _text(h.panicstring),
                b"  Header Parity Check: %s\n" % (b"Fail" if kdh_parity(raw) else b"Pass")]
        self.lines = b"".join(out)
