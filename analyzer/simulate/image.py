"""The bytes a simulated client dumps, and the dumper writes that carry them.

Two image models share one interface (``size``, ``seed``, ``sections``, ``read``,
``dumper_writes``):

* ``DumpImage`` (the "legacy" model, the default): a minidump-like amd64 image whose
  section sizes follow from its length; its bitmap and pmap are random, not consistent with
  its pages. Captures simulated with it keep the bytes they always had.
* ``minidump.Minidump``: a consistent amd64 or arm64 minidump (dump_avail, bitmap, pmap and
  pages agree; a real-looking message buffer), see that module. The bundled samples use it.

Every data page is a pure function of (seed, page number), so any range can be produced
again without keeping the image in memory.

``dumper_writes()`` is the small interface the client model follows: the (offset, length)
of each write minidumpsys hands the dumper, in order (header and dump_avail pages and
page-table pages one 4 KiB page at a time, msgbuf, bitmap and data pages in writes of up
to 64 KiB). ``DumpStream`` turns those writes into the VMCORE byte stream after optional
compression (a real gzip or zstd stream) and encryption (real EKCD, see ``ekcd.py``). It
also knows, once exhausted, the stream length on the wire, the KDH ``dumplength``, the
SHA-256 of the bytes netdumpd keeps and that of the plaintext image.
"""
from __future__ import annotations

import hashlib
import random
import struct
import zlib
from typing import Iterator

PAGE = 4096
MAXIO = 16 * PAGE  # MAXDUMPPGS * PAGE_SIZE: the largest single dumper write
_ZERO_PAGE = bytes(PAGE)
KERNBASE = 0xFFFFFFFF80000000
DMAPBASE = 0xFFFFF80000000000

_MINIDUMP_HDR = struct.Struct("<24sIIIIQQQI")  # amd64 struct minidumphdr, version 3
_WORDS_LOG = (
    "vm_fault: pager read error", "pid 1234 (firefox), jid 0, uid 1001: exited on signal 11",
    "em0: link state changed to UP", "ums0: at uhub0, port 1, addr 2",
    "Fatal trap 12: page fault while in kernel mode", "cpuid = 1; apic id = 01",
    "fault virtual address\t= 0x18", "fault code\t\t= supervisor read data, page not present",
    "instruction pointer\t= 0x20:0xffffffff80c2d8a4", "stack pointer\t\t= 0x28:0xfffffe00d4e1c8d0",
    "current process\t\t= 12 (swi4: clock (0))", "trap number\t\t= 12",
    "panic: page fault", "KDB: stack backtrace:", "Uptime: 3d4h12m33s", "Dumping 123 out of 8143 MB:",
)


def _mix(seed: int, n: int) -> int:
    """A well-spread 64-bit seed for (seed, n)."""
    return int.from_bytes(hashlib.blake2b(b"%d/%d" % (seed, n), digest_size=8).digest(), "little")


