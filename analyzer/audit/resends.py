"""What the audit counts of one dump's resends: per message type, needed or spurious, hidden
(their earlier copies never captured) or not, and the rounds and poll timeouts they show.
One :class:`ResendCount` per :class:`~analyzer.audit.session.SessionAudit`, which decides
what each copy is (bursts.py) and tells this class."""
from __future__ import annotations

from analyzer.audit.bursts import (
    DUP_WINDOW, ROUND_GAP, S_LAST, S_SENDS, Burst, fewest_rounds, timeouts_in,
)
from analyzer.audit.stats import Distribution


class ResendCount:
    """Resend counters (lists indexed by message type) and the poll timeouts seen."""

    __slots__ = ("retx", "needed", "spurious", "hidden", "rounds", "hidden_rounds",
                 "timeouts", "outside", "net_dups", "captured")

    def __init__(self) -> None:
        self.retx = [0] * 6
        self.needed = [0] * 6
        self.spurious = [0] * 6
        self.hidden = [0] * 6  # resends whose earlier copies were never captured
        self.rounds = self.hidden_rounds = 0
        self.timeouts = Distribution()
        self.outside = 0  # resends of a seqno of a burst already folded
        self.net_dups = 0  # copies of one transmission (duplicated by the network)
        self.captured = 0  # well-formed copies of an already-sent seqno (the core's view)

    def dup_window(self) -> int:
        """Half the shortest resend timeout seen (half the default 1 s before any)."""
        return (self.timeouts.min if self.timeouts.count else DUP_WINDOW) >> 1

    def timeout(self) -> int | None:
        return self.timeouts.percentile(50) if self.timeouts.count else None

    def hidden_resend(self, b: Burst | None, mtype: int, spurious: bool = False) -> None:
        """A first captured copy that is a resend (``b``: its burst, None when folded);
        ``spurious``: an ACK of the seqno was captured before it."""
        if b is None:
            self.outside += 1
        else:
            b.retransmits += 1
            b.hidden += 1
            if spurious:
                b.spurious += 1
            else:
                b.needed += 1
        self.retx[mtype] += 1
        (self.spurious if spurious else self.needed)[mtype] += 1
        self.hidden[mtype] += 1

    def resend(self, b: Burst | None, slot: list | None, mtype: int, ts: int,
               needed: bool) -> None:
        """A captured resend (not a first copy); ``b`` and ``slot``: its burst and seqno, None
        when the burst was already folded; ``needed``: no ACK for it captured before."""
        self.retx[mtype] += 1
        if b is None:
            self.outside += 1
        else:
            b.retransmits += 1
            slot[S_SENDS] += 1
            slot[S_LAST] = ts
            if needed:
                b.needed += 1
            else:
                b.spurious += 1
        if needed:
            self.needed[mtype] += 1
        else:
            self.spurious[mtype] += 1

    def uncaptured_rounds(self, b: Burst, k: int, shown: int = 0) -> None:
        """``k`` rounds of ``b``, the copies of all but the last ``shown`` of them never
        captured."""
        b.rounds += k
        self.rounds += k
        self.hidden_rounds += k - shown

    def round(self, b: Burst, ts: int, seq: int) -> bool:
        """Account a resend of ``seq`` in burst ``b``; True when it opens a new round."""
        new = not b.in_round or seq <= b.round_last_seq or ts - b.last_tx_ts > ROUND_GAP
        if new:
            wait = ts - b.last_tx_ts
            # a gap of k poll timeouts: k rounds, the first k-1 of them never captured
            k = timeouts_in(wait, self.timeout()) or fewest_rounds(wait, self.timeout())
            b.rounds += k
            b.in_round = True
            self.rounds += k
            self.hidden_rounds += k - 1
            if len(b.timeouts) < 16:
                b.timeouts.append(wait // k)
            self.timeouts.add(wait // k)
        b.round_last_seq = seq
        return new
