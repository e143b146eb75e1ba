"""The baseline: the least work any reader must do. Walk every record and unpack the netdump
header of each frame, nothing more. ``extract`` is measured against this loop.

usage: python benchmarks/scan.py CAPTURE   (classic pcap or pcapng, Ethernet, uncompressed)
"""
from __future__ import annotations

import mmap
import struct
import sys

HDR = struct.Struct(">IIQII")
WINDOW = 64 << 20  # map a sliding window, never the whole file


def scan_pcap(m, size: int, byteorder: str) -> int:
    rec = struct.Struct(byteorder + "IIII")
    pos, frames, acc = 24, 0, 0
    while pos + 16 <= size:
        _s, _u, incl, _orig = rec.unpack_from(m, pos)
        pos += 16
        if incl >= 66:
            acc ^= HDR.unpack_from(m, pos + 42)[1]
        pos += incl
        frames += 1
    return frames


def scan_pcapng(m, size: int, byteorder: str) -> int:
    blk = struct.Struct(byteorder + "II")
    pos, frames, acc = 0, 0, 0
    while pos + 8 <= size:
        btype, blen = blk.unpack_from(m, pos)
        if btype == 6:
            if blen >= 28 + 66:
                acc ^= HDR.unpack_from(m, pos + 28 + 42)[1]
            frames += 1
        pos += blen
    return frames


def scan(path: str) -> int:
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            magic = m[:4]
            if magic == b"\x0a\x0d\x0d\x0a":
                order = "<" if m[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
                return scan_pcapng(m, size, order)
            order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
            return scan_pcap(m, size, order)
        finally:
            m.close()


if __name__ == "__main__":
    print(scan(sys.argv[1]))
