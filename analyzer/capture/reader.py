"""Several capture files read as one capture."""
from __future__ import annotations

import os
import time
from typing import Iterable, Iterator

from analyzer.capture import speedups
from analyzer.capture.checksums import Helper
from analyzer.capture.decode import Decoder
from analyzer.capture.fileformat import open_capture
from analyzer.capture.pcap import walk_pcap
from analyzer.capture.pcapng import walk_pcapng
from analyzer.datagram import Datagram, Notice

DEFAULT_PORTS = frozenset({20023, 20024})
CHUNK = 4 * 1024 * 1024  # bytes of capture read at a time (a batch)
HELPER_MIN_SIZE = 64 << 20  # smaller files verify their checksums in-process


class CaptureReader:
    """Iterates the netdump-port UDP datagrams (and notices) of capture files, in order.

    ``captures`` holds one dict per file opened so far ({"path", "frames", "truncated"});
    ``bytes_read``/``total_bytes`` count bytes of the files on disk, for progress.
    """

    def __init__(self, paths: Iterable[str], ports: Iterable[int] = DEFAULT_PORTS,
                 verify_checksums: bool = True, chunk_size: int = CHUNK,
                 checksum_helper: bool | None = None, compiled: bool = True):
        self.paths = [str(p) for p in paths]
        self.ports = frozenset(ports)
        # the compiled walker loops, when built and not refused (see capture.speedups)
        self.compiled = speedups.compiled if compiled else None
        self.port_bitmap = speedups.port_bitmap(self.ports)
        self.verify = verify_checksums
        # Verify full-size datagrams in a helper process (plain files only): None decides
        # by file size, True/False force it (see analyzer.capture.checksums).
        if checksum_helper is None and os.environ.get("NETDUMP_CHECKSUM_HELPER") in ("0", "1"):
            checksum_helper = os.environ["NETDUMP_CHECKSUM_HELPER"] == "1"  # for test runs
        self.checksum_helper = checksum_helper
        self.checks: list | None = None  # positions the walker notes for the helper
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

    def _walk_checked(self, walk, o, cap) -> Iterator[list]:
        """Walk with the checksums done by the helper: a batch is handed on once its
        verdicts are in, which is while the next buffer is being parsed."""
        helper = Helper(o.path)
        self.checks = checks = []
        pending = None
        try:
            for batch in walk(self, o, cap):
                helper.send(checks[:])
                checks.clear()
                if pending is not None:
                    yield _mark_bad(pending, helper.receive())
                pending = batch
            if pending is not None:
                yield _mark_bad(pending, helper.receive())
        finally:
            self.checks = None
            helper.close()

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
            use = self.checksum_helper
            if use is None:  # the compiled loops verify faster than the helper could
                use = self.compiled is None and o.size >= HELPER_MIN_SIZE and _spare_core()
            if not (self.verify and use and not o.compressed):
                for batch in walk(self, o, cap):
                    if batch:
                        yield batch
            else:
                yield from self._walk_checked(walk, o, cap)
            done += o.size
            self.bytes_read = done
        rest = self.decoder.flush()
        if rest:
            yield list(rest)


def _spare_core() -> bool:
    """True when another CPU looks idle: the helper pays only when it runs beside us (on a
    busy machine it just adds its own work to ours). Runnable tasks right now, from
    /proc/loadavg (ourselves included), a few samples; else the 1-minute load average."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return False
    if cpus < 2:
        return False
    try:
        busiest = 0
        for k in range(3):
            if k:
                time.sleep(0.002)
            with open("/proc/loadavg") as f:
                busiest = max(busiest, int(f.read().split()[3].split("/")[0]))
        return busiest <= cpus - 1
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0] <= cpus - 1.5
    except OSError:
        return False


def _mark_bad(batch: list, bad: list) -> list:
    for i in bad:
        batch[i] = batch[i]._replace(bad_checksum=True)
    return batch


def open_captures(paths: list[str], ports: frozenset[int] = DEFAULT_PORTS, *,
                  verify_checksums: bool = True) -> CaptureReader:
    """Open capture files (pcap, pcapng, either gzip-compressed) to be read as one capture.

    Raises CaptureError naming the first file that cannot be used at all.
    """
    return CaptureReader(paths, ports, verify_checksums=verify_checksums)
