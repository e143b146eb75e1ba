"""Bounded point series for the audit's plots, gathered while the capture streams by.

VMCORE first captured copies, ACKs, RTTs and burst durations are decimated to per-time-bucket
min/max (see :class:`~analyzer.audit.stats.Decimator`); every retransmission is kept up to
a cap. The series count what the audit's table counts: a resend that is the first copy
the capture shows is in both. Non-VMCORE messages (HERALD, KDH, key, FINISHED) are kept as markers, also capped.
"""
from __future__ import annotations

from analyzer.audit.stats import CappedPoints, Decimator

VMCORE = 3
MAX_MARKERS = 1000


class PlotData:
    __slots__ = ("tx", "retx", "acks", "rtts", "burst_time", "burst_retx", "markers",
                 "markers_dropped")

    def __init__(self) -> None:
        self.tx = Decimator()
        self.retx = CappedPoints()
        self.acks = Decimator()
        self.rtts = Decimator()
        self.burst_time = Decimator()
        self.burst_retx = CappedPoints(5000)
        self.markers: list[tuple[int, int, bool]] = []  # (ts, type, retransmission)
        self.markers_dropped = 0

    def _marker(self, ts: int, mtype: int, resend: bool) -> None:
        if len(self.markers) < MAX_MARKERS:
            self.markers.append((ts, mtype, resend))
        else:
            self.markers_dropped += 1

    def first(self, ts: int, mtype: int, offset: int) -> None:
        if mtype == VMCORE:
            self.tx.add(ts, offset)
        else:
            self._marker(ts, mtype, False)

    def resend(self, ts: int, mtype: int, offset: int) -> None:
        if mtype == VMCORE:
            self.retx.add(ts, offset)
        else:
            self._marker(ts, mtype, True)

    def ack(self, ts: int, mtype: int, offset: int) -> None:
        if mtype == VMCORE:
            self.acks.add(ts, offset)

    def rtt(self, ts: int, rtt: int) -> None:
        self.rtts.add(ts, rtt)

    def burst(self, b, took: int) -> None:
        self.burst_time.add(b.start_ts, took)
        if b.rounds:
            self.burst_retx.add(b.start_ts, (took, b.rounds))
