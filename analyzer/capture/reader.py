"""Several capture files read as one capture."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from analyzer.capture.checksums import Pending
from analyzer.capture.decode import Decoder
from analyzer.capture.fileformat import open_capture
from analyzer.capture.follow import Follow, Ring, is_ring
from analyzer.capture.frames import frame_taker
from analyzer.capture.pcap import PcapWalker
from analyzer.capture.pcapng import PcapngWalker
from analyzer.datagram import Datagram, Notice

DEFAULT_PORTS = frozenset({20023, 20024})
CHUNK = 4 * 1024 * 1024  # bytes of capture read at a time (a batch)


@dataclass
class FileSpan:
    """Where one file's frames are in the run: the run's frame ``first + k`` is the file's
    frame ``k`` (as Wireshark numbers it), for ``k`` from 1 to ``frames``. ``cut_frame`` is
    the run's number of a final record cut by the end of the file (not a frame), or 0;
    ``truncated`` says the file ends early or is corrupt from some point."""

    path: str
    first: int  # frames of the run before this file
    frames: int = 0
    truncated: bool = False
    cut_frame: int = 0

    def local(self, frame: int) -> int | None:
        """The file's own number of the run's ``frame``, or None when not in this file."""
        k = frame - self.first
        return k if 1 <= k <= self.frames or (frame and frame == self.cut_frame) else None


class CaptureReader:
    """Iterates the netdump-port UDP datagrams (and notices) of capture files, in order.

    ``captures`` holds one dict per file opened so far (the report's entry): its ``path``,
    ``frames`` (complete records read from it) and ``truncated`` (it ends early or is corrupt
    from some point). ``files`` holds a :class:`FileSpan` per file, mapping the run's frame
    numbers to the file's own. ``bytes_read``/``total_bytes`` count bytes of the files on
    disk, for progress (a stream has no size: 0).
    """

    def __init__(self, paths: Iterable[str], ports: Iterable[int] = DEFAULT_PORTS,
                 verify_checksums: bool = True, chunk_size: int = CHUNK,
                 checksum_helper: bool | None = None, follow: Follow | None = None):
        self.paths = [str(p) for p in paths]
        self.ports = frozenset(ports)
        self.verify = verify_checksums
        self.chunk_size = max(4096, int(chunk_size))
        self.captures: list[dict] = []
        self.files: list[FileSpan] = []
        self.bytes_read = 0
        self.total_bytes = 0
        self.frame = 0
        self.decoder = Decoder(self.ports, self.verify)
        self.follow = follow  # follow mode (follow.py), or None
        # Refuse unusable files now, before anything is read.
        for path in self.paths:
            if follow is not None and is_ring(path):
                continue  # a ring buffer's files come and go
            o = open_capture(path, follow)
            self.total_bytes += o.size
            o.release()

    def __iter__(self) -> Iterator[Datagram | Notice]:
        for batch in self._run():
            yield from batch

    def batches(self) -> Iterator[list]:
        """The same items as iterating the reader, in lists (one per buffer read)."""
        return self._run()

    def _files(self) -> Iterator[tuple]:
        """``(path, open file or None, newer)`` for each file to read, in order (see
        follow.py)."""
        for path in self.paths:
            if self.follow is not None and is_ring(path):
                yield from Ring(path, self.follow)
            else:
                yield path, None, None

    def _run(self) -> Iterator[list]:
        if self.follow is None:
            yield from self._read()
            return
        with self.follow.signals():
            yield from self._read()

    def _read(self) -> Iterator[list]:
        self.captures = []
        self.files = []
        self.bytes_read = 0
        self.frame = 0
        self.decoder = Decoder(self.ports, self.verify)
        done = 0
        for path, f, newer in self._files():
            o = open_capture(path, self.follow, newer, f)
            o.started = True
            pending = Pending() if self.verify else None
            take = frame_taker(self.ports, self.decoder, pending)
            walker = (PcapWalker if o.fmt == "pcap" else PcapngWalker)(
                o, self.frame, take, self.decoder, pending)
            cap = {"path": path, "frames": 0, "truncated": False}
            self.captures.append(cap)
            span = FileSpan(path, self.frame)
            self.files.append(span)
            batches = walker.walk(self.chunk_size)
            try:
                if o.notes:
                    yield list(o.notes)
                for batch in batches:
                    self._count(cap, span, walker, done + o.source.raw_pos)
                    if batch:
                        yield batch
            finally:
                self._count(cap, span, walker, done + o.source.raw_pos)
                # a cut final record is not a frame: the next file's first frame takes its
                # number (frames run on as the files' counts add up, see analyzer.framemap)
                span.cut_frame = walker.cut_frame
            done += o.size if not o.stream else o.source.raw_pos
            self.bytes_read = done
        rest = self.decoder.flush()
        if rest:
            yield list(rest)

    def _count(self, cap: dict, span, walker, bytes_read: int) -> None:
        """The walker's counters, read into the reader and the file's entries."""
        cap["frames"] = span.frames = walker.frames
        cap["truncated"] = span.truncated = walker.truncated
        self.frame = walker.frame
        self.bytes_read = bytes_read


def open_captures(paths: list[str], ports: frozenset[int] = DEFAULT_PORTS, *,
                  verify_checksums: bool = True, follow: Follow | None = None) -> CaptureReader:
    """Open capture files (pcap, pcapng, either gzip-compressed; ``-``, pipes and FIFOs too)
    to be read as one capture; with ``follow``, read them as they are written.

    Raises CaptureError naming the first file that cannot be used at all.
    """
    return CaptureReader(paths, ports, verify_checksums=verify_checksums, follow=follow)
