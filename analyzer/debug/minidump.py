"""The minidump layout, and which physical pages a set of missing bytes destroys.

Sections, page-aligned and in this order: header page, msgbuf, dump_avail (amd64 v3, arm64 v2 on),
bitmap, pmap, then the dumped pages in bitmap order (dump-formats.md §4-§5). As libkvm
finds a page: the k-th set bit's page is the k-th page of the pages section; the bit number
becomes a physical address by walking dump_avail's (start, end) ranges (without one: bit x 4096).
amd64 and arm64 are interpreted; other architectures get their magic and version only.
"""
from __future__ import annotations

import struct
from bisect import bisect_right
from typing import Callable, NamedTuple

from analyzer.debug.files import Ranges, coalesce, overlap
from analyzer.wire import MINIDUMP_HEADERS, MINIDUMP_MAGIC_PREFIX, cstring

PAGE = 4096
_U64 = struct.Struct("<Q")
_ALL = (1 << 64) - 1
# Sizes past these are not a kernel's (a 256 MiB bitmap covers 8 TiB of RAM): a damaged or
# hostile header is reported, never read.
LIMITS = {"msgbufsize": 64 << 20, "bitmapsize": 256 << 20, "pmapsize": 1 << 40,
          "dumpavailsize": 1 << 20}


