"""``messages``: every netdump message and ACK, one line each, like tshark's packet list.

A sink that writes as events arrive; it remembers only a window of recent seqnos per dump
(for the ACK notes), so it streams captures of any size.
"""
from __future__ import annotations

from typing import IO

from analyzer.protocol.events import Ack, Anomaly, Message, SessionStarted
from analyzer.wire import TYPE_NAMES

WINDOW = 8192  # seqnos remembered per dump for "ACK of frame N rtt=..."


def parse_frames(text: str | None) -> tuple[int, int | None]:
    """"A-B", "A-", "-B" or "A" to an inclusive (first, last) frame range."""
    if not text:
        return 1, None
    a, sep, b = text.partition("-")
    try:
        lo = int(a) if a.strip() else 1
        hi = (int(b) if b.strip() else None) if sep else lo
    except ValueError:
        raise ValueError(f"{text!r} is not a frame range such as 100-200") from None
    return lo, hi


def fmt_rtt(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.3f}s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.3g}ms"
    return f"{ns / 1e3:.3g}us"


class MessageLister:
    HEADER = (f"{'frame':>8} {'time':>12}  {'source':>15}    {'destination':<15} "
              f"{'type':<8} {'seqno':>7} {'offset':>12} {'length':>6}  notes")

    def __init__(self, out: IO[str], client: str | None = None, dump: int | None = None,
                 frames: tuple[int, int | None] = (1, None)):
        self.out = out
        self.client = client
        self.dump = dump
        self.lo, self.hi = frames
        self.t0: int | None = None
        self.peers: dict[int, tuple[str, str]] = {}  # session -> (client, server)
        self.wanted: set[int] = set()
        self.sent: dict[int, dict[int, tuple[int, int]]] = {}  # session -> seqno -> (frame, ts)
        self.lines = 0
        out.write(self.HEADER + "\n")

    def _keep(self, frame: int) -> bool:
        return frame >= self.lo and (self.hi is None or frame <= self.hi)

    def handle(self, events: list) -> None:
        for ev in events:
            kind = type(ev)
            if kind is Message:
                self._message(ev)
            elif kind is Ack:
                self._ack(ev)
            elif kind is SessionStarted:
                if self.t0 is None:
                    self.t0 = ev.ts
                self.peers[ev.session] = (ev.client, ev.server)
                if (self.client is None or ev.client == self.client) and \
                        (self.dump is None or ev.session == self.dump):
                    self.wanted.add(ev.session)
                    self.sent[ev.session] = {}
            elif kind is Anomaly and ev.session in self.wanted and self._keep(ev.frame):
                self.out.write(f"{ev.frame:>8} {'':>12}  ! {ev.kind}: {ev.detail}\n")

    def _remember(self, session: int, seq: int, frame: int, ts: int) -> None:
        sent = self.sent[session]
        sent[seq] = (frame, ts)
        if len(sent) > 2 * WINDOW:
            horizon = seq - WINDOW
            self.sent[session] = {k: v for k, v in sent.items() if k > horizon}

    def _message(self, ev: Message) -> None:
        sid = ev.session
        if sid not in self.wanted:
            return
        if not ev.retransmit:
            self._remember(sid, ev.seqno, ev.frame, ev.ts)
        if not self._keep(ev.frame):
            return
        client, server = self.peers[sid]
        note = f"retransmission of frame {ev.first_frame}" if ev.retransmit else ""
        if ev.conflict:
            note += ", bytes differ from the earlier copy"
        self._line(ev.frame, ev.ts, client, server, TYPE_NAMES.get(ev.type, str(ev.type)),
                   ev.seqno, str(ev.offset), str(ev.length), note)

    def _ack(self, ev: Ack) -> None:
        sid = ev.session
        if sid not in self.wanted or not self._keep(ev.frame):
            return
        client, server = self.peers[sid]
        if ev.duplicate:
            note = f"dup ACK of frame {ev.message_frame or '?'}"
            if ev.first_ack_frame:
                note += f" (first ACK frame {ev.first_ack_frame})"
        elif ev.message_frame:
            note = f"ACK of frame {ev.message_frame}"
            sent = self.sent[sid].get(ev.seqno)
            if sent is not None:
                note += f" rtt={fmt_rtt(ev.ts - sent[1])}"
        else:
            note = "ACK of a message not in the capture"
        self._line(ev.frame, ev.ts, server, client, "ACK", ev.seqno, "", "", note)

    def _line(self, frame, ts, src, dst, mtype, seq, off, length, note) -> None:
        rel = (ts - (self.t0 or ts)) / 1e9
        self.out.write(f"{frame:>8} {rel:>12.6f}  {src:>15} -> {dst:<15} {mtype:<8} "
                       f"{seq:>7} {off:>12} {length:>6}  {note}\n")
        self.lines += 1
