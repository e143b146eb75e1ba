"""A consistent FreeBSD minidump, amd64 or arm64, version 2 or 3, of an exact length.

Layout (dump-formats.md §4-§5, protocol reference §9.3): header page, msgbuf
(``round_page(msgbufsize)``), dump_avail (v3 only: u64 (start, end) pairs ending in a zero
pair), bitmap, pmap, then the dumped pages in bitmap order. Everything agrees:

* the bitmap's population is the number of pages, and ``dumplength`` = 4096 +
  round_page(msgbufsize) + round_page(dumpavailsize) + bitmapsize + pmapsize + pages × 4096;
* bit → physical address as libkvm finds it: v3 walks dump_avail, v2 has PA = bit × 4096;
* amd64 pmap: pages of u64 PDEs, one per 2 MiB of kernel VA from ``kernbase``; a PDE is
  either a 2 MiB page (PG_V|PG_PS, all 512 of its pages dumped), or points at a page-table
  page that is itself a dumped page, whose valid PTEs point at dumped pages, or zero;
* arm64 pmap: one page of L3 entries per 2 MiB of kernel VA (a 2 MiB block is written as
  a synthesized L3 page, unmapped VA as a zero page); every valid entry maps a dumped page.

The kernel's msgbuf ring is ``msgbuf.Msgbuf``: its ``msgbufsize`` is the ring size, a little
under the section, whose tail is zero. The header is built from ``wire.MINIDUMP_HEADERS``,
the one declarative layout that the readers parse with; a version 2 header leaves the fields
version 3 added at zero, as the kernel's page does.
"""
from __future__ import annotations

import bisect
import random
import struct

from analyzer.wire import MINIDUMP_HEADERS

from .image import MAXIO, PAGE, _mix, data_block, read_chunked, section_writes
from .msgbuf import make_msgbuf

ARCHES = {
    # kernbase, the direct map, physical memory start, KDH architecture and its version.
    # arm64 writes kernbase = VM_MIN_KERNEL_ADDRESS and its dmapend follows physical memory.
    # amd64 writes VM_MIN_KERNEL_ADDRESS too, with one pmap page per GiB up to KERNBASE
    # (about 2046 pages): here kernbase is KERNBASE so that one pmap page covers the kernel
    # map and small dumps stay possible; dmapend is DMAP_MAX_ADDRESS.
    "amd64": dict(kernbase=0xFFFFFFFF80000000, dmapbase=0xFFFFF80000000000,
                  dmapend=0xFFFFFC0000000000, phys=0, kdh_arch="amd64", kdh_archver=2),
    "arm64": dict(kernbase=0xFFFF000000000000, dmapbase=0xFFFFA00000000000, dmapend=None,
                  phys=0x40000000, kdh_arch="aarch64", kdh_archver=1),
}
PG_V, PG_RW, PG_A, PG_M, PG_PS, PG_G = 0x1, 0x2, 0x20, 0x40, 0x80, 0x100
PG_FRAME = 0x000FFFFFFFFFF000
L3_PAGE, ATTR_DEFAULT = 0x3, 0x700  # arm64: valid page descriptor; AF | inner shareable
ARM_ADDR_MASK = 0x0000FFFFFFFFF000
SUPERPAGE = 512  # 4 KiB pages in 2 MiB
_Q512 = struct.Struct("<512Q")


