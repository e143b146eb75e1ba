"""Several capture files read as one capture."""
from __future__ import annotations

from typing import Iterable, Iterator

from analyzer.capture.decode import Decoder
from analyzer.capture.fileformat import open_capture
from analyzer.capture.pcap import walk_pcap
from analyzer.capture.pcapng import walk_pcapng
from analyzer.datagram import Datagram, Notice

DEFAULT_PORTS = frozenset({20023, 20024})
CHUNK = 8 * 1024 * 1024  # bytes of capture read at a time


class CaptureReader:
    """Iterates the netdump-port UDP datagrams (and notices) of capture files, in order.

    ``captures`` holds one dict per file opened so far ({"path", "frames", "truncated"});
    ``bytes_read``/``total_bytes`` count bytes of the files on disk, for progress.
    """

    def __init__(self, paths: Iterable[str], ports: Iterable[int] = DEFAULT_PORTS,
                 verify_checksums: bool = True, chunk_size: int = CHUNK):
        self.paths = [str(p) for p in paths]
        self.ports = frozenset(ports)
        self.verify = verify_checksums
        self.chunk_size = max(4096, int(chunk_size))
        self.captures: list[dict] = []
        self.bytes_read = 0
        self.total_bytes = 0
        self.frame = 0
        self.decoder = Decoder(self.ports, self.verify)
        # Refuse unusable files now, before anything is read.
        for path in self.paths:
            o = open_capture(path)
            self.total_bytes += o.size
            o.close()

    def __iter__(self) -> Iterator[Datagram | Notice]:
        for batch in self._run():
            yield from batch

    def batches(self) -> Iterator[list]:
        """The same items as iterating the reader, in lists (one per buffer read)."""
        return self._run()

    def _run(self) -> Iterator[list]:
        self.captures = []
        self.bytes_read = 0
        self.frame = 0
        self.decoder = Decoder(self.ports, self.verify)
        done = 0
        for path in self.paths:
            o = open_capture(path)
            cap = {"path": path, "frames": 0, "truncated": False}
            self.captures.append(cap)
            walk = walk_pcap if o.fmt == "pcap" else walk_pcapng
            for batch in walk(self, o, cap):
                if batch:
                    yield batch
            done += o.size
            self.bytes_read = done
        rest = self.decoder.flush()
        if rest:
            yield list(rest)


def open_captures(paths: list[str], ports: frozenset[int] = DEFAULT_PORTS, *,
                  verify_checksums: bool = True) -> CaptureReader:
    """Open capture files (pcap, pcapng, either gzip-compressed) to be read as one capture.

    Raises CaptureError naming the first file that cannot be used at all.
    """
    return CaptureReader(paths, ports, verify_checksums=verify_checksums)
