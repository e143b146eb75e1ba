"""Where each client transmission was seen, and where it was lost (``audit --merge``).

A pipeline sink beside the audit: it reads the union's events, and from the union source
which views saw each of them. Facts it uses:

* the client sends seqnos in order and starts a burst only once every earlier seqno is
  ACKed, so a seqno first seen after a higher one (by more than reordering explains) had
  copies nobody saw, and so had a new highest seqno first seen a whole number of poll
  timeouts after everything before it (the tail of a burst, resent), with the seqnos sent
  back to back after it: one per timeout, as the audit tells such resends
  (:func:`analyzer.audit.bursts.timeouts_in`);
* netdumpd ACKs every copy it gets, so an ACK with no unacknowledged copy before it stands
  for a copy nobody saw;
* an ACKed copy reached the server: every view that lacks it missed it (a tap drop); an
  unACKed one was lost after the furthest view that saw it, unless a view further on saw
  it, in which case the views before that one missed it.

Per-seqno state is kept for a window of recent seqnos only; older ones are settled into
counters, so memory does not grow with the dump.
"""
from __future__ import annotations

from analyzer.audit.bursts import timeouts_in
from analyzer.audit.stats import CappedPoints, Decimator
from analyzer.protocol.events import Ack, Message, SessionEnded
from analyzer.wire import MsgType

REORDER_NS = 50_000_000  # a seqno behind a higher one by more than this was resent
WINDOW = 512  # seqnos kept in detail behind the highest one
LOOKAHEAD = 64  # a burst is at most this many packets
IN_ROUND_NS = 400_000  # resends of one round go back to back; a new burst waits a poll


class _Session:
    def __init__(self, nviews: int, plot: bool = False):
        self.n = nviews
        # for the plot: VMCORE transmissions seen by every view (decimated), and those some
        # view missed, by the set of views (path ranks) that saw them (capped)
        self.plot_all = Decimator() if plot else None
        self.plot_some: dict[int, CappedPoints] = {}
        self.copies: dict[int, list[list]] = {}  # seqno -> [[ts, mask, acked], ...]
        self.first: dict[int, int] = {}  # seqno -> time of its first seen copy
        self.from_acks: dict[int, int] = {}  # seqno -> unseen copies told by ACKs
        self.top = -1
        self.last_ts = None  # the session's latest message or ACK seen
        self.round = (0, 0)  # (timeouts, time) of the latest resend of a burst's unseen tail
        self.total = 0
        self.all = 0
        self.none = 0
        self.seen_by = [0] * nviews  # by path rank
        self.drops = [0] * nviews
        self.lost = [0] * nviews  # lost[j]: between rank j and rank j + 1

    def message(self, seqno: int, ts: int, mask: int) -> None:
        if seqno not in self.first:
            rounds = 0
            if seqno < self.top:
                ahead = [self.first[s] for s in range(seqno + 1, seqno + LOOKAHEAD + 1)
                         if s in self.first]
                if ahead and ts - min(ahead) > REORDER_NS:
                    rounds = timeouts_in(ts - min(ahead), None) or 1
            elif self.last_ts is not None:
                k, when = self.round
                if k and seqno == self.top + 1 and ts - when <= IN_ROUND_NS:
                    rounds = k  # more of the same resent tail
                else:
                    rounds = timeouts_in(ts - self.last_ts, None)
                self.round = (rounds, ts)
            if rounds:
                self._unseen(max(0, rounds - self.from_acks.get(seqno, 0)))
            self.first[seqno] = ts
        self.last_ts = ts
        self.copies.setdefault(seqno, []).append([ts, mask, False])
        if seqno > self.top:
            self.top = seqno
            if len(self.first) > 2 * WINDOW:
                self._settle(seqno - WINDOW)

    def plot_point(self, ts: int, offset: int, ranks: int) -> None:
        if ranks == (1 << self.n) - 1:
            self.plot_all.add(ts, offset)
        else:
            pts = self.plot_some.get(ranks)
            if pts is None:
                pts = self.plot_some[ranks] = CappedPoints(5000)
            pts.add(ts, offset)

    def ack(self, seqno: int, ts: int) -> None:
        self.last_ts = ts
        for c in reversed(self.copies.get(seqno, ())):
            if c[0] <= ts:
                if not c[2]:
                    c[2] = True
                    return
                break  # the copy before it is ACKed already: this ACK is for an unseen one
        self.from_acks[seqno] = self.from_acks.get(seqno, 0) + 1
        self._unseen(1)
        for r in range(self.n):
            self.drops[r] += 1  # it reached the server: every point it passed missed it

    def _unseen(self, n: int) -> None:
        self.total += n
        self.none += n

    def _settle(self, below: int | None) -> None:
        """Fold the copies of seqnos below ``below`` (all, when None) into the counters."""
        done = [s for s in self.copies if below is None or s < below]
        for s in done:
            for _ts, mask, acked in self.copies.pop(s):
                self._count(mask, acked)
        for d in (self.first, self.from_acks):
            for s in [s for s in d if below is None or s < below]:
                del d[s]

    def _count(self, ranks: int, acked: bool) -> None:
        self.total += 1
        seen = [(ranks >> r) & 1 for r in range(self.n)]
        for r, s in enumerate(seen):
            self.seen_by[r] += s
        if all(seen):
            self.all += 1
        furthest = max(r for r, s in enumerate(seen) if s)
        reach = self.n if acked else furthest
        for r in range(reach):
            if not seen[r]:
                self.drops[r] += 1
        if not acked and furthest < self.n - 1:
            self.lost[furthest] += 1


