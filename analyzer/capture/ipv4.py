"""IPv4 fragment reassembly with bounded state.

netdump clients set DF and never fragment, so fragments in a netdump capture mean a
middlebox or a different sender; they are rare, and this code favours exact reporting
over speed. Fragments may come in any order and be duplicated. Bytes that overlap an
earlier fragment must be equal: when they differ the first copy is kept and the
conflict is reported. At most ``MAX_SETS`` datagrams are in reassembly at once, each at
most 65535 bytes, and a datagram not completed ``TIMEOUT_NS`` of capture time after its
first fragment is given up and reported.
"""
from __future__ import annotations

import socket
from collections import OrderedDict

from analyzer.anomalies import Kind
from analyzer.datagram import Notice

MAX_SETS = 1024
MAX_BYTES = 65535  # IPv4 total length is 16 bits: no payload may reach past this
TIMEOUT_NS = 30 * 1_000_000_000
MAX_PIECES = 512  # separate byte ranges held for one datagram; more is an attack, not MTU splitting
_MAX_FRAMES_LISTED = 32


def _fmt_frames(frames: list[int], more: int = 0) -> str:
    text = ", ".join(str(f) for f in frames)
    if more:
        text += f" and {more} more"
    return text


def _fmt_ranges(ranges: list[tuple[int, int]]) -> str:
    return ", ".join(f"{a}-{b - 1}" for a, b in ranges)


class _Set:
    __slots__ = ("first_ts", "ts", "frames", "more_frames", "buf", "covered", "total",
                 "ignored", "bad_ip", "link", "ports")

    def __init__(self, ts: int):
        self.first_ts = ts
        self.ts = ts
        self.frames: list[int] = []
        self.more_frames = 0
        self.buf = bytearray()
        self.covered: list[list[int]] = []  # sorted, disjoint [start, end) ranges
        self.total: int | None = None  # payload length, known once the last fragment came
        self.ignored = False  # first fragment showed ports we do not want
        self.bad_ip = False
        self.link = None
        self.ports: tuple[int, int] | None = None

    def missing(self) -> list[tuple[int, int]]:
        out = []
        pos = 0
        for a, b in self.covered:
            if a > pos:
                out.append((pos, a))
            pos = b
        end = self.total if self.total is not None else None
        if end is None:
            out.append((pos, -1))  # end unknown
        elif pos < end:
            out.append((pos, end))
        return out