class Minidump:
    """A minidump of exactly ``size`` bytes; same interface as ``image.DumpImage``.

    ``pages_pa[j]`` is the physical address of the j-th dumped page; ``dump_avail`` the
    physical ranges; ``msgbuf`` the ring and its lines.
    """

    def __init__(self, size: int, seed: int = 0, *, arch: str = "amd64", version: int = 3,
                 msgbuf_wrapped: bool = False, panic: str = "page fault",
                 version_line: str = "FreeBSD 14.1-RELEASE releng/14.1-n267679-10e31f0946d8 GENERIC amd64",
                 server_ip: str = "192.0.2.1"):
        if arch not in ARCHES or version not in (2, 3):
            raise ValueError("minidumps are simulated for amd64 and arm64, versions 2 and 3")
        if size <= 0 or size % PAGE:
            raise ValueError("dump size must be a positive multiple of 4096")
        self.size, self.seed, self.arch, self.version = size, seed, arch, version
        self.params = dict(size=size, seed=seed, arch=arch, version=version,
                           msgbuf_wrapped=msgbuf_wrapped, panic=panic,
                           version_line=version_line, server_ip=server_ip)
        a = ARCHES[arch]
        rng = random.Random(_mix(seed, -21))
        n = size // PAGE
        self.dump_avail = _phys_ranges(a["phys"], max(32768, 4 * n))
        nbits = (sum(e - s for s, e in self.dump_avail) if version == 3
                 else self.dump_avail[-1][1]) // PAGE
        bitmap_pages = -(-nbits // (8 * PAGE))
        msg_pages = min(24, max(2, n // 10))
        self.n_super = min(4, n // 4096)
        n_tables = min(200, max(1, n // 256))
        pmap_pages = 1 if arch == "amd64" else self.n_super + 1 + n_tables
        head = 1 + msg_pages + (1 if version == 3 else 0) + bitmap_pages + pmap_pages
        npages = n - head
        least = head + self.n_super * SUPERPAGE + n_tables + 1
        if n < least:
            raise ValueError(f"a {size}-byte {arch} v{version} minidump is too small "
                             f"(at least {least * PAGE} bytes)")
        names = ["header", "msgbuf"] + (["dump_avail"] if version == 3 else []) \
            + ["bitmap", "pmap", "pages"]
        counts = dict(header=1, msgbuf=msg_pages, dump_avail=1, bitmap=bitmap_pages,
                      pmap=pmap_pages, pages=npages)
        self.sections, first = [], 0
        for name in names:
            self.sections.append((name, first, counts[name]))
            first += counts[name]
        self._first = {name: f for name, f, _ in self.sections}
        self._plan_pages(rng, npages, n_tables)
        self.msgbuf = make_msgbuf(
            random.Random(_mix(seed, -22)), msg_pages * PAGE - 64, msgbuf_wrapped, arch=arch,
            version_line=version_line, panic=panic, dump_mb=size >> 20,
            phys_bytes=sum(e - s for s, e in self.dump_avail), server_ip=server_ip)
        hdr = dict(magic=b"minidump FreeBSD/" + arch.encode(), version=version,
                   msgbufsize=len(self.msgbuf.ring), bitmapsize=bitmap_pages * PAGE,
                   pmapsize=pmap_pages * PAGE, kernbase=a["kernbase"], dmapbase=a["dmapbase"],
                   dmapend=a["dmapend"] or a["dmapbase"] + self.dump_avail[-1][1] - a["phys"])
        if arch == "arm64":
            hdr["dmapphys"] = a["phys"]
        if version == 3:
            hdr["dumpavailsize"] = PAGE
        self.header = hdr
        self._special = self._build_special(MINIDUMP_HEADERS[arch].build(**hdr))
        self._last_k, self._last = -1, b""
        self._data_k, self._data = -1, b""

    # --- planning -------------------------------------------------------------------------
    def _plan_pages(self, rng: random.Random, npages: int, n_tables: int) -> None:
        """Choose the dumped physical pages and what maps them."""
        big = max(self.dump_avail, key=lambda r: r[1] - r[0])
        sup_base = big[0] + (-big[0]) % (SUPERPAGE * PAGE)  # 2 MiB aligned
        supers = [sup_base + i * SUPERPAGE * PAGE for i in range(self.n_super)]
        sup_end = sup_base + self.n_super * SUPERPAGE * PAGE
        free = []  # dump_avail without the superpages
        for s, e in self.dump_avail:
            if s < sup_end and e > sup_base:
                free += [r for r in ((s, sup_base), (sup_end, e)) if r[0] < r[1]]
            else:
                free.append((s, e))
        starts, cum = [], [0]
        for s, e in free:
            starts.append(s)
            cum.append(cum[-1] + (e - s) // PAGE)
        rest = npages - self.n_super * SUPERPAGE
        picks = rng.sample(range(cum[-1]), rest)

        def pa_of(i: int) -> int:
            r = bisect.bisect_right(cum, i) - 1
            return starts[r] + (i - cum[r]) * PAGE

        chosen = [pa_of(i) for i in picks]
        n_pt = n_tables if self.arch == "amd64" else 0  # amd64 page-table pages are dumped
        self.pt_pages = chosen[:n_pt]
        mapped_n = min(n_tables * 512, (rest - n_pt) * 3 // 5)
        mapped = chosen[n_pt:n_pt + mapped_n]
        self.supers = supers
        # Each table maps a share of the mapped pages at sorted random slots.
        self.tables = []
        for t in range(n_tables):
            share = mapped[t::n_tables]
            slots = sorted(rng.sample(range(512), len(share)))
            self.tables.append(dict(zip(slots, share)))
        self.pages_pa = sorted([pa for base in supers for pa in range(
            base, base + SUPERPAGE * PAGE, PAGE)] + chosen)
        self._pt_index = {pa: t for t, pa in enumerate(self.pt_pages)}

    def bit_of(self, pa: int) -> int:
        """The bitmap bit of a physical page (libkvm's rule for this version)."""
        if self.version == 2:
            return pa // PAGE
        bit = 0
        for s, e in self.dump_avail:
            if s <= pa < e:
                return bit + (pa - s) // PAGE
            bit += (e - s) // PAGE
        raise ValueError(f"PA {pa:#x} is outside dump_avail")

    def _pmap_pages(self) -> list[bytes]:
        if self.arch == "amd64":
            pdes = [pa | PG_V | PG_RW | PG_A | PG_M | PG_PS | PG_G for pa in self.supers]
            pdes += [pa | PG_V | PG_RW | PG_A | PG_M for pa in self.pt_pages]
            return [_Q512.pack(*(pdes + [0] * (512 - len(pdes))))]
        out = [_Q512.pack(*((base + i * PAGE) | ATTR_DEFAULT | L3_PAGE for i in range(512)))
               for base in self.supers]
        out.append(bytes(PAGE))  # a 2 MiB hole in the kernel map
        out += [self._table_page(t, ATTR_DEFAULT | L3_PAGE) for t in range(len(self.tables))]
        return out

    def _table_page(self, t: int, bits: int) -> bytes:
        ents = [0] * 512
        for slot, pa in self.tables[t].items():
            ents[slot] = pa | bits
        return _Q512.pack(*ents)

    def _build_special(self, header: bytes) -> dict[int, bytes]:
        special = {0: header + bytes(PAGE - len(header))}
        msg = self.msgbuf.ring
        first = self._first["msgbuf"]
        count = dict((n, c) for n, _, c in self.sections)
        msg += bytes(count["msgbuf"] * PAGE - len(msg))
        for i in range(count["msgbuf"]):
            special[first + i] = msg[i * PAGE:(i + 1) * PAGE]
        if self.version == 3:
            pairs = [x for r in self.dump_avail for x in r] + [0, 0]
            raw = struct.pack(f"<{len(pairs)}Q", *pairs)
            special[self._first["dump_avail"]] = raw + bytes(PAGE - len(raw))
        bitmap = bytearray(count["bitmap"] * PAGE)
        for pa in self.pages_pa:
            b = self.bit_of(pa)
            bitmap[b >> 3] |= 1 << (b & 7)
        for i in range(count["bitmap"]):
            special[self._first["bitmap"] + i] = bytes(bitmap[i * PAGE:(i + 1) * PAGE])
        for i, page in enumerate(self._pmap_pages()):
            special[self._first["pmap"] + i] = page
        base = self._first["pages"]
        index = {pa: j for j, pa in enumerate(self.pages_pa)}
        for pa, t in self._pt_index.items():
            special[base + index[pa]] = self._table_page(t, PG_V | PG_RW | PG_A | PG_M)
        return special

    # --- contents -------------------------------------------------------------------------
    def section_table(self) -> list[tuple[str, int, int]]:
        """(name, file offset, length) of each section."""
        return [(name, first * PAGE, count * PAGE) for name, first, count in self.sections]

    def _page(self, p: int) -> bytes:
        sp = self._special.get(p)
        if sp is not None:
            return sp
        j = p - self._first["pages"]
        if j < 0:
            return bytes(PAGE)
        if self._data_k != j // 16:
            self._data_k, self._data = j // 16, data_block(self.seed, j // 16)
        return self._data[(j % 16) * PAGE:(j % 16 + 1) * PAGE]

    def chunk(self, k: int) -> bytes:
        """The 64 KiB block k of the image (the last one may be shorter)."""
        if self._last_k != k:
            first = k * (MAXIO // PAGE)
            last = min(self.size // PAGE, first + MAXIO // PAGE)
            self._last_k, self._last = k, b"".join(self._page(p) for p in range(first, last))
        return self._last

    def read(self, offset: int, length: int) -> bytes:
        return read_chunked(self.chunk, self.size, offset, length)

    def dumper_writes(self):
        return section_writes(self.sections)


def _phys_ranges(base: int, pages: int) -> list[tuple[int, int]]:
    """Plausible dump_avail ranges holding about ``pages`` pages, with holes between."""
    if base == 0:  # PC layout: low memory below the ISA hole, then from 1 MiB
        low = (0x1000, 0x9F000)
        top = 0x100000 + (pages - 158) * PAGE
        if top <= 0xC0000000:
            return [low, (0x100000, top)]
        return [low, (0x100000, 0xC0000000), (0x100000000, 0x100000000 + top - 0xC0000000)]
    half = pages // 2 * PAGE
    return [(base, base + half), (base + half + 0x200000, base + 0x200000 + pages * PAGE)]


def image_from(params: dict):
    """The same image again, from the ``regenerate`` parameters of the ground truth (a
    legacy image has only ``size`` and ``seed``)."""
    from .image import DumpImage

    p = dict(params)
    size, seed = p.pop("size"), p.pop("seed")
    return Minidump(size, seed, **p) if p else DumpImage(size, seed)


CONTENT_FIELDS = ("image", "arch", "minidump_version", "msgbuf_wrapped", "cipher",
                  "public_key", "server_ip")


def content_of(spec) -> dict:
    """The image and key options of a ``DumpSpec``, as ``client.make_material`` takes them."""
    return {f: getattr(spec, f) for f in CONTENT_FIELDS}


def build_image(size: int, seed: int, content: dict, *, panic: str, versionstring: str):
    """The image a dump spec asks for: the legacy stand-in, or a consistent minidump whose
    msgbuf version line is the first line of the KDH version string."""
    from .image import DumpImage

    model = content.get("image") or "legacy"
    arch = content.get("arch") or "amd64"
    if model == "legacy":
        if arch != "amd64":
            raise ValueError("the legacy image model is amd64 only; use image='minidump'")
        return DumpImage(size, seed)
    if model != "minidump":
        raise ValueError(f"unknown image model {model!r} (legacy or minidump)")
    return Minidump(size, seed, arch=arch, version=content.get("minidump_version") or 3,
                    msgbuf_wrapped=bool(content.get("msgbuf_wrapped")), panic=panic,
                    version_line=versionstring.split("\n", 1)[0],
                    server_ip=content.get("server_ip") or "192.0.2.1")


def kdh_architecture(image) -> tuple[str, int]:
    """KDH ``architecture`` and ``architectureversion`` of an image."""
    a = ARCHES[getattr(image, "arch", "amd64")]
    return a["kdh_arch"], a["kdh_archver"]
