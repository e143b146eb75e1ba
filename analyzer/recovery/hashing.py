"""SHA-256 of a dump file computed while it streams by, without reading it back.

Data arrives almost in order: a small reorder buffer absorbs the retransmissions that fill
holes inside the burst in flight. The last block is held back because a compressed dump is
truncated to the KDH's dumplength only at the end. When order cannot be restored within the
bounds (a real hole, a conflicting rewrite of hashed bytes) the digest is given up, and the
file writer, which has the bytes on disk, hashes the file instead.
"""
from __future__ import annotations

import hashlib

HOLDBACK = 4096  # bytes kept unhashed at the end: the padded final block of a compressed dump
FLUSH = 256 << 10  # contiguous bytes gathered before one hash update
MAX_PENDING = 32 << 20  # out-of-order bytes held before giving up


class StreamingHash:
    """``offload``: an :class:`~analyzer.recovery.offload.Offload` to run the SHA-256 updates
    on (they release the GIL), or None to run them here."""

    __slots__ = ("_sha", "pos", "_tail", "_tail_bytes", "_pending", "_pending_bytes", "valid",
                 "_offload")

    def __init__(self, offload=None) -> None:
        self._offload = offload
        self._sha = hashlib.sha256()
        self.pos = 0  # end of the contiguous prefix received (hashed + tail)
        self._tail: list[bytes] = []  # contiguous chunks not hashed yet
        self._tail_bytes = 0
        self._pending: dict[int, bytes] = {}
        self._pending_bytes = 0
        self.valid = True

    def feed(self, offset: int, data: bytes, conflict: bool = False) -> None:
        if not self.valid or not data:
            return
        pos = self.pos
        if offset == pos:
            self._append(data)
            if self._pending:
                self._drain()
        elif offset > pos:
            old = self._pending.get(offset)
            if old is None or len(old) <= len(data):
                self._pending[offset] = data
                self._pending_bytes += len(data) - (len(old) if old else 0)
                if self._pending_bytes > MAX_PENDING:
                    self._give_up()
        elif conflict:
            # Bytes already taken in differ from this later copy, which is the one kept.
            start = pos - self._tail_bytes
            if offset >= start and offset + len(data) <= pos:
                tail = b"".join(self._tail)
                i = offset - start
                self._tail = [tail[:i] + data + tail[i + len(data):]]
            else:
                self._give_up()
        elif offset + len(data) > pos:
            self.feed(pos, data[pos - offset:])  # a longer copy that reaches past the prefix

    def _append(self, data: bytes) -> None:
        tail = self._tail
        n = len(data)
        self.pos += n
        if self._tail_bytes + n < FLUSH:
            tail.append(data)
            self._tail_bytes += n
            return
        # Hash all but the last HOLDBACK bytes; a large chunk is hashed in place, not copied.
        if n >= HOLDBACK:
            if tail:
                self._update(b"".join(tail) if len(tail) > 1 else tail[0])
            self._update(memoryview(data)[:n - HOLDBACK])
            self._tail = [data[n - HOLDBACK:]]
        else:
            tail.append(data)
            joined = b"".join(tail)
            cut = len(joined) - HOLDBACK
            self._update(memoryview(joined)[:cut])
            self._tail = [joined[cut:]]
        self._tail_bytes = HOLDBACK

    def _update(self, data) -> None:
        if self._offload is not None:
            self._offload.submit(len(data), self._sha.update, data)
        else:
            self._sha.update(data)

    def _drain(self) -> None:
        pending = self._pending
        while True:
            data = pending.pop(self.pos, None)
            if data is None:
                # A pending chunk may start inside the prefix (overlapping resend sizes).
                for off in [o for o in pending if o < self.pos]:
                    chunk = pending.pop(off)
                    self._pending_bytes -= len(chunk)
                    if off + len(chunk) > self.pos:
                        pending[self.pos] = chunk[self.pos - off:]
                        self._pending_bytes += len(pending[self.pos])
                if self.pos not in pending:
                    return
                continue
            self._pending_bytes -= len(data)
            self._append(data)

    def _give_up(self) -> None:
        self.valid = False
        self._pending.clear()
        self._tail = []
        self._tail_bytes = 0

    def digest(self, length: int) -> str | None:
        """Hex digest of the first ``length`` bytes, or None when they did not all stream by."""
        if not self.valid or length > self.pos or length < self.pos - self._tail_bytes:
            return None
        if self._offload is not None:
            self._offload.wait()
        sha = self._sha.copy()
        sha.update(b"".join(self._tail)[: self._tail_bytes - (self.pos - length)])
        return sha.hexdigest()
