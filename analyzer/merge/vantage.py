"""Where each client transmission was seen, and where it was lost (``audit --merge``).

A pipeline sink beside the audit: it reads the union's events, and from the union source
which views saw each of them. Facts it uses (protocol reference §5):

* a send call's packets go out back to back, and every one still unACKed is resent, back to
  back again, each poll timeout (about a second) until it is ACKed; so the copies a view
  sees fall into rounds, numbered from the call's first, and a seqno first seen in round
  ``r``, or seen in rounds ``a`` and ``b``, had a copy nobody saw in every round before
  ``r``, or between ``a`` and ``b``;
* netdumpd ACKs every copy it gets, within a round trip: an ACK with no copy of its seqno
  shortly before it stands for a copy nobody saw (in the round it follows, when one does,
  else whole poll timeouts after the seqno's last copy);
* an ACKed copy reached the server: every view that lacks it missed it (a tap drop); an
  unACKed one was lost after the furthest view that saw it, unless a view further on saw
  it, in which case the views before that one missed it.

What no view shows is not claimed: a copy nobody saw and nobody ACKed after the last copy of
its seqno a view saw leaves no trace; a copy seen upstream whose downstream tap missed it
and whose every ACK was lost reads as lost in the network (as the contract defines it).

Per-seqno state is kept for a window of recent seqnos only; older ones are settled into
counters, so memory does not grow with the dump.
"""
from __future__ import annotations

from analyzer.audit.bursts import timeouts_in
from analyzer.audit.stats import CappedPoints, Decimator
from analyzer.protocol.events import Ack, Message, SessionEnded
from analyzer.wire import MsgType

WINDOW = 512  # seqnos kept in detail behind the highest one
IN_ROUND_NS = 400_000  # a round's packets go back to back; the next round waits a timeout
ACK_NS = 500_000_000  # an ACK answers a copy sent at most this long before it
TIMEOUTS_KEPT = 31  # recent one-timeout gaps whose median sizes the rounds


class _Copy:
    __slots__ = ("ts", "mask", "acked", "round", "dups")

    def __init__(self, ts, mask: int, acked: bool, rnd: int | None, dups: int = 0):
        self.ts, self.mask, self.acked, self.round, self.dups = ts, mask, acked, rnd, dups


class _Session:
    def __init__(self, nviews: int, plot: bool = False):
        self.n = nviews
        # for the plot: VMCORE transmissions seen by every view (decimated), and those some
        # view missed, by the set of views (path ranks) that saw them (capped)
        self.plot_all = Decimator() if plot else None
        self.plot_some: dict[int, CappedPoints] = {}
        self.copies: dict[int, list[_Copy]] = {}  # seqno -> its copies, seen or told
        self.top = -1
        self.last_msg = None  # time of the session's latest message seen
        self.last_ack = None  # time of its latest ACK
        self.pending: set[int] = set()  # seqnos seen in the latest round, not ACKed yet
        self.round = 0  # round of the current send call the latest message belongs to
        self.round_ts: dict[int, int] = {}  # the current call's rounds -> their first time
        self.timeouts: list[int] = []  # recent one-timeout gaps
        self.total = 0
        self.all = 0
        self.none = 0
        self.seen_by = [0] * nviews  # by path rank
        self.drops = [0] * nviews
        self.lost = [0] * nviews  # lost[j]: between rank j and rank j + 1

    def _timeouts_in(self, gap: int) -> int:
        known = sorted(self.timeouts)[len(self.timeouts) // 2] if self.timeouts else None
        k = timeouts_in(gap, known)
        if k == 1 and timeouts_in(gap, None) == 1:
            self.timeouts = [*self.timeouts[1 - TIMEOUTS_KEPT:], gap]
        return k

    def _place(self, seqno: int, ts: int) -> None:
        """Which round of which send call a message at ``ts`` belongs to."""
        last = self.last_msg
        self.last_msg = ts
        if last is None:
            self.round, self.round_ts = 0, {0: ts}
            return
        if ts - last <= IN_ROUND_NS:
            return  # back to back: the same round
        k = self._timeouts_in(ts - last)
        if seqno > self.top and (not k or not self.pending):
            # a new send call (what the last round showed is all ACKed): its first copies
            # may have gone unseen a timeout or more after that last ACK
            since = max(last, self.last_ack or last)
            self.round = self._timeouts_in(ts - since) if k else 0
            self.round_ts = {self.round: ts}
        elif k:
            self.round += k
            self.round_ts[self.round] = ts
        else:
            return
        self.pending = set()  # what is still unACKed is resent in this round

    def _fill(self, cs: list[_Copy], upto: int) -> None:
        """Copies nobody saw in the rounds before ``upto`` after the seqno's last known one
        (the copies ACKs told of with no round stand for some of them)."""
        rounds = [c.round for c in cs if c.round is not None]
        after = max(rounds) if rounds else -1
        vague = sum(1 for c in cs if c.round is None and not c.mask)
        for r in range(after + 1, upto):
            if vague:
                vague -= 1
                continue
            cs.append(_Copy(self.round_ts.get(r), 0, False, r))

    def message(self, seqno: int, ts: int, mask: int, dups: int = 0) -> None:
        self._place(seqno, ts)
        cs = self.copies.get(seqno)
        if cs is None:
            cs = self.copies[seqno] = []
        self._fill(cs, self.round)
        cs.append(_Copy(ts, mask, False, self.round, dups))
        self.pending.add(seqno)
        if seqno > self.top:
            self.top = seqno
            if len(self.copies) > 2 * WINDOW:
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
        self.last_ack = ts
        self.pending.discard(seqno)
        cs = self.copies.get(seqno)
        if cs is None:
            cs = self.copies[seqno] = []
        for c in reversed(cs):
            if c.ts is not None and c.ts <= ts:
                if ts - c.ts <= ACK_NS:
                    if not c.acked:
                        c.acked = True
                        return
                    if c.dups:  # a network duplicate of it got its own ACK
                        c.dups -= 1
                        return
                break
        r = self.round
        t_r = self.round_ts.get(r)
        if t_r is not None and 0 <= ts - t_r <= ACK_NS and seqno <= self.top \
                and all(c.round != r for c in cs):  # (a higher seqno: the next call's)
            self._fill(cs, r)
            cs.append(_Copy(t_r, 0, True, r))
            return
        # no round seen then: whole timeouts after the seqno's last copy tell which one
        last = max((c for c in cs if c.ts is not None and c.round is not None),
                   key=lambda c: c.ts, default=None)
        k = self._timeouts_in(ts - last.ts) if last is not None else 0
        if k:
            self._fill(cs, last.round + k)
            cs.append(_Copy(ts, 0, True, last.round + k))
        else:
            cs.append(_Copy(None, 0, True, None))

    def _settle(self, below: int | None) -> None:
        """Fold the copies of seqnos below ``below`` (all, when None) into the counters."""
        for s in [s for s in self.copies if below is None or s < below]:
            for c in self.copies.pop(s):
                self._count(c.mask, c.acked)

    def _count(self, ranks: int, acked: bool) -> None:
        self.total += 1
        if not ranks:
            self.none += 1
            if acked:  # it reached the server: every point it passed missed it
                for r in range(self.n):
                    self.drops[r] += 1
            return
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
                    s.message(ev.seqno, ev.ts, ranks, info[1])
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
