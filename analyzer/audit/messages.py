"""``messages``: every netdump message and ACK, one line each, like tshark's packet list.

A sink that writes as events arrive; it remembers only a window of recent seqnos per dump
(for the ACK notes), so it streams captures of any size.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import IO

from analyzer.exits import OutputClosed
from analyzer.framemap import FrameMap
from analyzer.protocol.events import Ack, Anomaly, Message, SessionStarted
from analyzer.wire import TYPE_NAMES

WINDOW = 8192  # seqnos remembered per dump for "ACK of frame N rtt=..."


def parse_frames(text: str | None) -> tuple[int, int | None]:
    """"A-B", "A-", "-B" or "A" to an inclusive (first, last) frame range; frames count from
    1, and a range that ends before it starts holds nothing (a ValueError)."""
    if not text:
        return 1, None
    a, sep, b = text.partition("-")
    try:
        lo = int(a) if a.strip() else 1
        hi = (int(b) if b.strip() else None) if sep else lo
    except ValueError:
        raise ValueError(f"{text!r} is not a frame range such as 100-200") from None
    if lo < 1 or (hi is not None and hi < 1):
        raise ValueError(f"{text!r}: frames are numbered from 1")
    if hi is not None and hi < lo:
        raise ValueError(f"{text!r} ends before it starts")
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
        self.headed = False  # the header goes out with the first line
        self.frames = FrameMap([])
        self.files_width = 0  # width of the file column, when several files are read
        self.closed = False

    def watch(self, reader):
        """The pipeline's ``progress`` hook: learn the reader's files, so that frames are
        named as Wireshark numbers them (file, and frame within it)."""
        self.frames = FrameMap(reader)
        if len(getattr(reader, "paths", ())) > 1:
            self.files_width = max(len(p) for p in reader.paths)
        return nullcontext(reader)

    def _write(self, text: str) -> None:
        if self.closed:
            return
        try:
            if not self.headed:
                self.headed = True
                file_col = f"{'file':<{self.files_width}} " if self.files_width else ""
                self.out.write(file_col + self.HEADER + "\n")
            self.out.write(text)
        except BrokenPipeError:
            self.closed = True  # nobody reads on; the run stops without a word
            raise OutputClosed() from None

    def header(self) -> None:
        """Write the header if no line has (a listing with nothing in it)."""
        if not self.headed:
            self._write("")

    def _frame_cols(self, frame: int) -> str:
        path, n = self.frames.locate(frame)
        if not self.files_width:
            return f"{n:>8}"
        return f"{path or '':<{self.files_width}} {n:>8}"

    def _ref(self, frame: int) -> str:
        return self.frames.label(frame)

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
                self._write(f"{self._frame_cols(ev.frame)} {'':>12}  "
                            f"! {ev.kind}: {ev.detail}\n")

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
        note = f"retransmission of frame {self._ref(ev.first_frame)}" if ev.retransmit else ""
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
            note = f"dup ACK of frame {self._ref(ev.message_frame) if ev.message_frame else '?'}"
            if ev.first_ack_frame:
                note += f" (first ACK frame {self._ref(ev.first_ack_frame)})"
        elif ev.message_frame:
            note = f"ACK of frame {self._ref(ev.message_frame)}"
            sent = self.sent[sid].get(ev.seqno)
            if sent is not None:
                note += f" rtt={fmt_rtt(ev.ts - sent[1])}"
        else:
            note = "ACK of a message not in the capture"
        self._line(ev.frame, ev.ts, server, client, "ACK", ev.seqno, "", "", note)

    def _line(self, frame, ts, src, dst, mtype, seq, off, length, note) -> None:
        rel = (ts - (self.t0 or ts)) / 1e9
        self._write(f"{self._frame_cols(frame)} {rel:>12.6f}  {src:>15} -> {dst:<15} {mtype:<8} "
                       f"{seq:>7} {off:>12} {length:>6}  {note}\n")
        self.lines += 1
