"""Decompressing a gzip or zstd dump stream that has holes.

A decoder fed the bytes before a hole yields everything up to it; after a hole the stream
cannot be resynchronised in general. A restart is taken only where it is provable: at the
next zstd frame, found by walking the block headers (each gives its block's size) through
the hole, and placed by the lost frame's declared content size. Inside a gzip member the
deflate blocks carry no sizes, so nothing after a hole in it is used.

The kernel writes one minimal gzip member (``1f 8b 08 00 00000000 00 03``) or one zstd frame,
then pads the last block; whatever follows the stream is reported, not decoded.
"""
from __future__ import annotations

import struct
import zlib
from typing import Callable, NamedTuple

from analyzer.debug.files import Ranges

OUT_CHUNK = 1 << 20
IN_CHUNK = 1 << 16
ZSTD_FEED = 4096  # compressed bytes per call: bounds what one call can expand to
GZIP_MAGIC = b"\x1f\x8b\x08"
ZSTD_MAGIC = 0xFD2FB528
_U32 = struct.Struct("<I")
_GZIP_FIXED = struct.Struct("<3sBIBB")  # magic+method, flags, mtime, xfl, os
_GZIP_TRAILER = struct.Struct("<II")  # CRC-32, ISIZE


class Decoded(NamedTuple):
    length: int  # bytes of output placed (the file's length)
    missing: Ranges  # output ranges that could not be decoded, within [0, length)
    reached: int  # output decoded contiguously from 0
    stopped_at: int | None  # compressed offset where decoding first stopped (None: the end)
    complete: bool  # the whole stream decoded and checked
    notes: list[str]


class _Stream:
    """The compressed file: reads, and the first missing byte at or after a position."""

    def __init__(self, read: Callable[[int, int], bytes], length: int, missing: Ranges):
        self.read, self.length, self.missing = read, length, missing

    def hole_from(self, pos: int) -> int:
        """The first missing offset >= pos (the length when none)."""
        for a, b in self.missing:
            if b > pos:
                return max(a, pos)
        return self.length

    def have(self, pos: int, n: int) -> bool:
        return pos + n <= self.hole_from(pos)


def _gzip_header(s: _Stream, pos: int) -> int | None:
    """The length of the gzip member header at ``pos`` (None when there is none)."""
    if not s.have(pos, _GZIP_FIXED.size):
        return None
    magic, flags, _mtime, _xfl, _os = _GZIP_FIXED.unpack(s.read(pos, _GZIP_FIXED.size))
    if magic != GZIP_MAGIC or flags & 0xE0:
        return None
    n = _GZIP_FIXED.size
    if flags & 4:  # FEXTRA
        if not s.have(pos + n, 2):
            return None
        n += 2 + struct.unpack("<H", s.read(pos + n, 2))[0]
    for bit in (8, 16):  # FNAME, FCOMMENT: NUL-terminated
        if flags & bit:
            end = s.read(pos + n, min(4096, s.hole_from(pos + n) - pos - n)).find(b"\0")
            if end < 0:
                return None
            n += end + 1
    if flags & 2:  # FHCRC
        n += 2
    return n if s.have(pos, n) else None


def gunzip(s: _Stream, write: Callable[[int, bytes], None]) -> Decoded:
    pos = out = 0
    notes: list[str] = []
    members = 0
    while True:
        head = _gzip_header(s, pos)
        if head is None:
            if members == 0:
                return Decoded(0, [], 0, pos, False, ["no gzip header at the start of the file"])
            if pos < s.length:
                notes.append(f"{s.length - pos} bytes after the gzip stream at offset {pos} "
                             "(block padding) not decoded")
            return Decoded(out, [], out, None, True, notes)
        members += 1
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        crc, size = 0, 0
        cur = pos + head
        hole = s.hole_from(cur)
        try:
            while not d.eof and cur < hole:
                data = s.read(cur, min(IN_CHUNK, hole - cur))
                cur += len(data)
                while data and not d.eof:
                    piece = d.decompress(data, OUT_CHUNK)
                    write(out, piece)
                    crc, size, out = zlib.crc32(piece, crc), size + len(piece), out + len(piece)
                    data = d.unconsumed_tail
        except zlib.error as exc:
            notes.append(f"gzip data invalid before offset {cur}: {exc}")
            return Decoded(out, [], out, cur, False, notes)
        if not d.eof:
            notes.append(f"decoded {out} bytes, up to compressed offset {hole} (a hole); "
                         "no restart is provable inside a gzip member")
            return Decoded(out, [], out, hole, False, notes)
        tail = cur - len(d.unused_data)
        if not s.have(tail, _GZIP_TRAILER.size):
            notes.append("the gzip trailer (CRC-32, size) was not captured: not checked")
            return Decoded(out, [], out, None, False, notes)
        want_crc, want_size = _GZIP_TRAILER.unpack(s.read(tail, _GZIP_TRAILER.size))
        if (want_crc, want_size) != (crc, size & 0xFFFFFFFF):
            notes.append(f"gzip member ending at {tail}: CRC-32 or size does not match")
            return Decoded(out, [], out, tail, False, notes)
        pos = tail + _GZIP_TRAILER.size


