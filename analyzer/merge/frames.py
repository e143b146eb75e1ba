"""Frame references of a ``--merge`` report: each union frame the report names becomes the
file and frame (as Wireshark numbers them) of the copy the union kept.

The union numbers its datagrams on from 1 for the core; a sink remembers, for the frames a
report can name (a session's first, last and FINISHED frames, anomalies), which view's copy
that was, so memory stays bounded by what the report holds.
"""
from __future__ import annotations

from analyzer.protocol.events import Ack, Anomaly, Message, SessionStarted
from analyzer.wire import MsgType

MAX_KEPT = 100_000  # anomaly frames remembered (the recovery keeps 1000 per dump)


class UnionFrames:
    """A sink (``handle(events)``) and a frame map (``locate(frame)``) in one."""

    def __init__(self, source, views):
        self.source = source
        self.views = views
        self.kept: dict[int, tuple[int, int]] = {}  # union frame -> (view, frame in it)
        self.last: dict[int, tuple[int, tuple[int, int]]] = {}  # session -> its last frame

    def _where(self, frame: int):
        info = self.source.seen.get(frame) or self.source.seen_before.get(frame)
        return None if info is None else (info[2], info[3])

    def handle(self, events: list) -> None:
        kept = self.kept
        for ev in events:
            kind = type(ev)
            if kind is Message or kind is Ack:
                where = self._where(ev.frame)
                if where is not None:
                    self.last[ev.session] = (ev.frame, where)
                    if kind is Message and ev.type == MsgType.FINISHED and len(kept) < MAX_KEPT:
                        kept.setdefault(ev.frame, where)
            elif (kind is SessionStarted or kind is Anomaly) and ev.frame \
                    and len(kept) < MAX_KEPT:
                where = self._where(ev.frame)
                if where is not None:
                    kept[ev.frame] = where

    def locate(self, frame: int) -> tuple[str | None, int]:
        if frame <= 0:
            return None, frame
        where = self.kept.get(frame)
        if where is None:
            where = next((w for f, w in self.last.values() if f == frame), None)
        if where is None:
            return None, frame
        view, n = where
        return self.views[view].locate(n)
