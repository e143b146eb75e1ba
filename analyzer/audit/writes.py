"""Where the client's dumper writes begin: the only offsets where a VMCORE send call can begin.

Every generation sends each call from the start of a dumper write: 12.x sends each write
alone, 13.0 and later flush their 64 KiB buffer only between two writes. So where the
writes are known, a pause at an offset where no write begins is a host stall inside a call,
whatever its length. They are known in two cases (protocol reference §9.2-§9.3; the
minidump_machdep.c and kern_shutdown.c of 12.x and main):

* a compressed stream (gzip or zstd magic at offset 0): the compressor hands the dumper
  64 KiB chunks, so writes begin at multiples of 64 KiB; only its final flush, a 4 KiB
  multiple, is followed by the residual bytes as one padded 4096-byte block, written on
  its own (on 12.x a call of its own);
* an uncompressed amd64 minidump, from its header: the header, dump_avail and page-table
  pages are single 4 KiB writes; the message buffer, the bitmap and the dumped pages go
  out in writes of 64 KiB from their section's start (the last one shorter). arm64 writes
  its page-table section in runs of pages, so from there on any page can begin a write.

Anything else (encrypted data, other architectures, no header captured) leaves every 4 KiB
block a possible start.
"""
from __future__ import annotations

from analyzer.debug.minidump import LIMITS, PAGE, parse_header, sections

MAXIO = 65536  # MAXDUMPPGS × PAGE_SIZE: the largest dumper write
NO, YES, LAST_BLOCK = 0, 1, 2  # what WriteBounds.starts says of an offset
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def stream_compression(head: bytes) -> str | None:
    """The compressor named by the stream's first bytes (offset 0), or None."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == ZSTD_MAGIC:
        return "zstd"
    return None


class WriteBounds:
    """The dump's write layout as (section start, write size) steps, once it is known."""

    __slots__ = ("steps", "compressed")

    def __init__(self) -> None:
        self.steps: list[tuple[int, int]] | None = None
        self.compressed = False

    def learn(self, page0: bytes) -> None:
        """The first bytes of the stream (offset 0), as first captured."""
        if stream_compression(page0):
            self.compressed = True
            self.steps = [(0, MAXIO)]
            return
        hdr = parse_header(page0)
        if hdr is None or any(hdr[k] > v for k, v in LIMITS.items()) \
                or hdr["arch"] == "arm64" and hdr.get("flags", 0) & 3:
            return  # no kernel's header (damaged, hostile, 16 KiB pages): it tells nothing
        # arm64's page-table pages and the pages after them: any page can begin a write
        big = ("msgbuf", "bitmap", "pages") if hdr["arch"] == "amd64" else ("msgbuf", "bitmap")
        self.steps = [(s.offset, MAXIO if s.name in big else PAGE) for s in sections(hdr, 0)]

    def starts(self, offset: int) -> int:
        """YES when a dumper write can begin at ``offset``, NO when none can, LAST_BLOCK
        when only the compressed stream's final padded block can."""
        steps = self.steps
        if steps is None:
            return YES
        start, step = next((s for s in reversed(steps) if s[0] <= offset), steps[0])
        if not (offset - start) % step:
            return YES
        return LAST_BLOCK if self.compressed and not offset % PAGE else NO