class _Frame(NamedTuple):
    start: int
    end: int | None  # None: a block header fell in a hole
    content_size: int | None


def _zstd_frame(s: _Stream, pos: int) -> _Frame | None:
    """Locate the frame at ``pos`` from its header and block headers (None: not a frame)."""
    if not s.have(pos, 6) or _U32.unpack(s.read(pos, 4))[0] != ZSTD_MAGIC:
        return None
    fhd = s.read(pos + 4, 1)[0]
    single, checksum = fhd >> 5 & 1, fhd >> 2 & 1
    fcs_len = (1 if single else 0, 2, 4, 8)[fhd >> 6]
    dict_len = (0, 1, 2, 4)[fhd & 3]
    head = 5 + (0 if single else 1) + dict_len
    if not s.have(pos, head + fcs_len):
        return None
    fcs = None
    if fcs_len:
        fcs = int.from_bytes(s.read(pos + head, fcs_len), "little") + (256 if fcs_len == 2 else 0)
    bpos = pos + head + fcs_len
    while True:
        if bpos + 3 > s.length or not s.have(bpos, 3):
            return _Frame(pos, None, fcs)
        bh = int.from_bytes(s.read(bpos, 3), "little")
        last, btype, bsize = bh & 1, bh >> 1 & 3, bh >> 3
        if btype == 3:
            return _Frame(pos, None, fcs)
        bpos += 3 + (1 if btype == 1 else bsize)
        if last:
            return _Frame(pos, bpos + 4 * checksum, fcs)


def unzstd(s: _Stream, write: Callable[[int, bytes], None]) -> Decoded:
    import zstandard
    pos, out, reached, stopped = 0, 0, None, None
    missing: Ranges = []
    notes: list[str] = []
    while pos < s.length:
        frame = _zstd_frame(s, pos)
        if frame is None:
            if pos == 0:
                return Decoded(0, [], 0, 0, False, ["no zstd frame at the start of the file"])
            if s.have(pos, 1):
                notes.append(f"{s.length - pos} bytes after the last zstd frame at offset "
                             f"{pos} (block padding) not decoded")
            else:
                notes.append(f"no frame header at offset {pos} (not captured): stopped")
                stopped = pos if stopped is None else stopped
            break
        hole = s.hole_from(pos)
        end = frame.end if frame.end is not None else s.length
        dec = zstandard.ZstdDecompressor().decompressobj()
        produced = 0
        try:
            for at in range(pos, min(hole, end), ZSTD_FEED):
                piece = dec.decompress(s.read(at, min(ZSTD_FEED, min(hole, end) - at)))
                if piece:
                    write(out + produced, piece)
                    produced += len(piece)
        except zstandard.ZstdError as exc:
            notes.append(f"zstd frame at {pos} invalid: {exc}")
            hole = min(hole, pos)
        whole = hole >= end and frame.end is not None
        if not whole:
            stopped = min(hole, end) if stopped is None else stopped
            if reached is None:
                reached = out + produced
        if whole and frame.content_size not in (None, produced):
            notes.append(f"zstd frame at {pos} gave {produced} bytes, its header says "
                         f"{frame.content_size}")
        if whole:
            out += produced
        elif frame.content_size is not None and frame.end is not None:
            missing.append((out + produced, out + frame.content_size))
            out += frame.content_size
            notes.append(f"zstd frame at {pos} lost from compressed offset {hole}; restarted "
                         f"at the next frame, offset {frame.end} (output offset {out})")
        else:
            out += produced
            notes.append(f"decoded {out} bytes, up to compressed offset {min(hole, end)} "
                         "(a hole); no later frame can be placed")
            break
        pos = frame.end
    complete = stopped is None and not missing
    return Decoded(out, missing, out if reached is None else reached, stopped, complete, notes)


def decompress(kind: str, read: Callable[[int, int], bytes], length: int, missing: Ranges,
               write: Callable[[int, bytes], None]) -> Decoded:
    """Decode a ``gzip`` or ``zstd`` stream; ``write(offset, data)`` gets the output."""
    s = _Stream(read, length, sorted(missing))
    return gunzip(s, write) if kind == "gzip" else unzstd(s, write)


def stream_kind(start: bytes) -> str | None:
    if start.startswith(GZIP_MAGIC):
        return "gzip"
    if len(start) >= 4 and _U32.unpack_from(start)[0] == ZSTD_MAGIC:
        return "zstd"
    return None
