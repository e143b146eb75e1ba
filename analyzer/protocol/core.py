"""The netdump protocol as netdumpd sees it: a pure state machine over datagrams.

Fed :class:`~analyzer.datagram.Datagram` and :class:`~analyzer.datagram.Notice` items in
capture order, :meth:`NetdumpTracker.feed` returns events; :meth:`close` ends what is open.
No files, sockets or clocks: the same bytes in always give the same events out.

Each message kind has one rule here (:meth:`~NetdumpTracker._client_datagram`,
:meth:`~NetdumpTracker._server_datagram`), written with its common case first;
:meth:`~NetdumpTracker.feed_many` only routes each datagram to its rule (and :meth:`feed`
is ``feed_many`` of one item). The session table is in
:mod:`~analyzer.protocol.table`, the states and transitions in
:mod:`~analyzer.protocol.state`, which session a capture notice hurts in
:mod:`~analyzer.protocol.notices`.
"""
from __future__ import annotations

import socket

from analyzer.anomalies import Kind
from analyzer.datagram import Datagram, Notice
from analyzer.protocol.events import Ack, Anomaly, DumpFinished, Message, ServerPort, SessionEnded
from analyzer.protocol.notices import Attribution
from analyzer.protocol.session import S_ACKED, S_FIRST, S_FRAME, S_PAYLOAD, S_TS, WINDOW, Session
from analyzer.protocol.state import FINISHING, ON_HERALD, after_finished_ack
from analyzer.protocol.table import MAX_SESSIONS, SessionTable
from analyzer.wire import ACK, CLIENT_PORT, DATASIZE, HERALD_PORT, MSG_HDR, MsgType

_HDR = MSG_HDR.struct
_HDR_SIZE = _HDR.size
_ACK = ACK.struct
_HERALD, _FINISHED = MsgType.HERALD, MsgType.FINISHED

_new = tuple.__new__  # event constructor: new(cls, fields), without NamedTuple's keyword handling


