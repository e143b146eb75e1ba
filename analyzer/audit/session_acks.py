"""ACK accounting of one audited dump: what the server's ACKs answered, and what they left
unanswered. One :class:`AckLedger` per :class:`~analyzer.audit.session.SessionAudit`, whose
bursts in flight it marks as their packets are ACKed."""
from __future__ import annotations

from analyzer.audit.bursts import (
    KEEP_LIST, KEEP_UNACKED, MAX_IN_FLIGHT, S_ACK, S_ACKS, S_ACKTS, S_DUPS, S_FRAME, S_OFF,
    S_ROW, S_SENDS, S_TS, S_TYPE, Burst,
)
from analyzer.audit.stats import Distribution, Sample
from analyzer.wire import MsgType


class AckLedger:
    """ACK counters, the RTT samples (Karn), and the seqnos still waiting for an ACK."""

    __slots__ = ("sa", "acks", "dup_acks", "dup_unexplained", "acks_unseen", "acks_bad_port",
                 "acks_future", "late_acks", "unacked_old", "never_acked", "rtt", "unseen")

    def __init__(self, sa) -> None:
        self.sa = sa  # the session: its bursts in flight, ports and timeline
        self.acks = 0
        self.dup_acks = 0
        self.dup_unexplained = 0
        self.acks_unseen = Sample(KEEP_LIST)
        self.acks_bad_port = Sample(KEEP_LIST)
        self.acks_future = Sample(KEEP_LIST)
        self.late_acks = 0
        self.unacked_old: dict[int, tuple] = {}  # folded seqnos still waiting for a late ACK
        self.never_acked = Sample(KEEP_LIST)
        self.rtt = Distribution()
        # seqno -> frame of a captured ACK whose message the capture had not shown: a copy
        # of it captured later is a resend, and a spurious one (see SessionAudit._acked)
        self.unseen: dict[int, int] = {}

    def ack(self, ev) -> None:
        _sid, frame, ts, seq, _msg_frame, duplicate, _first, sport = ev
        sa = self.sa
        sa.last_ts, sa.last_frame = ts, frame
        self.acks += 1
        cur = sa.cur
        if sa.plain and cur is not None and not duplicate and sport == sa.server_port \
                and seq < cur.first_seq + MAX_IN_FLIGHT:
            slot = cur.slots.get(seq)
            if slot is not None and slot[S_SENDS] == 1 and seq != sa.finished_seq:
                # the common case: the first ACK of a packet of the burst in flight, sent once
                slot[S_ACKS] += 1
                slot[S_ACK], slot[S_ACKTS] = frame, ts
                cur.unacked -= 1
                cur.last_ack_ts, cur.last_ack_frame = ts, frame
                self.rtt.pending.append(ts - slot[S_TS])  # tidied per burst
                return
        if sa.server_port is not None and ev.sport != sa.server_port:
            self.acks_bad_port.add((ev.frame, seq, ev.sport))
        slot = None
        burst = None
        if cur is not None:
            if seq >= cur.first_seq + MAX_IN_FLIGHT:
                self.acks_future.add((ev.frame, seq, cur.first_seq))
            slot = cur.slots.get(seq)
            burst = cur
            if slot is None and sa.prev is not None:
                burst = sa.prev
                slot = burst.slots.get(seq)
        row = sa.rows.ack(ev) if sa.rows is not None else None
        if slot is None:
            if cur is not None and cur.last_seq < seq < cur.first_seq + MAX_IN_FLIGHT \
                    and not ev.duplicate:
                cur.acked_ahead += 1  # the packet never reached the capture; its ACK did
            if ev.duplicate:
                self.dup_acks += 1
            elif self.unacked_old.pop(seq, None) is not None:
                self.late_acks += 1
            elif not ev.message_frame:
                self.acks_unseen.add((ev.frame, seq))
                if len(self.unseen) >= KEEP_UNACKED:
                    self.unseen.pop(next(iter(self.unseen)))
                self.unseen[seq] = ev.frame
            else:
                self.late_acks += 1
            return
        slot[S_ACKS] += 1
        if ev.duplicate:
            self.dup_acks += 1
            if slot[S_ACKS] > slot[S_SENDS] + slot[S_DUPS]:
                self.dup_unexplained += 1
            elif slot[S_SENDS] > 1:
                # the ACK of a resend: the one the client waited for (its first was lost)
                burst.last_ack_ts, burst.last_ack_frame = ts, ev.frame
        else:
            slot[S_ACK], slot[S_ACKTS] = ev.frame, ts
            burst.unacked -= 1
            burst.last_ack_ts, burst.last_ack_frame = ts, ev.frame
            if slot[S_SENDS] == 1:  # Karn: only never-resent messages give an RTT
                rtt = ts - slot[S_TS]
                self.rtt.add(rtt)
                if sa.plot is not None:
                    sa.plot.rtt(ts, rtt)
                if row is not None:
                    row[10] = rtt
            if sa.plot is not None:
                sa.plot.ack(ts, slot[S_TYPE], slot[S_OFF])
            if seq == sa.finished_seq and sa.t_finished_ack is None:
                sa.t_finished_ack = (ev.frame, ts)
        pending = slot[S_ROW]
        if pending is not None:
            pending[8] = ev.frame
            if slot[S_SENDS] == 1 and not ev.duplicate:
                pending[10] = ts - slot[S_TS]
            slot[S_ROW] = None

    def retire(self, b: Burst) -> None:
        """A burst leaves the window: remember its unACKed seqnos, boundedly; forget the ACKs
        of its packets the capture never showed (no resend of them can come now)."""
        self.rtt.tidy()
        if self.unseen:
            for seq in range(b.first_seq, b.last_seq + 1):
                self.unseen.pop(seq, None)
        if b.unacked:
            old = self.unacked_old
            for seq, slot in b.slots.items():
                if not slot[S_ACK]:
                    if len(old) >= KEEP_UNACKED:
                        self._never(*old.pop(next(iter(old))))
                    old[seq] = (slot[S_FRAME], seq, slot[S_TYPE])

    def _never(self, frame: int, seq: int, mtype: int) -> None:
        self.never_acked.add((frame, MsgType(mtype).name, seq))

    def close(self) -> None:
        """The dump ended: whatever still waits was never ACKed."""
        for item in self.unacked_old.values():
            self._never(*item)
        self.unacked_old = {}