class VantageSink:
    """``handle(events)``; ``add_to_report(report)`` puts a "vantage" object into each
    session's "audit"."""

    def __init__(self, source, order, plot: bool = False):
        self.source = source
        self.plot = plot  # collect the points of the vantage plot
        self.order = order  # views from the client's side to the server's side
        self.rank_bit = {v.index: 1 << r for r, v in enumerate(order)}
        self.sessions: dict[int, _Session] = {}

    def _ranks(self, mask: int) -> int:
        out = 0
        for index, bit in self.rank_bit.items():
            if mask >> index & 1:
                out |= bit
        return out

    def handle(self, events: list) -> None:
        seen = self.source.seen
        for ev in events:
            kind = type(ev)
            if kind is Message:
                s = self.sessions.get(ev.session)
                if s is None:
                    s = self.sessions[ev.session] = _Session(len(self.order), self.plot)
                info = seen.get(ev.frame)
                if info is not None:
                    ranks = self._ranks(info[0])
                    s.message(ev.seqno, ev.ts, ranks)
                    if s.plot_all is not None and ev.type == MsgType.VMCORE:
                        s.plot_point(ev.ts, ev.offset, ranks)
            elif kind is Ack:
                s = self.sessions.get(ev.session)
                if s is not None:
                    s.ack(ev.seqno, ev.ts)
            elif kind is SessionEnded and ev.session in self.sessions:
                self.sessions[ev.session]._settle(None)

    def close(self) -> None:
        for s in self.sessions.values():
            s._settle(None)

    def vantage_json(self, session: int) -> dict | None:
        s = self.sessions.get(session)
        if s is None:
            return None
        names = [v.name for v in self.order]
        return {
            "order": names,
            "transmissions": {"total": s.total, "seen_by_all": s.all,
                              "seen_by": dict(zip(names, s.seen_by)), "seen_by_none": s.none},
            "lost_between": [{"from": names[j], "to": names[j + 1], "count": n}
                             for j, n in enumerate(s.lost) if n],
            "tap_drops": dict(zip(names, s.drops)),
        }

    def add_to_report(self, report: dict) -> dict:
        for sess in report.get("sessions", []):
            v = self.vantage_json(sess["id"])
            if v is not None:
                sess.setdefault("audit", {})["vantage"] = v
        return report
