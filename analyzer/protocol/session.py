"""What the core remembers of one client's dump: its state, its port, and a window of seqnos.

Per-seqno detail is kept only for a window of recent seqnos (retransmissions happen inside
the burst in flight); older seqnos are folded into interval sets, so memory does not grow
with the dump.
"""
from __future__ import annotations

import socket
from typing import Any

from analyzer.intervals import IntervalSet
from analyzer.protocol.state import MOVES, WAITING, State

WINDOW = 4096  # seqnos remembered in detail; a burst is at most ~64 packets
LINGER = 64  # seqnos kept in detail once the dump is over (late copies of the last burst)

# What the capture showed of one seqno, first and latest copy: a plain list (cheaper to
# make than an object, and a dump makes millions) indexed by these.
S_FIRST, S_FRAME, S_TS, S_PAYLOAD, S_ACKED = range(5)  # S_ACKED: frame of the first ACK, 0 while none


class Session:
    __slots__ = ("id", "client", "ip", "key", "link", "mac", "twin", "server", "server_port",
                 "state", "moves", "finished_seqno", "sent", "acked", "recent", "recent_acks",
                 "capture_duplicates", "last_ts", "ports_seen", "horizon")

    def __init__(self, sid: int, ip: bytes, server: bytes, key: object, twin: bool):
        self.id = sid
        self.ip = ip
        self.key = key  # the address, with the VLAN tags when there are any
        self.link: object = None  # the link identity of the client's latest message
        self.mac: Any = None  # the client's link-layer address, once seen
        self.twin = twin  # a second host claiming an address already in use
        self.client = socket.inet_ntoa(ip)
        self.server = socket.inet_ntoa(server)
        self.server_port: int | None = None  # the data port, once a message or ACK shows it
        self.state = WAITING
        self.moves = MOVES[WAITING]  # message type -> next state, for the current state
        self.finished_seqno = -1  # seqno of the first FINISHED, once seen
        self.sent = IntervalSet()  # seqnos seen from the client
        self.acked = IntervalSet()  # seqnos seen acknowledged
        self.recent: dict[int, list] = {}  # seqno -> [first frame, frame, ts, payload, acked]
        self.recent_acks: dict[int, tuple[int, int]] = {}  # seqno -> (first ack frame, ts)
        self.capture_duplicates = 0
        self.last_ts = 0
        self.ports_seen: set[int] = set()  # server ports ACKs came from
        self.horizon = -1  # seqnos at or below it were pruned (see prune)

    def enter(self, state: State) -> None:
        self.state = state
        self.moves = MOVES[state]

    def prune(self, seqno: int) -> None:
        """Forget the seqnos a window behind ``seqno``. They nearly always are the run just
        past the previous horizon, popped one by one (rebuilding the dicts every window
        cost more than the rest of the fast lane); anything else rebuilds them."""
        horizon = seqno - WINDOW
        lo = self.horizon
        recent, racks = self.recent, self.recent_acks
        if lo < horizon <= lo + 2 * WINDOW:
            pop, pop_ack = recent.pop, racks.pop
            for k in range(lo + 1, horizon + 1):
                pop(k, None)
                pop_ack(k, None)
        if horizon > lo + 2 * WINDOW or len(recent) > WINDOW + WINDOW // 2 \
                or len(racks) > WINDOW + WINDOW // 2:
            self.recent = {k: v for k, v in recent.items() if k > horizon}
            self.recent_acks = {k: v for k, v in racks.items() if k > horizon}
        self.horizon = max(lo, horizon)

    def let_go(self) -> None:
        """The dump is over: keep the detail of its last seqnos only (late copies)."""
        top = self.sent.max - LINGER
        self.recent = {k: v for k, v in self.recent.items() if k >= top}
        self.recent_acks = {k: v for k, v in self.recent_acks.items() if k >= top}
