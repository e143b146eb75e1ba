"""The audit as a pipeline sink: protocol events in, one :class:`SessionAudit` per dump."""
from __future__ import annotations

import sys

from analyzer.anomalies import Kind
from analyzer.audit.session import SessionAudit
from analyzer.exits import Failure
from analyzer.protocol.events import (
    Ack, Anomaly, Message, ServerPort, SessionEnded, SessionStarted,
)


class AuditSink:
    """``handle(events)`` / ``close()`` as :class:`analyzer.pipeline.Analysis` expects.

    ``plot`` collects decimated point series for the PNGs; ``csv_dir`` streams one CSV row
    per message and per ACK. Both cost nothing when off.
    """

    def __init__(self, stall_threshold: float = 0.5, plot: bool = False,
                 csv_dir: str | None = None):
        self.stall_threshold = int(stall_threshold * 1e9)
        self.plot = plot
        self.csv_dir = csv_dir
        self.sessions: dict[int, SessionAudit] = {}
        self.frames = None  # analyzer.framemap.FrameMap over the reader, once it is known

    def watch(self, reader) -> None:
        """Learn the reader's files, so that the CSV rows name each frame's file and its
        number there (the reader's per-file list grows as the run reaches each file)."""
        from analyzer.framemap import FrameMap
        self.frames = FrameMap(reader)

    def handle(self, events: list) -> None:
        sessions = self.sessions
        sid = message = ack = None  # the last session's handlers, looked up once per switch
        for ev in events:
            kind = type(ev)
            if kind is Message or kind is Ack:
                if ev.session != sid:
                    sid = ev.session
                    sa = sessions[sid]
                    message, ack = sa.message, sa.ledger.ack
                if kind is Message:
                    message(ev)
                else:
                    ack(ev)
                continue
            sid = None
            if kind is SessionStarted:
                self._start(ev)
            elif kind is ServerPort:
                sa = sessions[ev.session]
                if sa.server_port is None:
                    sa.server_port = ev.port
            elif kind is SessionEnded:
                sessions[ev.session].end(ev.reason)
            elif kind is Anomaly and ev.session is not None:
                if ev.kind == Kind.ICMP_UNREACHABLE:
                    sessions[ev.session].icmp_unreachable.add((ev.frame,))
                elif ev.kind == Kind.TRUNCATED_CAPTURE and ev.session in sessions:
                    sessions[ev.session].capture_cut = (ev.frame, ev.detail)

    def _start(self, ev: SessionStarted) -> None:
        sa = SessionAudit(ev.session, ev.client, ev.server, ev.frame, ev.ts,
                          self.stall_threshold, ev.herald_seen)
        sa.server_port = ev.server_port
        if self.plot:
            from analyzer.audit.plotdata import PlotData
            sa.plot = PlotData()
        if self.csv_dir:
            from analyzer.audit.csvout import SessionRows
            try:
                sa.rows = SessionRows(self.csv_dir, ev.session, ev.client, self.frames)
            except Failure as exc:  # never overwritten; the rest of the audit goes on
                print(f"warning: --csv: {exc}; no CSV for dump {ev.session}", file=sys.stderr)
        sa.plain = not (sa.plot or sa.rows)
        self.sessions[ev.session] = sa

    def close(self) -> None:
        for sa in self.sessions.values():
            if sa.end_reason is None:
                sa.end("end-of-capture")

    def audit_json(self, session: int) -> dict | None:
        from analyzer.audit.summary import audit_json
        sa = self.sessions.get(session)
        return audit_json(sa) if sa is not None else None

    def add_to_report(self, report: dict) -> dict:
        """Put an "audit" object into each session of the report (nothing else changes)."""
        for s in report.get("sessions", []):
            a = self.audit_json(s["id"])
            if a is not None:
                s["audit"] = a
        return report
