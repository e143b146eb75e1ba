"""The union of the views: one datagram per transmission, in client-send order.

The views are read side by side, merged by their clocks made the reference's (a bounded
window: captures of one transfer are simultaneous). A copy joins the open record of the same
key (see :func:`~analyzer.merge.views.match_key`) that its view has not filled yet and that
began less than MATCH_NS before it; a second copy of a key in one view within DUP_NS is a
network duplicate of that transmission. A record is handed on once nothing can join it any
more, as the copy nearest the server (what netdumpd got), complete and with good checksums
preferred, under a frame number of the union, stamped with its earliest time, with the link
identity (MAC, VLAN tags) the view nearest the server shows for that host (a mirror port's
tags and MACs are not the server host's): the core then keys clients as it does for one
capture (two hosts on one address, one address on two VLANs stay apart). Views whose
complete copies disagree on bytes cost a ``vantage-conflict`` notice naming both frames.

Each view's own items also go through a coverage-only analysis of their own (the unchanged
core and recovery), for the view's own missing ranges.
"""
from __future__ import annotations

import heapq
from collections import deque

from analyzer.anomalies import Kind
from analyzer.datagram import Datagram, Notice
from analyzer.merge.frames import UnionFrames
from analyzer.merge.views import View, match_key
from analyzer.pipeline import Analysis
from analyzer.wire import MSG_HDR

MATCH_NS = 50_000_000  # copies of one transmission in two views are closer than this
DUP_NS = 50_000_000  # a second copy in one view this soon is a network duplicate
BATCH = 4096
MAX_NOTICES = 1000
_HDR = MSG_HDR.struct


class _Record:
    __slots__ = ("t", "key", "copies", "mask", "dups")

    def __init__(self, t: int, key: tuple, view: int, item):
        self.t = t
        self.key = key
        self.copies = [(view, t, item)]  # (view, time on the reference clock, item)
        self.mask = 1 << view
        self.dups = 0


def _quality(item) -> tuple:
    if type(item) is not Datagram:
        return (1, 0)
    return (not item.bad_checksum and not item.missing, -item.missing)


