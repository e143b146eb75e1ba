"""The client's pace, learned from the capture: how fast it sends inside a call, and how long
it takes to start the next call once it has every ACK. Only the burst boundaries that the
protocol leaves open (bursts.py: every packet ACKed, a 4 KiB block boundary) are decided
with it.

A client cannot start its next call sooner than its turnaround (the last ACK's way back, the
poll that notices it, the next dumper write), and it starts it within about one poll period
of the turnaround seen elsewhere: the poll loop wakes every ``DELAY(500)`` (protocol
reference §5.3). A pause inside that envelope is the next call; a shorter pause, or one well
past it (a host stall between two packets of one call), is not.
"""
from __future__ import annotations

from analyzer.audit.bursts import KEY, ROUND_GAP, VMCORE, Burst

POLL = 500_000  # the client's poll period (ns): DELAY(500) between polls


class ClientPace:
    """Packet spacing and call turnaround, each as the shortest and longest value seen."""

    __slots__ = ("spacing", "spacing_min", "turn", "turn_max", "turn_tx", "turn_tx_max")

    def __init__(self) -> None:
        self.spacing = 0  # running average of in-burst send spacing (ns)
        self.spacing_min = 0  # the shortest gap seen between two new seqnos: the link's pace
        # from a burst's last ACK to the next burst, where the message sizes alone end the
        # burst: what the client needs to move on (None: not seen yet)
        self.turn: int | None = None
        self.turn_max: int | None = None
        # the same from the burst's last packet, for captures without ACKs (one-way)
        self.turn_tx: int | None = None
        self.turn_tx_max: int | None = None

    def space(self, d: int) -> None:
        """One more spacing between two packets of a burst."""
        s = self.spacing
        self.spacing = (7 * s + d) >> 3 if s else d

    def packet_gap(self, gap: int) -> None:
        if 0 < gap and (gap < self.spacing_min or not self.spacing_min):
            self.spacing_min = gap

    def sizes_ended(self, since_ack: int | None, gap: int) -> None:
        """The message sizes ended a burst: the pause before the next one is a turnaround."""
        if since_ack is not None and 0 < since_ack < ROUND_GAP:
            self.turn, self.turn_max = _widen(self.turn, self.turn_max, since_ack)
        if 0 < gap < ROUND_GAP:
            self.turn_tx, self.turn_tx_max = _widen(self.turn_tx, self.turn_tx_max, gap)

    def moved_on(self, cur: Burst, seq: int, gap: int, ts: int, acks: bool,
                 waited: bool) -> bool:
        """Had the client every ACK of ``cur``, and was this pause its turnaround? ``seq``:
        the new seqno; those between it and the burst's last are the burst's too.

        ``waited``: the pause is whole poll timeouts, so past the envelope it is a new call
        resent after the capture missed its first copies, not a stall."""
        if cur.type in (VMCORE, KEY) and (cur.off_next - cur.off_start) & 4095:
            return False  # a call is whole 4 KiB blocks
        if acks:
            if cur.unacked or seq - cur.last_seq - 1 > cur.acked_ahead:
                return False  # a packet of the call (maybe one never captured) has no ACK
            if self.turn is not None:
                return _fits(ts - cur.last_ack_ts, self.turn, self.turn_max, waited)
        # no ACK in the capture: the turnaround from the last packet, or else well beyond
        # the link's pace between two packets
        if self.turn_tx is not None:
            return _fits(gap, self.turn_tx, self.turn_tx_max, waited)
        pace = self.spacing_min
        return gap > max(2 * pace, pace + 100_000) if pace else gap > 50_000


def _widen(lo: int | None, hi: int | None, t: int) -> tuple[int, int]:
    return (t if lo is None or t < lo else lo), (t if hi is None or t > hi else hi)


def _fits(t: int, lo: int, hi: int, waited: bool) -> bool:
    """Inside the turnaround envelope: from half the shortest (a margin for the shortest not
    yet seen) to one poll period past the longest."""
    return lo >> 1 <= t and (t <= hi + POLL or waited)