def round_page(n: int) -> int:
    return -(-n // PAGE) * PAGE


class Section(NamedTuple):
    name: str
    offset: int
    length: int


def minidump_arch(page0: bytes) -> str | None:
    """The architecture named by a minidump magic ("amd64", "i386", ...), or None."""
    if not page0.startswith(MINIDUMP_MAGIC_PREFIX):
        return None
    return cstring(page0[len(MINIDUMP_MAGIC_PREFIX):24]) or None


def parse_header(page0: bytes) -> dict | None:
    """The header fields of an amd64 or arm64 minidump (None for other architectures)."""
    arch = minidump_arch(page0)
    layout = MINIDUMP_HEADERS.get(arch or "")
    if layout is None or len(page0) < layout.size:
        return None
    hdr = layout.parse(page0)._asdict()
    hdr["magic"] = cstring(hdr["magic"])
    hdr["arch"] = arch
    hdr["has_dump_avail"] = has_dump_avail(arch, hdr["version"], hdr["dumpavailsize"])
    if not hdr["has_dump_avail"]:
        hdr["dumpavailsize"] = 0
    return hdr


def has_dump_avail(arch: str, version: int, dumpavailsize: int) -> bool:
    """Whether the dump has a dump_avail section: amd64 from version 3 on; arm64 from
    version 2 on (sys/arm64/include/minidump.h added dumpavailsize in its version 2, and
    version 3 only added the page-size flags). An arm64 v2 header whose dumpavailsize is 0
    is taken at its word: no section."""
    if arch == "arm64" and version == 2:
        return dumpavailsize != 0
    return version >= 3


def sections(hdr: dict, pages: int) -> list[Section]:
    out, pos = [], 0
    for name, size in (("header", PAGE), ("msgbuf", round_page(hdr["msgbufsize"])),
                       ("dump_avail", round_page(hdr["dumpavailsize"])),
                       ("bitmap", round_page(hdr["bitmapsize"])),
                       ("pmap", round_page(hdr["pmapsize"])), ("pages", pages * PAGE)):
        if name == "dump_avail" and not hdr["has_dump_avail"]:
            continue
        out.append(Section(name, pos, size))
        pos += size
    return out


def parse_dump_avail(raw: bytes) -> list[tuple[int, int]]:
    """(start, end) physical ranges, up to the pair whose end is 0."""
    out = []
    for i in range(0, len(raw) - 15, 16):
        start, end = _U64.unpack_from(raw, i)[0], _U64.unpack_from(raw, i + 8)[0]
        if end == 0:
            break
        out.append((start, end))
    return out


class Bitmap:
    """The page bitmap: u64 words, bit b of word w is page bit 64w + b; ranks by prefix sums."""

    def __init__(self, raw: bytes):
        n = len(raw) // 8
        self.words = struct.unpack_from(f"<{n}Q", raw) if n else ()
        cum = [0]
        for w in self.words:
            cum.append(cum[-1] + w.bit_count())
        self.cum = cum

    @property
    def population(self) -> int:
        return self.cum[-1]

    def bit_runs(self, rank_start: int, rank_end: int) -> Ranges:
        """Coalesced [first bit, end bit) runs of the set bits whose ranks are in the range."""
        runs: Ranges = []
        rank_end = min(rank_end, self.population)
        w = max(0, bisect_right(self.cum, rank_start) - 1)
        while w < len(self.words) and self.cum[w] < rank_end:
            word, rank = self.words[w], self.cum[w]
            if word == _ALL and rank >= rank_start and rank + 64 <= rank_end:
                runs.append((64 * w, 64 * w + 64))
            else:
                while word:
                    low = word & -word
                    if rank_start <= rank < rank_end:
                        bit = 64 * w + low.bit_length() - 1
                        runs.append((bit, bit + 1))
                    rank += 1
                    word ^= low
            w += 1
        return coalesce(runs)


def bits_to_pa(runs: Ranges, avail: list[tuple[int, int]] | None) -> Ranges:
    """Physical address ranges of bit runs: through dump_avail, or bit x 4096 without it."""
    if avail is None:
        return coalesce((a * PAGE, b * PAGE) for a, b in runs)
    spans = []  # (first bit, end bit, base PA) of each dump_avail range
    bit = 0
    for start, end in avail:
        n = -(-end // PAGE) - start // PAGE
        spans.append((bit, bit + n, start // PAGE * PAGE))
        bit += n
    out = []
    for a, b in runs:
        for first, last, base in spans:
            lo, hi = max(a, first), min(b, last)
            if lo < hi:
                out.append((base + (lo - first) * PAGE, base + (hi - first) * PAGE))
    return coalesce(out)


def interpret(read: Callable[[int, int], bytes], length: int, missing: Ranges,
              dump_length: int | None = None) -> tuple[dict | None, list[str], Ranges]:
    """The report's ``minidump`` object, problems, and missing ranges including a short tail.

    ``missing`` is the file's map; bytes past the end of a file shorter than the layout are
    added to it. Returns (None, problems, missing) when the header cannot be read.
    """
    problems: list[str] = []
    page0 = read(0, PAGE)
    head_t = MINIDUMP_HEADERS.get(minidump_arch(page0) or "")
    if overlap(missing, 0, head_t.size if head_t else 24):
        return None, ["the minidump header was not captured"], missing
    hdr = parse_header(page0)
    if hdr is None:
        return None, [], missing
    if overlap(missing, 0, PAGE):
        problems.append("the header page lacks bytes after the header fields")
    if hdr["arch"] == "arm64" and hdr.get("flags", 0) & 3:
        problems.append("arm64 minidump with 16 KiB pages: sections not interpreted")
        return _summary(hdr, [], 0, 0, [], False), problems, missing
    for field, limit in LIMITS.items():
        if hdr[field] > limit:
            problems.append(f"minidump header: {field} {hdr[field]} is over {limit}; "
                            "sections not interpreted")
            return None, problems, missing
    secs = {s.name: s for s in sections(hdr, 0)}
    bm = secs["bitmap"]
    bitmap_raw = read(bm.offset, hdr["bitmapsize"]) if bm.offset < length else b""
    holes_in_bitmap = [(a - bm.offset, b - bm.offset) for a, b in missing
                       if a < bm.offset + hdr["bitmapsize"] and b > bm.offset]
    usable = min([a for a, _ in holes_in_bitmap] + [len(bitmap_raw)])
    bitmap = Bitmap(bitmap_raw[:usable - usable % 8])
    if usable < hdr["bitmapsize"]:
        problems.append(f"bitmap: bytes from {usable} not captured; pages past bit "
                        f"{8 * (usable - usable % 8)} cannot be located")
    layout = sections(hdr, bitmap.population)
    expected = layout[-1].offset + layout[-1].length
    if length < expected:
        missing = coalesce(missing + [(length, expected)])
    avail = None
    if hdr["has_dump_avail"]:
        da = secs["dump_avail"]
        if overlap(missing, da.offset, da.offset + da.length):
            problems.append("dump_avail not captured: physical addresses of pages unknown")
        else:
            avail = parse_dump_avail(read(da.offset, round_page(hdr["dumpavailsize"])))
    pages = layout[-1]
    lost_pa: Ranges = []
    ranks = coalesce(((max(a, pages.offset) - pages.offset) // PAGE,
                      -(-(min(b, pages.offset + pages.length) - pages.offset) // PAGE))
                     for a, b in missing)  # the dumped pages any missing byte touches
    lost_pages = sum(r1 - r0 for r0, r1 in ranks)
    if not hdr["has_dump_avail"] or avail is not None:
        for r0, r1 in ranks:
            lost_pa += bits_to_pa(bitmap.bit_runs(r0, r1), avail)
    if dump_length is not None and dump_length != expected:
        problems.append(f"the KDH dumplength {dump_length} differs from the layout's "
                        f"{expected} bytes")
    length_ok = length == expected and dump_length in (None, expected)
    if length != expected:
        problems.append(f"file is {length} bytes, the minidump layout gives {expected}")
    return _summary(hdr, layout, bitmap.population, lost_pages, coalesce(lost_pa),
                    length_ok, missing), problems, missing


def _summary(hdr: dict, layout: list[Section], total: int, lost: int, lost_pa: Ranges,
             length_ok: bool, missing: Ranges = ()) -> dict:
    return {"version": hdr["version"], "msgbufsize": hdr["msgbufsize"],
            "bitmapsize": hdr["bitmapsize"], "pmapsize": hdr["pmapsize"],
            "dumpavailsize": hdr["dumpavailsize"], "kernbase": hdr["kernbase"],
            "dmapbase": hdr["dmapbase"], "dmapend": hdr["dmapend"],
            "sections": [{"name": s.name, "offset": s.offset, "length": s.length,
                          "missing_bytes": overlap(list(missing), s.offset,
                                                   s.offset + s.length)} for s in layout],
            "pages_total": total, "pages_lost": lost,
            "lost_pages_pa": [list(r) for r in lost_pa], "length_ok": length_ok}