class Reassembler:
    """Collects fragments keyed by (src, dst, id, protocol)."""

    def __init__(self, ports: frozenset[int], max_sets: int = MAX_SETS, timeout_ns: int = TIMEOUT_NS):
        self.ports = ports
        self.max_sets = max_sets
        self.timeout_ns = timeout_ns
        self.sets: OrderedDict[tuple, _Set] = OrderedDict()

    # -- reporting ------------------------------------------------------------------------

    def _describe(self, key: tuple) -> str:
        src, dst, ident, _proto = key
        return f"IPv4 datagram id 0x{ident:04x} {socket.inet_ntoa(src)} -> {socket.inet_ntoa(dst)}"

    def _give_up(self, key: tuple, s: _Set, why: str) -> Notice | None:
        if s.ignored or not s.frames:
            return None
        parts = []
        for a, b in s.missing():
            parts.append(f"{a}-end (length unknown)" if b < 0 else f"{a}-{b - 1}")
        ports = "" if s.ports is None else f" (UDP {s.ports[0]} -> {s.ports[1]})"
        if s.ports is None:
            ports = " (first fragment not captured, ports unknown)"
        return Notice(
            Kind.IP_FRAGMENTS, s.frames[0],
            f"{self._describe(key)}{ports} never completed ({why}): fragments in frames "
            f"{_fmt_frames(s.frames, s.more_frames)}; missing payload bytes {', '.join(parts)}",
            s.ts,
        )

    def expire(self, now: int) -> list[Notice]:
        """Give up datagrams whose first fragment is older than the timeout."""
        out = []
        limit = now - self.timeout_ns
        sets = self.sets
        while sets:
            key, s = next(iter(sets.items()))
            if s.first_ts >= limit:
                break
            del sets[key]
            n = self._give_up(key, s, "timed out after 30 s")
            if n:
                out.append(n)
        return out

    def flush(self) -> list[Notice]:
        """End of capture: report every datagram still incomplete."""
        out = []
        for key, s in self.sets.items():
            n = self._give_up(key, s, "end of capture")
            if n:
                out.append(n)
        self.sets.clear()
        return out

    # -- input ----------------------------------------------------------------------------

    def add(self, src: bytes, dst: bytes, ident: int, proto: int, offset: int, more: bool,
            data: bytes, frame: int, ts: int, link: object = None, bad_ip: bool = False,
            cut: bool = False):
        """Add one fragment's payload (``offset`` in bytes).

        ``cut`` means the capture lost the fragment's tail, so the datagram can never be
        completed from it. Returns ``(notices, done)``: ``done`` is ``None`` or
        ``(payload, frames, more_frames, link, bad_ip)`` for a completed datagram
        (``frames`` lists the first fragments' frame numbers, ``more_frames`` counts the rest).
        """
        notices = self.expire(ts)
        key = (src, dst, ident, proto)
        sets = self.sets
        s = sets.get(key)
        if s is None:
            if len(sets) >= self.max_sets:
                old_key, old = sets.popitem(last=False)
                n = self._give_up(old_key, old, f"reassembly table full ({self.max_sets} datagrams)")
                if n:
                    notices.append(n)
            s = sets[key] = _Set(ts)
        if s.ignored:
            return notices, None
        s.ts = ts
        if len(s.frames) < _MAX_FRAMES_LISTED:
            s.frames.append(frame)
        else:
            s.more_frames += 1
        s.bad_ip |= bad_ip
        s.link = link
        end = offset + len(data)
        if end > MAX_BYTES:
            notices.append(Notice(
                Kind.IP_FRAGMENTS, frame,
                f"{self._describe(key)}: fragment at offset {offset} ends at byte {end}, "
                f"beyond the IPv4 maximum of {MAX_BYTES}; fragment dropped", ts))
            return notices, None
        if offset == 0 and len(data) >= 4 and s.ports is None:
            sport = data[0] << 8 | data[1]
            dport = data[2] << 8 | data[3]
            s.ports = (sport, dport)
            if proto == 17 and sport not in self.ports and dport not in self.ports:
                s.ignored = True  # not ours: drop what we hold, ignore the rest
                s.buf = bytearray()
                s.covered = []
                return notices, None
        if not more and not cut:
            if s.total is None:
                if s.covered and s.covered[-1][1] > end:
                    notices.append(Notice(
                        Kind.IP_FRAGMENTS, frame,
                        f"{self._describe(key)}: last fragment ends at byte {end} but earlier "
                        f"fragments reach byte {s.covered[-1][1]}; extra bytes ignored", ts))
                s.total = end
            elif s.total != end:
                notices.append(Notice(
                    Kind.IP_FRAGMENTS, frame,
                    f"{self._describe(key)}: last fragment says the datagram is {end} bytes, "
                    f"an earlier one said {s.total}; first kept", ts))
        if s.total is not None and end > s.total:
            data = data[: max(0, s.total - offset)]
            end = offset + len(data)
        if data and len(s.covered) >= MAX_PIECES:
            n = self._give_up(key, s, f"more than {MAX_PIECES} separate pieces")
            if n:
                notices.append(n)
            s.ignored = True
            s.buf = bytearray()
            s.covered = []
            return notices, None
        if data:
            conflict = self._merge(s, offset, end, data)
            if conflict:
                notices.append(Notice(
                    Kind.IP_FRAGMENTS, frame,
                    f"{self._describe(key)}: fragment in frame {frame} overlaps earlier fragments "
                    f"(frames {_fmt_frames(s.frames[:-1], s.more_frames)}) with different bytes at "
                    f"payload bytes {_fmt_ranges(conflict)}; the first copy is kept", ts))
        if s.total is not None and len(s.covered) == 1 and s.covered[0] == [0, s.total]:
            del sets[key]
            payload = bytes(s.buf[: s.total])
            frames = s.frames
            return notices, (payload, frames, s.more_frames, s.link, s.bad_ip)
        return notices, None

    @staticmethod
    def _merge(s: _Set, start: int, end: int, data: bytes) -> list[tuple[int, int]]:
        """Copy the uncovered parts of [start, end) into the buffer; return differing overlaps."""
        buf = s.buf
        if len(buf) < end:
            buf.extend(bytes(end - len(buf)))
        conflicts: list[tuple[int, int]] = []
        new_cov: list[list[int]] = []
        pos = start  # first byte of [start, end) not yet placed
        lo, hi = start, end
        for a, b in s.covered:
            if b < start or a > end:  # disjoint and not adjacent
                new_cov.append([a, b])
                continue
            # overlapping or adjacent range: compare the overlap, fill the gap before it
            oa, ob = max(a, start), min(b, end)
            if oa > pos:
                buf[pos:oa] = data[pos - start: oa - start]
            if ob > oa:
                old, new = buf[oa:ob], data[oa - start: ob - start]
                if old != new:  # report from the first to the last differing byte
                    i = 0
                    while old[i] == new[i]:
                        i += 1
                    j = len(old)
                    while old[j - 1] == new[j - 1]:
                        j -= 1
                    conflicts.append((oa + i, oa + j))
            pos = max(pos, ob)
            lo, hi = min(lo, a), max(hi, b)
        if pos < end:
            buf[pos:end] = data[pos - start:]
        new_cov.append([lo, hi])
        new_cov.sort()
        s.covered = new_cov
        return conflicts