def data_block(seed: int, k: int) -> bytes:
    """Data pages of 64 KiB block k (pages 16k .. 16k+15): about a quarter zero pages, a
    quarter repetitive (compressible), half random."""
    rng = random.Random(_mix(seed, k))
    kinds = [rng.random() for _ in range(16)]
    nrand = sum(1 for x in kinds if x >= 0.5)
    rand = rng.randbytes(nrand * PAGE) if nrand else b""
    out = []
    ri = 0
    for x in kinds:
        if x < 0.25:
            out.append(_ZERO_PAGE)
        elif x < 0.5:
            page = bytearray(rng.getrandbits(64).to_bytes(8, "little") * (PAGE // 8))
            for _ in range(8):
                p = int(rng.random() * (PAGE // 8)) * 8
                page[p:p + 8] = rng.getrandbits(64).to_bytes(8, "little")
            out.append(page)
        else:
            out.append(rand[ri:ri + PAGE])
            ri += PAGE
    return b"".join(out)


def section_writes(sections) -> Iterator[tuple[int, int]]:
    """(offset, length) of each dumper write for (name, first page, page count) sections.

    The header page, the dump_avail page and page-table pages are single 4 KiB writes; the
    message buffer, the bitmap and the data pages go out in writes of up to 64 KiB.
    """
    for name, first, count in sections:
        start, end = first * PAGE, (first + count) * PAGE
        step = PAGE if name in ("header", "dump_avail", "pmap") else MAXIO
        for pos in range(start, end, step):
            yield pos, min(step, end - pos)


def read_chunked(chunk, size: int, offset: int, length: int) -> bytes:
    """Image bytes [offset, offset + length) from ``chunk(k)``, the k-th 64 KiB block."""
    end = min(size, offset + length)
    k0, k1 = offset // MAXIO, (end - 1) // MAXIO
    if k0 == k1:
        base = k0 * MAXIO
        c = chunk(k0)
        if offset == base and end - base == len(c):
            return c
        return c[offset - base:end - base]
    parts = []
    pos = offset
    while pos < end:
        k = pos // MAXIO
        base = k * MAXIO
        stop = min(end, base + MAXIO)
        parts.append(chunk(k)[pos - base:stop - base])
        pos = stop
    return b"".join(parts)


class DumpImage:
    """A deterministic amd64 minidump-like image of ``size`` bytes (a multiple of 4096)."""

    def __init__(self, size: int, seed: int = 0):
        if size <= 0 or size % PAGE:
            raise ValueError("dump size must be a positive multiple of 4096")
        self.size = size
        self.seed = seed
        n = size // PAGE
        layout = []
        left = n

        def take(name: str, want: int) -> None:
            nonlocal left
            k = max(0, min(want, left))
            layout.append((name, n - left, k))
            left -= k

        take("header", 1)
        take("msgbuf", min(24, max(1, n // 16)))
        take("dump_avail", 1)
        take("bitmap", max(1, -(-n // (PAGE * 8))))
        take("pmap", min(512, max(1, n // 64)))
        take("data", left)
        self.sections = [(name, first, count) for name, first, count in layout if count]
        self._special: dict[int, bytes] = {}
        self._last_k = -1
        self._last = b""
        self._build_special()

    # --- contents -------------------------------------------------------------------------
    def section_of(self, page: int) -> str:
        for name, first, count in self.sections:
            if first <= page < first + count:
                return name
        raise IndexError(page)

    def _count(self, name: str) -> int:
        return next((c for s, _, c in self.sections if s == name), 0)

    def _build_special(self) -> None:
        rng = random.Random(_mix(self.seed, -1))
        npages = self.size // PAGE
        hdr = _MINIDUMP_HDR.pack(
            b"minidump FreeBSD/amd64", 3, self._count("msgbuf") * PAGE,
            self._count("bitmap") * PAGE, self._count("pmap") * PAGE, KERNBASE, DMAPBASE,
            DMAPBASE + npages * 4 * PAGE, PAGE,
        )
        self._special[0] = hdr + bytes(PAGE - len(hdr))
        for name, first, count in self.sections:
            if name == "msgbuf":
                lines = []
                t = 0.0
                while sum(map(len, lines)) < count * PAGE:
                    t += rng.random() * 3
                    lines.append(("[%d.%06d] " % (int(t), int(t * 1e6) % 1000000)
                                  + rng.choice(_WORDS_LOG) + "\n").encode())
                text = b"".join(lines)[: count * PAGE]
                for i in range(count):
                    self._special[first + i] = text[i * PAGE:(i + 1) * PAGE]
            elif name == "dump_avail":
                ranges = struct.pack("<4Q", 0x1000, 0x9F000, 0x100000, npages * 4 * PAGE)
                self._special[first] = ranges + bytes(PAGE - len(ranges))
            elif name == "bitmap":
                for i in range(count):
                    self._special[first + i] = bytes(
                        (rng.getrandbits(8) | 0x11) for _ in range(PAGE))
            elif name == "pmap":
                for i in range(count):
                    base = rng.getrandbits(20) << 12
                    ptes = [(base + (j << 12)) | 0x63 if rng.random() < 0.8 else 0
                            for j in range(PAGE // 8)]
                    self._special[first + i] = struct.pack("<512Q", *ptes)

    def chunk(self, k: int) -> bytes:
        """The 64 KiB block k of the image (the last one may be shorter)."""
        if self._last_k == k:
            return self._last
        data = data_block(self.seed, k)
        first_page = k * 16
        if any((first_page + i) in self._special for i in range(16)):
            buf = bytearray(data)
            for i in range(16):
                sp = self._special.get(first_page + i)
                if sp is not None:
                    buf[i * PAGE:(i + 1) * PAGE] = sp
            data = bytes(buf)
        data = data[: max(0, self.size - k * MAXIO)]
        self._last_k, self._last = k, data
        return data

    def read(self, offset: int, length: int) -> bytes:
        """Image bytes [offset, offset + length)."""
        return read_chunked(self.chunk, self.size, offset, length)

    def dumper_writes(self) -> Iterator[tuple[int, int]]:
        """(offset, length) of each write the minidump code hands the dumper, in order."""
        return section_writes(self.sections)


COMPRESSIONS = {"none": 0, "gzip": 1, "zstd": 2}


class DumpStream:
    """The VMCORE byte stream of one dump as a sequence of dumper writes.

    ``writes()`` may be iterated several times and always yields the same (offset, bytes).
    After a full iteration: ``wire_length`` (bytes sent as VMCORE), ``dumplength`` (the KDH
    value: image size, or the true compressed length), ``sha256`` (of the first dumplength
    wire bytes, i.e. the file netdumpd keeps when nothing is lost), ``plain_sha256`` (of the
    image before compression and encryption).

    ``key``: an ``ekcd.DumpKey`` for an encrypted dump (compress, then encrypt).
    """

    def __init__(self, image, compression: str = "none", key=None, stale_pad: bool = False):
        if compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {compression!r}")
        self.image = image
        self.compression = compression
        self.key = key
        self.encrypted = key is not None
        self.stale_pad = stale_pad
        self.wire_length: int | None = None
        self.dumplength: int | None = None
        self.sha256: str | None = None
        self.wire_sha256: str | None = None
        self.plain_sha256: str | None = None

    def _plain_writes(self, h_plain=None) -> Iterator[tuple[int, bytes, int]]:
        """(offset, bytes, meaningful_length) before encryption; ``h_plain`` sees the image."""
        img = self.image
        if self.compression == "none":
            for off, n in img.dumper_writes():
                data = img.read(off, n)
                if h_plain is not None:
                    h_plain.update(data)
                yield off, data, n
            return
        if self.compression == "gzip":
            comp = zlib.compressobj(6, zlib.DEFLATED, 31)
            finish = comp.flush
        else:
            import zstandard
            cobj = zstandard.ZstdCompressor(level=3).compressobj()
            comp = cobj
            finish = cobj.flush
        pending = bytearray()
        out_off = 0
        last_buf = bytes(MAXIO)
        for off, n in img.dumper_writes():
            data = img.read(off, n)
            if h_plain is not None:
                h_plain.update(data)
            pending += comp.compress(data)
            while len(pending) >= MAXIO:
                last_buf = bytes(pending[:MAXIO])
                del pending[:MAXIO]
                yield out_off, last_buf, MAXIO
                out_off += MAXIO
        pending += finish()
        while len(pending) >= MAXIO:
            last_buf = bytes(pending[:MAXIO])
            del pending[:MAXIO]
            yield out_off, last_buf, MAXIO
            out_off += MAXIO
        if pending:
            rem = len(pending)
            padded = -(-rem // PAGE) * PAGE
            # 12.x leaves whatever the compression buffer held; later kernels zero the tail.
            pad = last_buf[rem:padded] if self.stale_pad else bytes(padded - rem)
            yield out_off, bytes(pending) + pad, rem

    def writes(self) -> Iterator[tuple[int, bytes]]:
        """The dumper writes, in order. Encrypted dumps are written in 4 KiB units."""
        h_file = hashlib.sha256()
        h_wire = h_file  # the same until a padded write makes them differ
        total = 0
        meaningful = 0
        # The plaintext hash is the file hash unless compression or encryption intervene.
        h_plain = hashlib.sha256() if self.encrypted or self.compression != "none" else None
        encrypt = self.key.encryptor() if self.encrypted else None
        for off, data, useful in self._plain_writes(h_plain):
            if encrypt is not None:
                data = encrypt(off, data)
            if useful == len(data):
                h_file.update(data)
                if h_wire is not h_file:
                    h_wire.update(data)
            else:
                if h_wire is h_file:
                    h_wire = h_file.copy()
                h_wire.update(data)
                h_file.update(data[:useful])
            total = off + len(data)
            meaningful = off + useful
            if self.encrypted:
                for i in range(0, len(data), PAGE):
                    yield off + i, data[i:i + PAGE]
            else:
                yield off, data
        self.wire_length = total
        self.dumplength = meaningful
        self.sha256 = h_file.hexdigest()
        self.wire_sha256 = h_wire.hexdigest()
        self.plain_sha256 = h_plain.hexdigest() if h_plain is not None else self.sha256

    def compressed_writes(self) -> Iterator[tuple[int, bytes, int]]:
        """(offset, bytes, meaningful length) of the stream before encryption."""
        return self._plain_writes()

    def ensure_done(self) -> None:
        if self.dumplength is None:
            for _ in self.writes():
                pass

    def read_range(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Wire bytes overlapping [start, end), as (offset, bytes) pieces, in order."""
        for off, data in self.writes():
            if off + len(data) <= start:
                continue
            if off >= end:
                break
            lo = max(start, off) - off
            hi = min(end, off + len(data)) - off
            yield off + lo, data[lo:hi]
