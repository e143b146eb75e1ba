"""Follow mode: captures read while they are written (``--follow``, ``--idle``).

A followed file is read as ``tail -f`` reads it: at its current end the read waits for more
instead of ending, so a record still being written is not taken as cut. A directory or a glob
is a ring buffer (``dumpcap -b``, ``tcpdump -C/-G``): its files are read in name order, and a
file is finished once a newer one has appeared (the writer has moved on). Following ends on
SIGINT or SIGTERM, or after ``idle`` seconds without new data; ending it is the normal end
of the run, not an interruption.
"""
from __future__ import annotations

import glob
import os
import signal
import threading
import time
from contextlib import contextmanager

POLL = 0.02  # seconds between looks at a file that has not grown (or a ring for new files)


class Follow:
    """One run's follow state: when to stop waiting, shared by all its files."""

    def __init__(self, idle: float | None = None):
        self.idle = idle
        self.stopped = False  # a signal asked to stop
        self.last_data = time.monotonic()

    def seen(self) -> None:
        self.last_data = time.monotonic()

    def should_stop(self) -> bool:
        if self.stopped:
            return True
        return self.idle is not None and time.monotonic() - self.last_data >= self.idle

    @contextmanager
    def signals(self):
        """SIGINT and SIGTERM end following (in the main thread; elsewhere they are left)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(_signum, _frame):
            self.stopped = True

        old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


class GrowingFile:
    """A regular file read while it grows: at its end a read waits (``POLL`` at a time) until
    more is written, following stops, or ``newer()`` says the writer has gone on to another
    file; then what is left is read and the end is the end. ``newer`` is also called now and
    then while data flows, so that a ring buffer's new files are opened before it drops them."""

    def __init__(self, f, follow: Follow, newer=None):
        self.f = f
        self.follow = follow
        self.newer = newer
        self._looked = 0.0

    def read(self, n: int) -> bytes:
        follow = self.follow
        while True:
            data = self.f.read(n)
            if data:
                follow.seen()
                if self.newer is not None and time.monotonic() - self._looked > POLL:
                    self._looked = time.monotonic()
                    self.newer()
                return data
            if follow.should_stop() or (self.newer is not None and self.newer()):
                return self.f.read(n)  # what came meanwhile, or the end
            time.sleep(POLL)

    def fileno(self) -> int:
        return self.f.fileno()

    def close(self) -> None:
        self.f.close()


def is_ring(path: str) -> bool:
    """A directory or a glob pattern: a ring buffer in follow mode."""
    return os.path.isdir(path) or glob.has_magic(path)


def ring_files(spec: str) -> list[str]:
    """The ring buffer's files now, in name order (dumpcap's names sort by their number)."""
    if os.path.isdir(spec):
        try:
            names = [os.path.join(spec, n) for n in os.listdir(spec) if not n.startswith(".")]
        except OSError:
            return []
    else:
        names = glob.glob(spec)
    return sorted(n for n in names if os.path.isfile(n))


class Ring:
    """A ring buffer's files in name order, each opened as soon as it is seen (an open file
    stays readable when the ring buffer deletes it). Iterating gives ``(path, file, newer)``
    and waits for the next file to appear; it ends when following stops."""

    def __init__(self, spec: str, follow: Follow):
        self.spec = spec
        self.follow = follow
        self.last = ""  # the newest name seen
        self.waiting: list = []  # (path, open file), in name order, not yet handed on

    def scan(self) -> bool:
        """Open the files that appeared since the last look; True when some are waiting."""
        for path in ring_files(self.spec):
            if path > self.last:
                try:
                    self.waiting.append((path, open(path, "rb", buffering=0)))
                except OSError:
                    pass  # gone already: the ring buffer turned faster than we looked
                self.last = path
        return bool(self.waiting)

    def __iter__(self):
        try:
            while True:
                if self.waiting or self.scan():
                    path, f = self.waiting.pop(0)
                    yield path, f, self.scan
                    continue
                if self.follow.should_stop():
                    return
                time.sleep(POLL)
        finally:
            for _path, f in self.waiting:
                f.close()