class NetdumpTracker:
    """Turns datagrams into protocol events. One instance per analysis run."""

    __slots__ = ("table", "sessions", "twins", "notes")

    def __init__(self, max_sessions: int = MAX_SESSIONS):
        self.table = SessionTable(max_sessions)
        self.sessions = self.table.sessions  # the same dicts, looked up on every datagram
        self.twins = self.table.twins
        self.notes = Attribution()

    @property
    def dropped_sessions(self) -> int:
        """Sessions refused at the open-session limit."""
        return self.table.dropped

    # -- entry points -------------------------------------------------------------------

    def feed(self, item: Datagram | Notice) -> list:
        return self.feed_many((item,))

    def feed_many(self, items) -> list:
        """The events of a list of items, in order.

        Per datagram: the notices waiting and the idle sessions first, then the rule of
        its kind. Its fields are read here, once, by unpacking: indexing a tuple subclass
        is slow (compiled, it calls ``__getitem__`` through the type).
        """
        events: list = []
        notes, table = self.notes, self.table
        for d in items:
            if type(d) is not Datagram:
                events += notes.notice(d, table)
                continue
            frame, ts, src, dst, sport, dport, payload, missing, link, bad = d
            if notes.pending:
                notes.flush(frame, events)
            if ts >= table.next_sweep:
                table.sweep(d, events)
            if sport == CLIENT_PORT or dport == HERALD_PORT:  # (a HERALD may come from any port)
                self._client_datagram(d, frame, ts, src, dport, payload, missing, link, bad,
                                      events)
            elif dport == CLIENT_PORT:
                self._server_datagram(d, frame, ts, dst, sport, payload, missing, link, bad,
                                      events)
        return events

    def close(self) -> list:
        """End every open session (end of capture)."""
        events: list = []
        self.notes.flush(None, events)
        for s in self.table.all():
            events.append(SessionEnded(s.id, "end-of-capture", 0))
        self.table.clear()
        return events

    def _over(self, s: Session, frame: int, events: list) -> None:
        """The dump is over (FINISHED ACKed, or seen in a one-way capture). The session stays
        for the client's late copies until its next HERALD or the idle timeout."""
        s.enter(after_finished_ack(s.state))
        s.let_go()
        events.append(DumpFinished(s.id, frame))

    # -- client messages ----------------------------------------------------------------

    def _client_datagram(self, d: Datagram, frame: int, ts: int, src: bytes, dport: int,
                         payload: bytes, missing: int, link, bad: bool, events: list) -> None:
        """The rule for a client message: its session, checks, then taken as a new seqno
        (past every earlier one, nearly always) or as a copy of one already sent."""
        key = src if link is None or not link[1] else (src, link[1])
        s = self.sessions.get(key)
        if len(payload) < _HDR_SIZE:
            self._short(d, s, key, events)
            return
        mtype, seqno, offset, length, _aux = _HDR.unpack_from(payload)
        if s is None or mtype == _HERALD or (link is not s.link and link is not None
                                             and s.mac is not None and link[0] != s.mac):
            s = self._session_for(d, s, key, mtype, length, events)
            if s is None:
                return
        sid = s.id
        s.last_ts = ts
        if link is not s.link:  # (readers hand one link tuple per host: nearly always the same)
            s.link = link
            if s.mac is None and link is not None:
                s.mac = link[0]
        notes = self.notes
        notes.taken(frame, sid, events)
        if bad:
            events.append(Anomaly(sid, Kind.BAD_CHECKSUM, frame,
                                  "checksum wrong (not offload-looking): data not trusted"))
            return
        full = len(payload) + missing
        if _HDR_SIZE + length != full:
            events.append(Anomaly(sid, Kind.BAD_LENGTH, frame,
                                  f"mh_len {length} but {full - _HDR_SIZE} payload bytes"))
            return
        if not 1 <= mtype <= 5:
            events.append(Anomaly(sid, Kind.UNKNOWN_TYPE, frame, f"message type {mtype}"))
            return
        if missing and frame != notes.cut_frame:
            events.append(Anomaly(sid, Kind.SNAPLEN_TRUNCATED, frame,
                                  f"{missing} of {length} payload bytes not captured"))
        if length > DATASIZE:
            events.append(Anomaly(sid, Kind.OVERSIZED_PAYLOAD, frame,
                                  f"{length}-byte payload: netdumpd accepts at most {DATASIZE}"))
        if dport != s.server_port and mtype != _HERALD and dport != HERALD_PORT:
            self._client_port(s, dport, frame, events)
        body = payload[_HDR_SIZE:]
        recent = s.recent
        if s.sent.add_past(seqno):
            prev = None
        else:
            prev = recent.get(seqno)
            if prev is None:
                if seqno < s.sent.max and s.sent.contains(seqno):
                    prev = [0, 0, 0, None, 0]  # sent long ago: folded away, details forgotten
                else:
                    s.sent.add(seqno, seqno + 1)
        if prev is None:
            recent[seqno] = [frame, frame, ts, body, 0]
            if len(recent) > 2 * WINDOW:
                s.prune(seqno)
            events.append(_new(Message, (sid, frame, ts, mtype, seqno, offset, length, body,
                                         False, frame, False)))
        elif prev[S_TS] == ts and prev[S_PAYLOAD] == body:
            s.capture_duplicates += 1  # the capture saw one frame twice
            return
        else:
            conflict = prev[S_PAYLOAD] is not None and prev[S_PAYLOAD] != body
            first = prev[S_FIRST]
            if conflict:
                events.append(Anomaly(sid, Kind.CONFLICTING_RETRANSMIT, frame,
                                      f"seq {seqno} at offset {offset}: frame {frame} "
                                      f"differs from frame {prev[S_FRAME]}"))
            if first:
                prev[S_FRAME], prev[S_TS], prev[S_PAYLOAD] = frame, ts, body
            events.append(Message(sid, frame, ts, mtype, seqno, offset, length, body,
                                  True, first, conflict))
        to = s.moves.get(mtype)
        if to is not None:
            s.enter(to)
            if to is FINISHING:
                s.finished_seqno = seqno
                if not s.acked:  # a one-way capture: no ACK will show the end
                    self._over(s, frame, events)

    def _session_for(self, d: Datagram, s: Session | None, key: object, mtype: int,
                     length: int, events: list) -> Session | None:
        """The session of a client message when it is not simply the current one: another
        host sending as this address, a HERALD (the next dump, or a restart), or none yet."""
        twin = False
        link = d.link
        if s is not None and link is not None and s.mac is not None and link[0] != s.mac:
            s = self.table.twin(key, s, link[0], d, events)
            twin = s is None
        if mtype == _HERALD:
            if s is not None:
                reason = ON_HERALD[s.state]
                if reason is None:
                    return s
                if reason == "restarted":
                    events.append(Anomaly(s.id, Kind.DUMP_RESTARTED, d.frame,
                                          "a new HERALD after data: the client started over"))
                self.table.end(s, reason, d.frame, events)
                twin = s.twin
            whole = len(d.payload) + d.missing == _HDR_SIZE + length
            return self.table.open(d, d.src, d.dst, d.payload[_HDR_SIZE:] if whole else None,
                              events, key, twin)
        if s is None:
            s = self.table.open(d, d.src, d.dst, None, events, key, twin)
            if s is not None:
                events.append(Anomaly(s.id, Kind.HERALD_MISSING, d.frame,
                                      "capture starts after the HERALD; data port learned "
                                      "from the client's messages"))
        return s

    def _short(self, d: Datagram, s: Session | None, key: object, events: list) -> None:
        """A datagram too short for a header: a runt, or a header the capture cut."""
        twin = False
        link = d.link
        if s is not None and link is not None and s.mac is not None and link[0] != s.mac:
            s = self.table.twin(key, s, link[0], d, events)
            twin = s is None
        full = len(d.payload) + d.missing
        if s is None and full >= _HDR_SIZE:
            s = self.table.open(d, d.src, d.dst, None, events, key, twin)
        sid = s.id if s else None
        self.notes.last_frame = d.frame
        self.notes.last_sid = sid
        if full < _HDR_SIZE:
            events.append(Anomaly(sid, Kind.RUNT, d.frame, f"{full}-byte datagram from "
                                  f"{socket.inet_ntoa(d.src)}, a header needs {_HDR_SIZE}"))
        elif d.frame != self.notes.cut_frame:
            events.append(Anomaly(sid, Kind.SNAPLEN_TRUNCATED, d.frame,
                                  f"header cut by the capture ({len(d.payload)} of {full} "
                                  "bytes kept)"))

    @staticmethod
    def _client_port(s: Session, dport: int, frame: int, events: list) -> None:
        """The client sends to a data port other than the known one (or the first one)."""
        if s.server_port is None:
            s.server_port = dport
            events.append(ServerPort(s.id, dport, frame))
        else:
            events.append(Anomaly(s.id, Kind.SERVER_PORT_CHANGED, frame,
                                  f"client now sends to port {dport}, was {s.server_port}"))

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

    def _server_datagram(self, d: Datagram, frame: int, ts: int, dst: bytes, sport: int,
                         payload: bytes, missing: int, link, bad: bool, events: list) -> None:
        """The rule for a server reply: checks, then taken as the first ACK of a seqno (past
        every acked one, nearly always) or as a duplicate."""
        key = dst if link is None or not link[1] else (dst, link[1])
        s = self.sessions.get(key)
        if self.twins:
            twins = self.twins.get(key)
            if twins and s is not None:
                s = self._ack_owner([s, *twins], d)
        if len(payload) != 4 or missing:
            events.append(Anomaly(s.id if s else None, Kind.BAD_LENGTH, frame,
                                  f"{len(payload) + missing}-byte reply to the client "
                                  "port; an ACK is 4 bytes"))
            return
        if s is None:
            s = self.table.open(d, dst, d.src, None, events, key)
            if s is None:
                return
            events.append(Anomaly(s.id, Kind.HERALD_MISSING, frame,
                                  "capture starts after the HERALD; first packet is an ACK"))
        sid = s.id
        s.last_ts = ts
        notes = self.notes
        notes.taken(frame, sid, events)
        if sport != s.server_port:
            self._reply_port(s, sport, frame, events)
        if bad:
            events.append(Anomaly(sid, Kind.BAD_CHECKSUM, frame,
                                  "ACK checksum wrong (not offload-looking): not trusted"))
            return
        (seqno,) = _ACK.unpack(payload)
        first = s.recent_acks.get(seqno)
        if first is None:
            acked = s.acked
            new = acked.add_past(seqno)
            if not new and not (seqno < acked.max and acked.contains(seqno)):
                acked.add(seqno, seqno + 1)
                new = True
            if new:
                s.recent_acks[seqno] = (frame, ts)
                sent = s.recent.get(seqno)
                if sent is not None:
                    sent[S_ACKED] = frame
                    events.append(_new(Ack, (sid, frame, ts, seqno, sent[S_FIRST], False,
                                             frame, sport)))
                else:
                    events.append(_new(Ack, (sid, frame, ts, seqno, 0, False, frame, sport)))
                if seqno == s.finished_seqno and s.state is FINISHING:
                    self._over(s, frame, events)
                return
        elif first[1] == ts:
            s.capture_duplicates += 1
            return
        sent = s.recent.get(seqno)
        events.append(Ack(sid, frame, ts, seqno, sent[S_FIRST] if sent is not None else 0,
                          True, first[0] if first is not None else 0, sport))

    @staticmethod
    def _reply_port(s: Session, sport: int, frame: int, events: list) -> None:
        """An ACK from a port other than the known one (or the first one seen)."""
        if s.server_port is None:
            s.server_port = sport
            events.append(ServerPort(s.id, sport, frame))
        elif sport not in s.ports_seen and len(s.ports_seen) < 16:
            s.ports_seen.add(sport)
            events.append(Anomaly(s.id, Kind.SERVER_PORT_CHANGED, frame,
                                  f"an ACK from server port {sport}; the dump's data port is "
                                  f"{s.server_port}"))
