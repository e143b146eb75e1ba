"""A background thread for the bulk work of a run: SHA-256 updates and file writes.

Both release the GIL on large buffers, so on a machine with two cores they run beside the
parsing instead of after it. Work is done strictly in the order it was submitted (one
thread, one queue); the bytes in flight are bounded, so memory stays flat. An error raised by
the work (a full disk, say) is raised again in the submitting thread at its next call.
"""
from __future__ import annotations

import threading
from collections import deque

MAX_IN_FLIGHT = 12 << 20  # bytes submitted and not yet done


class Offload:
    def __init__(self, max_bytes: int = MAX_IN_FLIGHT):
        self.max_bytes = max_bytes
        self._jobs: deque = deque()
        self._bytes = 0
        self._busy = False
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._failed = False  # once a job failed, later ones are skipped
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, size: int, fn, *args) -> None:
        """Run ``fn(*args)`` in the background; ``size`` is the bytes it holds on to."""
        cond = self._cond
        with cond:
            self._raise()
            while self._bytes and self._bytes + size > self.max_bytes:
                cond.wait()
                self._raise()
            self._jobs.append((size, fn, args))
            self._bytes += size
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="netdump-offload",
                                                daemon=True)
                self._thread.start()
            cond.notify_all()

    def wait(self) -> None:
        """Return once everything submitted is done (raising its error, if any)."""
        self.settle()
        with self._cond:
            self._raise()

    def settle(self) -> None:
        """Wait for everything submitted, keeping any error for the next call."""
        cond = self._cond
        with cond:
            while self._jobs or self._busy:
                cond.wait()

    def close(self) -> None:
        """Finish the work and stop the thread (errors are raised, as by wait)."""
        try:
            self.wait()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
                self._closed = False

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._jobs and not self._closed:
                    cond.wait()
                if not self._jobs:
                    return
                size, fn, args = self._jobs.popleft()
                self._busy = True
            try:
                if not self._failed:
                    fn(*args)
            except BaseException as exc:  # handed to the submitter
                self._failed = True
                self._error = exc
            finally:
                with cond:
                    self._busy = False
                    self._bytes -= size
                    cond.notify_all()