class UnionSource:
    """The merged stream, read like a capture reader (``batches()``, byte counts).

    ``seen`` maps the union frames of the batch last handed out (and ``seen_before`` of the
    one before) to (views bitmask, network duplicates folded in, view of the copy kept, its
    frame in that view), for sinks that say which views saw what; ``frames`` places every
    union frame in its file.
    """

    def __init__(self, views: list[View], order: list[View], max_dump_size: int):
        self.views = views
        self.rank = {v.index: r for r, v in enumerate(order)}
        self.side = [Analysis(None, max_dump_size) for _ in views]
        for side in self.side:
            side.recovery.on_start = _coverage_only
        self.notices: list[dict] = []
        self.notices_dropped = 0
        self.seen: dict[int, tuple] = {}
        self.seen_before: dict[int, tuple] = {}
        self.frame = 0
        self.first_ts = None  # reference time of the union's first datagram
        self.frames = UnionFrames(views)
        self.top = order[-1].index  # the view nearest the server: its link layer is kept
        self.links: dict = {}  # (view, its link) or (view, src, dst) -> the top view's link
        self.total_bytes = sum(v.reader.total_bytes for v in views)

    @property
    def bytes_read(self) -> int:
        return sum(v.reader.bytes_read for v in self.views)

    def _stream(self, view: View):
        """(reference time, view, n, item) of one view, its batches also fed to its own
        coverage analysis."""
        side = self.side[view.index]
        a, b, tz = view.clock.a, view.clock.b, view.clock.tz  # Clock.to_ref, inline
        last = 0
        n = 0
        for batch in view.reader.batches():
            side.run_batches((batch,))
            for item in batch:
                n += 1
                if type(item) is not Notice:
                    last = int((item.ts - a + b * tz) / (1 + b))
                yield last, view.index, n, item

    def batches(self):
        open_by_key: dict[tuple, list[_Record]] = {}
        pending: deque[_Record] = deque()
        out: list = []
        emit = self._emit
        merged = heapq.merge(*(self._stream(v) for v in self.views))
        for t, vi, _n, item in merged:
            while pending and pending[0].t + MATCH_NS < t:
                emit(pending.popleft(), open_by_key, out)
            key = match_key(item)
            if key is None:
                self._notice(self.views[vi], item)
                continue
            bit = 1 << vi
            recs = open_by_key.get(key)
            if recs is None:
                recs = open_by_key[key] = []
            else:
                for r in recs:
                    if not r.mask & bit and t - r.t <= MATCH_NS:
                        r.copies.append((vi, t, item))
                        r.mask |= bit
                        break
                else:
                    last = recs[-1]
                    if last.mask & bit and t - _when(last, vi) < DUP_NS:
                        last.dups += 1
                    else:
                        recs = None
                if recs is not None:
                    continue
                recs = open_by_key[key]
            r = _Record(t, key, vi, item)
            recs.append(r)
            pending.append(r)
            if len(out) >= BATCH:
                yield out
                out = []
                self.seen_before, self.seen = self.seen, {}
        while pending:
            emit(pending.popleft(), open_by_key, out)
        if out:
            yield out

    def _emit(self, rec: _Record, open_by_key: dict, out: list) -> None:
        recs = open_by_key[rec.key]
        recs.remove(rec)
        if not recs:
            del open_by_key[rec.key]
        self.frame += 1
        frame = self.frame
        if frame == 1:
            self.first_ts = rec.t
        copies = rec.copies
        if len(copies) == 1:
            vi, _t, item = copies[0]
        else:
            rank = self.rank
            vi, _t, item = max(copies, key=lambda c: (_quality(c[2]), rank[c[0]]))
        if len(copies) > 1 and type(item) is Datagram and _quality(item)[0]:
            for vj, _t, other in rec.copies:
                if vj != vi and _quality(other)[0] and other.payload != item.payload:
                    out.append(Notice(Kind.VANTAGE_CONFLICT, frame, self._conflict(
                        item, self.views[vi], self.views[vj], other)))
        if type(item) is Datagram and item.link is not None:
            out.append(item._replace(frame=frame, ts=rec.t, link=self._link(rec, vi, item)))
        else:
            out.append(item._replace(frame=frame, ts=rec.t))
        self.seen[frame] = (rec.mask, rec.dups, vi, item.frame)
        self.frames.add(frame, vi, item.frame)

    def _link(self, rec: _Record, vi: int, item: Datagram):
        """The link identity (MAC, VLAN tags) the core keys hosts by, as the view nearest the
        server shows it: views differ in link layers (a mirror's extra tags, its MACs), and
        one host must look the same in the union whichever view's copy is kept. Learned from
        the transmissions both views saw; else the last one learned for those addresses."""
        top, links = self.top, self.links
        canon = next((it.link for vj, _t, it in rec.copies if vj == top), None)
        if canon is not None:
            for vj, _t, it in rec.copies:
                if vj != top and type(it) is Datagram and it.link is not None:
                    links[(vj, it.link)] = canon
                    links[(vj, it.src, it.dst)] = canon
            return canon
        got = links.get((vi, item.link))
        if got is None:
            got = links.get((vi, item.src, item.dst))
        return got

    @staticmethod
    def _conflict(kept, view: View, other_view: View, other) -> str:
        where = ""
        if len(kept.payload) >= _HDR.size:
            _t, seqno, offset, _l, _a = _HDR.unpack_from(kept.payload)
            where = f"seq {seqno} at offset {offset}: "
        return (f"{where}{other_view.where(other.frame)} differs from "
                f"{view.where(kept.frame)}; the copy nearer the server is kept")

    def _notice(self, view: View, n) -> None:
        if len(self.notices) >= MAX_NOTICES:
            self.notices_dropped += 1
            return
        path, frame = view.locate(n.frame)
        self.notices.append({"kind": n.kind, "frame": frame, "detail": view.retext(n.detail),
                             "file": path, "capture": view.name})

    def finish(self) -> None:
        for side in self.side:
            side.finish()


def _coverage_only(rec) -> None:
    """A view's own analysis is wanted for its missing ranges only: no SHA-256, whose reorder
    buffer would hold up to 32 MiB of each view's bytes behind the holes the view has."""
    rec.vmcore_hash.valid = False


def _when(rec: _Record, view: int) -> int:
    """Reference time of a record's copy from one view."""
    for vi, t, _item in rec.copies:
        if vi == view:
            return t
    return rec.t
