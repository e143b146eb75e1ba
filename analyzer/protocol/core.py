"""The netdump protocol as netdumpd sees it: a pure state machine over datagrams.

Fed :class:`~analyzer.datagram.Datagram` and :class:`~analyzer.datagram.Notice` items in
capture order, :meth:`NetdumpTracker.feed` returns events; :meth:`close` ends what is open.
No files, sockets or clocks: the same bytes in always give the same events out.

Sessions are keyed by client IPv4 address, as netdumpd keys them. Per-seqno state is kept
only for a window of recent seqnos (retransmissions happen inside the burst in flight); older
seqnos are folded into interval sets, so memory does not grow with the dump.
"""
from __future__ import annotations

import socket
import struct

from analyzer import speedups
from analyzer.datagram import Datagram, Notice, Unreachable
from analyzer.intervals import IntervalSet
from analyzer.protocol.events import (
    Ack, Anomaly, Message, ServerPort, SessionEnded, SessionStarted,
)
from analyzer.wire import CLIENT_PORT, DATASIZE, HERALD_PORT, MSG_HDR, MsgType

_HDR = MSG_HDR.struct
_HDR_SIZE = _HDR.size
_ACK = struct.Struct(">I")
_HERALD, _FINISHED, _VMCORE, _KDH = (MsgType.HERALD, MsgType.FINISHED, MsgType.VMCORE, MsgType.KDH)

WINDOW = 4096  # seqnos remembered in detail; a burst is at most ~64 packets
MAX_SESSIONS = 512  # open sessions at once; more is a flood, not dumps
MAX_TWINS = 8  # hosts claiming one client address (different MACs) kept apart
IDLE_TIMEOUT = 600 * 10**9  # netdumpd's CLIENT_TIMEOUT: a silent session is over
SWEEP_EVERY = 10 * 10**9  # netdumpd's CLIENT_TPASS: how often it looks


# What the capture showed of one seqno, first and latest copy: a plain list (cheaper to
# make than an object, and a dump makes millions) indexed by these.
S_FIRST, S_FRAME, S_TS, S_PAYLOAD, S_ACKED = range(5)  # S_ACKED: frame of the first ACK, 0 while none
_new = speedups.new_tuple  # event constructor: new(cls, *fields), compiled when built


class Session:
    __slots__ = ("id", "client", "ip", "key", "mac", "twin", "server", "server_port",
                 "data_seen", "finished", "sent", "acked", "recent", "recent_acks",
                 "capture_duplicates", "last_ts", "ports_seen", "horizon")

    def __init__(self, sid: int, ip: bytes, server: bytes, key: object, twin: bool):
        self.id = sid
        self.ip = ip
        self.key = key  # the address, with the VLAN tags when there are any
        self.mac: bytes | None = None  # the client's link-layer address, once seen
        self.twin = twin  # a second host claiming an address already in use
        self.client = socket.inet_ntoa(ip)
        self.server = socket.inet_ntoa(server)
        self.server_port: int | None = None
        self.data_seen = False  # a VMCORE or KDH arrived (netdumpd's any_data_rcvd)
        self.finished = False
        self.sent = IntervalSet()  # seqnos seen from the client
        self.acked = IntervalSet()  # seqnos seen acknowledged
        self.recent: dict[int, list] = {}  # seqno -> [first frame, frame, ts, payload, acked]
        self.recent_acks: dict[int, tuple[int, int]] = {}  # seqno -> (first ack frame, ts)
        self.capture_duplicates = 0
        self.last_ts = 0
        self.ports_seen: set[int] = set()  # server ports ACKs came from
        self.horizon = -1  # seqnos at or below it were pruned (see prune)

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


