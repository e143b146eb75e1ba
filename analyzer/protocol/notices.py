"""Capture notices in the core: which session each one hurts.

A reader's notice (a cut file, a snap-length cut, ICMP port-unreachable...) names a frame,
not a session. A notice about the frame of the datagram just taken goes to that datagram's
session; one about a frame not yet seen waits for its datagram; a cut file goes to every
dump still in flight; the rest belong to the capture.
"""
from __future__ import annotations

import socket

from analyzer.anomalies import Kind
from analyzer.datagram import Notice, Unreachable
from analyzer.protocol.events import Anomaly
from analyzer.protocol.state import FINISHED_SEEN, IN_FLIGHT
from analyzer.protocol.table import SessionTable
from analyzer.wire import CLIENT_PORT


class Attribution:
    """The last datagram's frame and session, the notices waiting for theirs, and the
    frame a cut file ends inside (its lost bytes are the cut's, not a snap length's)."""

    __slots__ = ("last_frame", "last_sid", "pending", "cut_frame")

    def __init__(self):
        self.last_frame = 0
        self.last_sid: int | None = None
        self.pending: list[Notice] = []
        self.cut_frame = 0

    def notice(self, n, table: SessionTable) -> list:
        events: list = []
        if type(n) is Unreachable:
            self._unreachable(n, table, events)
            return events
        if n.kind == Kind.TRUNCATED_CAPTURE:
            self.cut_frame = n.frame
            # The dumps in flight when the file was cut are the ones it hurts.
            hit = [s.id for s in table.all() if s.state in IN_FLIGHT]
            for sid in hit:
                events.append(Anomaly(sid, n.kind, n.frame, n.detail))
            if not hit:
                events.append(Anomaly(None, n.kind, n.frame, n.detail))
        elif n.frame and n.frame == self.last_frame and self.last_sid is not None:
            events.append(Anomaly(self.last_sid, n.kind, n.frame, n.detail))
        else:
            self.pending.append(n)
        return events

    @staticmethod
    def _unreachable(n: Unreachable, table: SessionTable, events: list) -> None:
        """ICMP port-unreachable for a client's datagram: the server port was closed. After
        FINISHED this means netdumpd closed the session and the FINISHED ACK was lost."""
        s = table.sessions.get(n.orig_src) if n.orig_sport == CLIENT_PORT else None
        if s is None:
            twins = table.twins.get(n.orig_src)
            s = twins[0] if twins else None
        port = n.orig_dport
        if s is not None and s.state in FINISHED_SEEN:
            detail = (f"ICMP port unreachable for the client's datagram to port {port} after "
                      "FINISHED: the server had closed the session, so its FINISHED ACK was "
                      "lost on the way to the client")
        else:
            detail = (f"ICMP port unreachable from {socket.inet_ntoa(n.src)}: nothing listens "
                      f"on port {port} for {socket.inet_ntoa(n.orig_src)}:{n.orig_sport}")
        events.append(Anomaly(s.id if s is not None else None, Kind.ICMP_UNREACHABLE, n.frame,
                              detail))

    def flush(self, frame: int | None, events: list) -> None:
        """Notices not about ``frame`` belong to the capture (``None``: all of them)."""
        keep = []
        for n in self.pending:
            if frame is not None and n.frame == frame:
                keep.append(n)  # attributed once this datagram's session is known
            else:
                events.append(Anomaly(None, n.kind, n.frame, n.detail))
        self.pending = keep

    def taken(self, frame: int, sid: int | None, events: list) -> None:
        """The datagram of ``frame`` went to session ``sid``: so do the notices about it."""
        self.last_frame = frame
        self.last_sid = sid
        if self.pending:
            for n in self.pending:
                events.append(Anomaly(sid, n.kind, n.frame, n.detail))
            self.pending = []
