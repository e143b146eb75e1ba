"""The core's table of open sessions: opening, ending, eviction, idle sweeps, and hosts
that claim one client address (twins).

Sessions are keyed by client IPv4 address (with the VLAN tags when there are any), as
netdumpd keys them. The table never looks at a message's content: the acceptance rules
are in :mod:`analyzer.protocol.core`.
"""
from __future__ import annotations

from analyzer.anomalies import Kind
from analyzer.datagram import Datagram
from analyzer.protocol.events import Anomaly, SessionEnded, SessionStarted
from analyzer.protocol.session import Session
from analyzer.protocol.state import EVICTABLE, OVER

MAX_SESSIONS = 512  # open sessions at once; more is a flood, not dumps
MAX_TWINS = 8  # hosts claiming one client address (different MACs) kept apart
IDLE_TIMEOUT = 600 * 10**9  # netdumpd's CLIENT_TIMEOUT: a silent session is over
SWEEP_EVERY = 10 * 10**9  # netdumpd's CLIENT_TPASS: how often it looks


class SessionTable:
    __slots__ = ("sessions", "twins", "max_sessions", "next_id", "dropped", "next_sweep")

    def __init__(self, max_sessions: int = MAX_SESSIONS):
        self.sessions: dict[object, Session] = {}  # current session per client address (+VLAN)
        self.twins: dict[object, list[Session]] = {}  # other hosts claiming that address
        self.max_sessions = max_sessions
        self.next_id = 1
        self.dropped = 0  # sessions refused at the open-session limit
        self.next_sweep = 0  # capture time of the next idle sweep

    def all(self) -> list[Session]:
        return [*self.sessions.values(), *(t for ts in self.twins.values() for t in ts)]

    def clear(self) -> None:
        self.sessions.clear()
        self.twins.clear()

    def sweep(self, d: Datagram, events: list) -> None:
        """End sessions silent for longer than netdumpd waits."""
        if self.next_sweep:
            for s in [s for s in self.all() if d.ts - s.last_ts > IDLE_TIMEOUT]:
                self.end(s, "timeout", d.frame, events)
        self.next_sweep = d.ts + SWEEP_EVERY

    def twin(self, key: object, s: Session, mac: bytes, d: Datagram, events: list) -> Session | None:
        """Another host sends as this client: keep its packets apart, under its own session
        (the twin already known for ``mac``, or None: open one)."""
        twins = self.twins.get(key, [])
        for t in twins:
            if t.mac == mac:
                return t
        if len(twins) >= MAX_TWINS:
            return s
        events.append(Anomaly(s.id, Kind.IP_CONFLICT, d.frame,
                              f"a second host (MAC {mac.hex(':')}) sends as {s.client}, "
                              f"whose dump comes from MAC {s.mac.hex(':')}; kept apart"))
        return None

    def make_room(self, d: Datagram, events: list) -> None:
        """At the open-session limit: sessions whose dump is over go first, then the oldest
        one that never carried data."""
        over = [x for x in self.sessions.values() if x.state is OVER]
        if over:
            self.end(min(over, key=lambda x: x.last_ts), "finished", d.frame, events)
            return
        idle = [x for x in self.sessions.values() if x.state in EVICTABLE]
        if idle:
            victim = min(idle, key=lambda x: x.last_ts)
            self.end(victim, "evicted", d.frame, events)
            events.append(Anomaly(victim.id, Kind.SESSION_LIMIT, d.frame,
                                  f"more than {self.max_sessions} open sessions: this one "
                                  "carried no data and was closed to make room"))

    def open(self, d: Datagram, ip: bytes, server: bytes, herald: bytes | None,
             events: list, key: object = None, twin: bool = False) -> Session | None:
        if len(self.sessions) >= self.max_sessions:
            self.make_room(d, events)
        if len(self.sessions) >= self.max_sessions:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                events.append(Anomaly(None, Kind.SESSION_LIMIT, d.frame,
                                      f"more than {self.max_sessions} open sessions; "
                                      f"{self.dropped} dropped so far"))
            return None
        key = ip if key is None else key
        s = Session(self.next_id, ip, server, key, twin)
        self.next_id += 1
        if twin:
            self.twins.setdefault(key, []).append(s)
        else:
            self.sessions[key] = s
        events.append(SessionStarted(s.id, s.client, s.server, None, herald, d.frame, d.ts,
                                     herald is not None))
        return s

    def end(self, s: Session, reason: str, frame: int, events: list) -> None:
        events.append(SessionEnded(s.id, reason, frame))
        if s.twin:
            self.twins[s.key].remove(s)
            if not self.twins[s.key]:
                del self.twins[s.key]
        else:
            del self.sessions[s.key]