class NetdumpTracker:
    """Turns datagrams into protocol events. One instance per analysis run."""

    def __init__(self, max_sessions: int = MAX_SESSIONS):
        self.sessions: dict[object, Session] = {}  # current session per client address (+VLAN)
        self.twins: dict[object, list[Session]] = {}  # other hosts claiming that address
        self.max_sessions = max_sessions
        self._next_id = 1
        self._last_frame = 0  # frame of the last datagram, and its session (or None)
        self._last_sid: int | None = None
        self._pending: list[Notice] = []  # notices waiting for their frame's datagram
        self.dropped_sessions = 0
        self._next_sweep = 0

    # -- entry points -------------------------------------------------------------------

    def feed(self, item: Datagram | Notice) -> list:
        if type(item) is not Datagram:
            return self._notice(item)
        events: list = []
        self._datagram(item, events)
        return events

    def _datagram(self, item: Datagram, events: list) -> None:
        if self._pending:
            self._flush_pending(item.frame, events)
        if item.ts >= self._next_sweep:
            self._sweep(item, events)
        if item.sport == CLIENT_PORT:
            self._client_datagram(item, events)
        elif item.dport == CLIENT_PORT:
            self._server_datagram(item, events)
        elif item.dport == HERALD_PORT:
            self._client_datagram(item, events)  # a HERALD from an odd source port

    def feed_many(self, items) -> list:
        """The events of a list of items: exactly those of :meth:`feed` on each, in order.

        A fast lane takes the two cases that make up nearly all of a dump, a new VMCORE
        seqno past every earlier one and the first ACK of a seqno past every acked one, from
        a known session on its known port and link address. It does what the general path
        does for them, step for step; anything else (and any doubt) falls through to the
        general path at the bottom of the loop.
        """
        events: list = []
        ap = events.append
        general = self._datagram
        sessions = self.sessions
        twins = self.twins
        Dgram = Datagram
        new = _new  # module attribute read per batch: tests swap in the pure constructor
        Msg = Message
        AckEv = Ack
        unpack = _HDR.unpack_from
        from_bytes = int.from_bytes
        hdr = _HDR_SIZE
        vmcore = int(_VMCORE)
        window2 = 2 * WINDOW
        pending, next_sweep = self._pending, self._next_sweep  # changed by the general path only
        # The session of the last fast-lane client message, by source and link identity
        # (readers reuse one link tuple per host); forgotten whenever the general path runs.
        c_src = c_link = c_s = None
        last = None  # (frame, session id) of the last fast-lane datagram, stored on self lazily
        for d in items:
            if type(d) is Dgram:
                frame, ts, src, dst, sport, dport, payload, missing, link, bad = d
                if not pending and ts < next_sweep and not missing and not bad:
                    if sport == CLIENT_PORT:
                        # client message: a new VMCORE seqno past every earlier one?
                        if link is c_link and src == c_src:
                            s = c_s
                        elif link is None or not link[1]:
                            s = sessions.get(src)
                            if s is not None and (link is None or s.mac == link[0]):
                                c_src, c_link, c_s = src, link, s
                            else:
                                s = None
                        else:
                            s = None
                        size = len(payload)
                        if s is not None and size >= hdr:
                            mtype, seqno, offset, length, _aux = unpack(payload)
                            if mtype == vmcore and length + hdr == size and length <= DATASIZE \
                                    and dport == s.server_port and s.sent.add_past(seqno):
                                sid = s.id
                                s.last_ts = ts
                                last = frame, sid
                                body = payload[hdr:]
                                recent = s.recent
                                recent[seqno] = [frame, frame, ts, body, 0]
                                if len(recent) > window2:
                                    s.prune(seqno)
                                ap(new(Msg, sid, frame, ts, vmcore, seqno, offset, length, body,
                                       False, frame, False))
                                s.data_seen = True
                                continue
                    elif dport == CLIENT_PORT and (link is None or not link[1]):
                        # server reply: the first ACK of a seqno past every acked one?
                        s = sessions.get(dst)
                        if s is not None and len(payload) == 4 and sport == s.server_port \
                                and not (twins and dst in twins):
                            seqno = from_bytes(payload, "big")
                            racks = s.recent_acks
                            if seqno not in racks and s.acked.add_past(seqno):
                                sid = s.id
                                s.last_ts = ts
                                last = frame, sid
                                racks[seqno] = (frame, ts)
                                sent = s.recent.get(seqno)
                                if sent is not None:
                                    sent[S_ACKED] = frame
                                    ap(new(AckEv, sid, frame, ts, seqno, sent[S_FIRST], False,
                                           frame, sport))
                                else:
                                    ap(new(AckEv, sid, frame, ts, seqno, 0, False, frame, sport))
                                continue
            # the general path
            if last is not None:
                self._last_frame, self._last_sid = last
                last = None
            if type(d) is Dgram:
                general(d, events)
            else:
                events += self._notice(d)
            c_src = None
            pending, next_sweep = self._pending, self._next_sweep
        if last is not None:
            self._last_frame, self._last_sid = last
        return events

    def close(self) -> list:
        """End every open session (end of capture)."""
        events: list = []
        self._flush_pending(None, events)
        for s in self._all():
            events.append(SessionEnded(s.id, "end-of-capture", 0))
        self.sessions.clear()
        self.twins.clear()
        return events

    def _sweep(self, d: Datagram, events: list) -> None:
        """End sessions silent for longer than netdumpd waits."""
        if self._next_sweep:
            for s in [s for s in self._all() if d.ts - s.last_ts > IDLE_TIMEOUT]:
                self._end(s, "timeout", d.frame, events)
        self._next_sweep = d.ts + SWEEP_EVERY

    # -- notices ------------------------------------------------------------------------

    def _notice(self, n: Notice | Unreachable) -> list:
        events: list = []
        if type(n) is Unreachable:
            self._unreachable(n, events)
            return events
        if n.kind == "truncated-capture":
            # The dumps in flight when the file was cut are the ones it hurts.
            hit = [s.id for s in self._all() if not s.finished]
            for sid in hit:
                events.append(Anomaly(sid, n.kind, n.frame, n.detail))
            if not hit:
                events.append(Anomaly(None, n.kind, n.frame, n.detail))
        elif n.frame and n.frame == self._last_frame and self._last_sid is not None:
            events.append(Anomaly(self._last_sid, n.kind, n.frame, n.detail))
        else:
            self._pending.append(n)
        return events

    def _unreachable(self, n: Unreachable, events: list) -> None:
        """ICMP port-unreachable for a client's datagram: the server port was closed. After
        FINISHED this means netdumpd closed the session and the FINISHED ACK was lost."""
        s = self.sessions.get(n.orig_src) if n.orig_sport == CLIENT_PORT else None
        if s is None:
            twins = self.twins.get(n.orig_src)
            s = twins[0] if twins else None
        port = n.orig_dport
        if s is not None and s.finished:
            detail = (f"ICMP port unreachable for the client's datagram to port {port} after "
                      "FINISHED: the server had closed the session, so its FINISHED ACK was "
                      "lost on the way to the client")
        else:
            detail = (f"ICMP port unreachable from {socket.inet_ntoa(n.src)}: nothing listens "
                      f"on port {port} for {socket.inet_ntoa(n.orig_src)}:{n.orig_sport}")
        events.append(Anomaly(s.id if s is not None else None, "icmp-unreachable", n.frame,
                              detail))

    def _flush_pending(self, frame: int | None, events: list) -> None:
        keep = []
        for n in self._pending:
            if frame is not None and n.frame == frame:
                keep.append(n)  # attributed once this datagram's session is known
            else:
                events.append(Anomaly(None, n.kind, n.frame, n.detail))
        self._pending = keep

    def _attribute_pending(self, frame: int, sid: int, events: list) -> None:
        self._last_frame = frame
        self._last_sid = sid
        if self._pending:
            for n in self._pending:
                events.append(Anomaly(sid, n.kind, n.frame, n.detail))
            self._pending = []

    # -- sessions -----------------------------------------------------------------------

    def _all(self) -> list[Session]:
        return [*self.sessions.values(), *(t for ts in self.twins.values() for t in ts)]

    @staticmethod
    def _key(ip: bytes, link: object) -> object:
        return ip if link is None or not link[1] else (ip, link[1])

    def _twin(self, key: object, s: Session, mac: bytes, d: Datagram, events: list) -> Session | None:
        """Another host sends as this client: keep its packets apart, under its own session."""
        twins = self.twins.get(key, [])
        for t in twins:
            if t.mac == mac:
                return t
        if len(twins) >= MAX_TWINS:
            return s
        events.append(Anomaly(s.id, "ip-conflict", d.frame,
                              f"a second host (MAC {mac.hex(':')}) sends as {s.client}, "
                              f"whose dump comes from MAC {s.mac.hex(':')}; kept apart"))
        return None

    def _open(self, d: Datagram, ip: bytes, server: bytes, herald: bytes | None,
              events: list, key: object = None, twin: bool = False) -> Session | None:
        if len(self.sessions) >= self.max_sessions:
            idle = [x for x in self.sessions.values() if not x.data_seen]
            if idle:
                victim = min(idle, key=lambda x: x.last_ts)
                self._end(victim, "evicted", d.frame, events)
                events.append(Anomaly(victim.id, "session-limit", d.frame,
                                      f"more than {self.max_sessions} open sessions: this one "
                                      "carried no data and was closed to make room"))
        if len(self.sessions) >= self.max_sessions:
            self.dropped_sessions += 1
            if self.dropped_sessions == 1 or self.dropped_sessions % 1000 == 0:
                events.append(Anomaly(None, "session-limit", d.frame,
                                      f"more than {self.max_sessions} open sessions; "
                                      f"{self.dropped_sessions} dropped so far"))
            return None
        key = ip if key is None else key
        s = Session(self._next_id, ip, server, key, twin)
        self._next_id += 1
        if twin:
            self.twins.setdefault(key, []).append(s)
        else:
            self.sessions[key] = s
        events.append(SessionStarted(s.id, s.client, s.server, None, herald, d.frame, d.ts,
                                     herald is not None))
        return s

    def _end(self, s: Session, reason: str, frame: int, events: list) -> None:
        events.append(SessionEnded(s.id, reason, frame))
        if s.twin:
            self.twins[s.key].remove(s)
            if not self.twins[s.key]:
                del self.twins[s.key]
        else:
            del self.sessions[s.key]

    # -- client messages ----------------------------------------------------------------

    def _client_datagram(self, d: Datagram, events: list) -> None:
        payload = d.payload
        size = len(payload)
        full = size + d.missing
        link = d.link
        key = d.src if link is None or not link[1] else (d.src, link[1])
        s = self.sessions.get(key)
        twin = False
        if s is not None and link is not None and s.mac is not None and link[0] != s.mac:
            s = self._twin(key, s, link[0], d, events)
            twin = s is None
        if full < _HDR_SIZE or size < _HDR_SIZE:
            if s is None:
                s = self._open(d, d.src, d.dst, None, events, key, twin) \
                    if full >= _HDR_SIZE else None
            sid = s.id if s else None
            self._last_frame = d.frame
            self._last_sid = sid
            if full < _HDR_SIZE:
                events.append(Anomaly(sid, "runt", d.frame, f"{full}-byte datagram from "
                                      f"{socket.inet_ntoa(d.src)}, a header needs {_HDR_SIZE}"))
            else:
                events.append(Anomaly(sid, "snaplen-truncated", d.frame,
                                      f"header cut by the capture ({size} of {full} bytes kept)"))
            return
        mtype, seqno, offset, length, _aux = _HDR.unpack_from(payload)
        if mtype == _HERALD:
            if s is not None and (s.data_seen or s.finished):
                if s.finished:
                    self._end(s, "finished", d.frame, events)  # the next dump of this client
                else:
                    events.append(Anomaly(s.id, "dump-restarted", d.frame,
                                          "a new HERALD after data: the client started over"))
                    self._end(s, "restarted", d.frame, events)
                twin, s = s.twin, None
            if s is None:
                s = self._open(d, d.src, d.dst, payload[_HDR_SIZE:] if full == _HDR_SIZE + length
                               else None, events, key, twin)
                if s is None:
                    return
        elif s is None:
            s = self._open(d, d.src, d.dst, None, events, key, twin)
            if s is None:
                return
            events.append(Anomaly(s.id, "herald-missing", d.frame,
                                  "capture starts after the HERALD; data port learned from "
                                  "the client's messages"))
        sid = s.id
        s.last_ts = d.ts
        if s.mac is None and link is not None:
            s.mac = link[0]
        self._attribute_pending(d.frame, sid, events)
        if d.bad_checksum:
            events.append(Anomaly(sid, "bad-checksum", d.frame,
                                  "checksum wrong (not offload-looking): data not trusted"))
            return
        if _HDR_SIZE + length != full:
            events.append(Anomaly(sid, "bad-length", d.frame,
                                  f"mh_len {length} but {full - _HDR_SIZE} payload bytes"))
            return
        if not 1 <= mtype <= 5:
            events.append(Anomaly(sid, "unknown-type", d.frame, f"message type {mtype}"))
            return
        if d.missing:
            events.append(Anomaly(sid, "snaplen-truncated", d.frame,
                                  f"{d.missing} of {length} payload bytes not captured"))
        if length > DATASIZE:
            events.append(Anomaly(sid, "oversized-payload", d.frame,
                                  f"{length}-byte payload: netdumpd accepts at most {DATASIZE}"))
        if mtype != _HERALD and d.dport != HERALD_PORT and s.server_port != d.dport:
            if s.server_port is None:
                s.server_port = d.dport
                events.append(ServerPort(sid, d.dport, d.frame))
            else:
                events.append(Anomaly(sid, "server-port-changed", d.frame,
                                      f"client now sends to port {d.dport}, "
                                      f"was {s.server_port}"))
        body = payload[_HDR_SIZE:]
        recent = s.recent
        prev = recent.get(seqno)
        if prev is None and seqno < s.sent.max and s.sent.contains(seqno):
            prev = [0, 0, 0, None, 0]  # sent long ago: folded away, details forgotten
        if prev is not None:
            if prev[S_TS] == d.ts and prev[S_PAYLOAD] == body:
                s.capture_duplicates += 1  # the capture saw one frame twice
                return
            conflict = prev[S_PAYLOAD] is not None and prev[S_PAYLOAD] != body
            first = prev[S_FIRST]
            if conflict:
                events.append(Anomaly(sid, "conflicting-retransmit", d.frame,
                                      f"seq {seqno} at offset {offset}: frame {d.frame} "
                                      f"differs from frame {prev[S_FRAME]}"))
            if first:
                prev[S_FRAME], prev[S_TS], prev[S_PAYLOAD] = d.frame, d.ts, body
            events.append(Message(sid, d.frame, d.ts, mtype, seqno, offset, length, body,
                                  True, first, conflict))
        else:
            s.sent.add(seqno, seqno + 1)
            recent[seqno] = [d.frame, d.frame, d.ts, body, 0]
            if len(recent) > 2 * WINDOW:
                s.prune(seqno)
            events.append(Message(sid, d.frame, d.ts, mtype, seqno, offset, length, body,
                                  False, d.frame))
        if mtype == _VMCORE or mtype == _KDH:
            s.data_seen = True
        elif mtype == _FINISHED:
            s.finished = True

    @staticmethod
    def _ack_owner(candidates: list[Session], d: Datagram) -> Session:
        """Of hosts sharing an address, the one this ACK is for: by port, then by seqno."""
        for c in candidates:
            if c.server_port == d.sport:
                return c
        if len(d.payload) == 4:
            (seqno,) = _ACK.unpack(d.payload)
            for c in candidates:
                sent = c.recent.get(seqno)
                if sent is not None and not sent[S_ACKED]:
                    return c
        return candidates[0]

    # -- server replies -----------------------------------------------------------------

    def _server_datagram(self, d: Datagram, events: list) -> None:
        key = self._key(d.dst, d.link)
        s = self.sessions.get(key)
        twins = self.twins.get(key)
        if twins and s is not None:
            s = self._ack_owner([s, *twins], d)
        if len(d.payload) + d.missing != 4 or d.missing:
            sid = s.id if s else None
            events.append(Anomaly(sid, "bad-length", d.frame,
                                  f"{len(d.payload) + d.missing}-byte reply to the client "
                                  "port; an ACK is 4 bytes"))
            return
        if s is None:
            s = self._open(d, d.dst, d.src, None, events, key)
            if s is None:
                return
            events.append(Anomaly(s.id, "herald-missing", d.frame,
                                  "capture starts after the HERALD; first packet is an ACK"))
        sid = s.id
        s.last_ts = d.ts
        self._attribute_pending(d.frame, sid, events)
        if s.server_port is None:
            s.server_port = d.sport
            events.append(ServerPort(sid, d.sport, d.frame))
        elif d.sport != s.server_port and d.sport not in s.ports_seen and len(s.ports_seen) < 16:
            s.ports_seen.add(d.sport)
            events.append(Anomaly(sid, "server-port-changed", d.frame,
                                  f"an ACK from server port {d.sport}; the dump's data port is "
                                  f"{s.server_port}"))
        if d.bad_checksum:
            events.append(Anomaly(sid, "bad-checksum", d.frame,
                                  "ACK checksum wrong (not offload-looking): not trusted"))
            return
        (seqno,) = _ACK.unpack(d.payload)
        first = s.recent_acks.get(seqno)
        if first is not None and first[1] == d.ts:
            s.capture_duplicates += 1
            return
        duplicate = first is not None or (seqno < s.acked.max and s.acked.contains(seqno))
        sent = s.recent.get(seqno)
        message_frame = sent[S_FIRST] if sent is not None else 0
        if first is None:
            first_ack = 0 if duplicate else d.frame
            if not duplicate:
                s.acked.add(seqno, seqno + 1)
                s.recent_acks[seqno] = (d.frame, d.ts)
                if sent is not None:
                    sent[S_ACKED] = d.frame
        else:
            first_ack = first[0]
        events.append(Ack(sid, d.frame, d.ts, seqno, message_frame, duplicate, first_ack,
                          d.sport))
