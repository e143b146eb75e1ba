"""The walk of one capture file, shared by the pcap and pcapng walkers.

A format walker knows its records (``records``: every whole record of a buffer) and what a
cut end means (``at_end``); this skeleton reads the source in chunks, carries the partial
record over to the next read, hands on one list of items per read, and closes the file.
The walker keeps its own counters (frames, truncation, the cut record); the reader reads
them, nothing here writes into the reader.
"""
from __future__ import annotations

from typing import Iterator

from analyzer.anomalies import Kind
from analyzer.capture.fileformat import Opened
from analyzer.datagram import Notice


class FileWalker:
    """State of one file's walk. ``frame`` is the number of the last complete record (frame
    numbers run on across the files of a run, from ``first``)."""

    def __init__(self, o: Opened, first: int, take, decoder, pending=None):
        self.o = o
        self.first = first
        self.frame = first
        self.ts = 0  # time of the last record walked, for notices
        self.take = take  # frames.frame_taker
        self.decoder = decoder  # decode.Decoder, for the cut final record
        self.truncated = False  # the file ends early, or is corrupt from some point on
        self.cut_frame = 0  # the frame number the record cut by the end of the file would have had
        self.stopped = False  # corrupt: nothing after this point is read
        self.oversized = 0  # records longer than the header's snap length
        self.pending = pending  # checksums.Pending the frame taker fills, or None

    @property
    def frames(self) -> int:
        """Complete records read from this file so far."""
        return self.frame - self.first

    def records(self, buf: bytes, pos: int, out: list) -> int:
        """Walk the whole records of ``buf`` from ``pos``; return where the first incomplete
        one starts (set ``stopped`` when the file is corrupt from there)."""
        raise NotImplementedError

    def at_end(self, buf: bytes, pos: int, error: str | None, out: list) -> None:
        """The file ended (or failed: ``error``) with ``buf[pos:]``, not empty, not a whole
        record."""
        raise NotImplementedError

    def stop(self, out: list, why: str) -> None:
        """The file is corrupt from the next record on: say so and read no further."""
        self.truncated = True
        self.stopped = True
        out.append(Notice(Kind.TRUNCATED_CAPTURE, self.frame + 1,
                          f"{why} after frame {self.frame}; the file is corrupt from here and "
                          f"the rest of it is not read", self.ts))

    def cut(self, out: list, have: int, caplen: int, what: str, error: str | None) -> None:
        """The final record is cut by the end of the file: it is not a frame, the notice
        names it; what it holds is still decoded (``at_end`` does that)."""
        self.cut_frame = n = self.frame + 1
        why = f" ({error})" if error else ""
        out.append(Notice(Kind.TRUNCATED_CAPTURE, n,
                          f"the file ends inside {what} {n}{why}: {caplen - have} of its "
                          f"{caplen} captured bytes are lost", self.ts))

    def walk(self, chunk: int) -> Iterator[list]:
        """Lists of Datagram/Notice items, one per buffer read (the last may be empty)."""
        o = self.o
        src = o.source
        buf, pos = o.buf, o.pos
        pending = self.pending
        try:
            while True:
                out: list = []
                pos = self.records(buf, pos, out)
                if pending is not None:
                    pending.settle(buf, out)
                if self.stopped:
                    yield out
                    return
                if out:
                    yield out
                # The next record is not all in the buffer: read more.
                more = src.read(chunk)
                if not more:
                    break
                buf = buf[pos:] + more
                pos = 0
            out = []
            if pos < len(buf):
                self.truncated = True
                self.at_end(buf, pos, src.error, out)
            elif src.error:
                self.truncated = True
                out.append(Notice(Kind.TRUNCATED_CAPTURE, self.frame + 1,
                                  f"the file could not be read to its end after frame "
                                  f"{self.frame} ({src.error}); the rest is lost", self.ts))
            yield out
        finally:
            o.close()
