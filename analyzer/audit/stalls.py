"""Stalls: gaps in a client's sending longer than the threshold, with what held them up."""
from __future__ import annotations

from analyzer.audit.bursts import KEEP_LIST, KEEP_STALLS, S_ACK, Burst
from analyzer.audit.stats import TopN


class StallLog:
    """The first stalls in time order, the longest ones, and their totals."""

    __slots__ = ("threshold", "first", "count", "time", "longest")

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.first: list[dict] = []
        self.count = self.time = 0
        self.longest = TopN(KEEP_LIST)

    def record(self, ev, gap: int, start: int, after_frame: int, cur: Burst | None,
               unacked: int, hint: str | None) -> None:
        """A gap of ``gap`` ns before message ``ev``; ``cur``: the burst in flight then, with
        ``unacked`` packets; ``hint``: the cause when the burst logic already knows it."""
        self.count += 1
        self.time += gap
        if cur is None:
            cause = "nothing on the wire"
        elif ev.retransmit:
            slot = cur.slots.get(ev.seqno)
            if slot is not None and slot[S_ACK]:
                cause = (f"resend after the poll timeout although the ACK (frame {slot[S_ACK]})"
                         " was captured: the ACK was lost or late on the client's side")
            else:
                cause = (f"waiting for ACKs: {unacked} of {cur.packets} packets of burst "
                         f"#{cur.index} unacknowledged, resent after the poll timeout")
        elif hint:
            cause = hint
        elif unacked:
            cause = (f"waiting for ACKs: {unacked} of {cur.packets} packets of burst "
                     f"#{cur.index} have no ACK in the capture")
        elif cur.last_ack_ts - start > self.threshold // 2:
            cause = (f"waiting for ACKs: the server took {(cur.last_ack_ts - start) / 1e9:.3f}s "
                     f"to ACK burst #{cur.index}")
        else:
            cause = ("nothing on the wire: every packet was ACKed and the client was silent "
                     "(busy, or ARP/other non-UDP traffic, which the readers do not show)")
        stall = {"start": start / 1e9, "end": ev.ts / 1e9, "duration": gap / 1e9,
                 "after_frame": after_frame, "frame": ev.frame,
                 "burst": cur.index if cur else None,
                 "seqno": [cur.first_seq, cur.last_seq] if cur else None, "cause": cause}
        if len(self.first) < KEEP_STALLS:
            self.first.append(stall)
        self.longest.add(gap, stall)
