"""An independent reader of amd64/arm64 minidumps, written from dump-formats.md §4-§5 and
the way libkvm locates pages, to check what the simulator writes (it shares no code with
``analyzer.simulate.minidump``)."""
from __future__ import annotations

import struct

PAGE = 4096


def round_page(n: int) -> int:
    return (n + PAGE - 1) // PAGE * PAGE


def header(data: bytes) -> dict:
    magic = data[:24].rstrip(b"\0")
    arch = magic.split(b"/")[-1].decode()
    version, msgbufsize, bitmapsize, pmapsize = struct.unpack_from("<4I", data, 24)
    h = dict(arch=arch, magic=magic, version=version, msgbufsize=msgbufsize,
             bitmapsize=bitmapsize, pmapsize=pmapsize)
    if arch == "amd64":
        h["kernbase"], h["dmapbase"], h["dmapend"] = struct.unpack_from("<3Q", data, 40)
        h["dumpavailsize"] = struct.unpack_from("<I", data, 64)[0] if version >= 3 else 0
    else:
        h["kernbase"], h["dmapphys"], h["dmapbase"], h["dmapend"] = \
            struct.unpack_from("<4Q", data, 40)
        h["dumpavailsize"], h["flags"] = (struct.unpack_from("<2I", data, 72)
                                         if version >= 3 else (0, 0))
    return h


def layout(data: bytes) -> dict:
    """Section offsets from the header, in the documented order."""
    h = header(data)
    off = {"header": 0, "msgbuf": PAGE}
    off["dump_avail"] = off["msgbuf"] + round_page(h["msgbufsize"])
    off["bitmap"] = off["dump_avail"] + round_page(h["dumpavailsize"])
    off["pmap"] = off["bitmap"] + h["bitmapsize"]
    off["pages"] = off["pmap"] + h["pmapsize"]
    return {"header": h, "offsets": off}


def dump_avail(data: bytes, lay: dict) -> list[tuple[int, int]]:
    h = lay["header"]
    if h["version"] < 3:
        return []
    base = lay["offsets"]["dump_avail"]
    out = []
    for i in range(0, h["dumpavailsize"], 16):
        s, e = struct.unpack_from("<2Q", data, base + i)
        if e == 0:
            break
        out.append((s, e))
    return out


def set_bits(data: bytes, lay: dict) -> list[int]:
    base = lay["offsets"]["bitmap"]
    bm = data[base:base + lay["header"]["bitmapsize"]]
    return [i * 8 + b for i, byte in enumerate(bm) if byte for b in range(8) if byte >> b & 1]


def bit_to_pa(bit: int, avail: list[tuple[int, int]]) -> int:
    """libkvm's walk: subtract each dump_avail range's pages until the bit falls inside."""
    if not avail:
        return bit * PAGE
    for s, e in avail:
        npages = (e - (s // PAGE * PAGE)) // PAGE
        if bit < npages:
            return s // PAGE * PAGE + bit * PAGE
        bit -= npages
    raise ValueError("bit beyond dump_avail")


def page_map(data: bytes) -> tuple[dict, dict]:
    """(layout, {pa: file offset}) of every dumped page, in bitmap order."""
    lay = layout(data)
    avail = dump_avail(data, lay)
    start = lay["offsets"]["pages"]
    return lay, {bit_to_pa(b, avail): start + k * PAGE
                 for k, b in enumerate(set_bits(data, lay))}
