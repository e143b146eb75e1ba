"""ACK accounting and burst folding for :class:`~analyzer.audit.session.SessionAudit`."""
from __future__ import annotations

from analyzer.audit.bursts import (
    KEEP_LIST, KEEP_UNACKED, KEY, MAX_BUFFER, MAX_IN_FLIGHT, S_ACK, S_ACKS, S_ACKTS, S_FRAME, S_OFF,
    S_DUPS, S_ROW, S_SENDS, S_TS, S_TYPE, VMCORE, Burst,
)
from analyzer.audit.stats import Distribution
from analyzer.wire import MsgType


class AckMixin:
    __slots__ = ()

    def init_acks(self) -> None:
        self.acks = 0
        self.dup_acks = 0
        self.dup_unexplained = 0
        self.acks_unseen: list = []
        self.acks_unseen_count = 0
        self.acks_bad_port: list = []
        self.acks_bad_port_count = 0
        self.acks_future: list = []
        self.acks_future_count = 0
        self.late_acks = 0
        self.unacked_old: dict[int, tuple] = {}
        self.never_acked: list = []
        self.never_acked_count = 0
        self.rtt = Distribution()

    def ack(self, ev) -> None:
        _sid, frame, ts, seq, _msg_frame, duplicate, _first, sport = ev
        self.last_ts, self.last_frame = ts, frame
        self.acks += 1
        cur = self.cur
        if self.plain and cur is not None and not duplicate and sport == self.server_port \
                and seq < cur.first_seq + MAX_IN_FLIGHT:
            slot = cur.slots.get(seq)
            if slot is not None and slot[S_SENDS] == 1 and seq != self.finished_seq:
                # the common case: the first ACK of a packet of the burst in flight, sent once
                slot[S_ACKS] += 1
                slot[S_ACK], slot[S_ACKTS] = frame, ts
                cur.unacked -= 1
                cur.last_ack_ts, cur.last_ack_frame = ts, frame
                self.rtt.pending.append(ts - slot[S_TS])  # tidied per burst
                return
        if self.server_port is not None and ev.sport != self.server_port:
            self.acks_bad_port_count += 1
            if len(self.acks_bad_port) < KEEP_LIST:
                self.acks_bad_port.append((ev.frame, seq, ev.sport))
        cur = self.cur
        slot = None
        burst = None
        if cur is not None:
            if seq >= cur.first_seq + MAX_IN_FLIGHT:
                self.acks_future_count += 1
                if len(self.acks_future) < KEEP_LIST:
                    self.acks_future.append((ev.frame, seq, cur.first_seq))
            slot = cur.slots.get(seq)
            burst = cur
            if slot is None and self.prev is not None:
                burst = self.prev
                slot = burst.slots.get(seq)
        row = self.rows.ack(ev) if self.rows is not None else None
        if slot is None:
            if ev.duplicate:
                self.dup_acks += 1
            elif self.unacked_old.pop(seq, None) is not None:
                self.late_acks += 1
            elif not ev.message_frame:
                self.acks_unseen_count += 1
                if len(self.acks_unseen) < KEEP_LIST:
                    self.acks_unseen.append((ev.frame, seq))
            else:
                self.late_acks += 1
            return
        slot[S_ACKS] += 1
        if ev.duplicate:
            self.dup_acks += 1
            if slot[S_ACKS] > slot[S_SENDS] + slot[S_DUPS]:
                self.dup_unexplained += 1
        else:
            slot[S_ACK], slot[S_ACKTS] = ev.frame, ts
            burst.unacked -= 1
            burst.last_ack_ts, burst.last_ack_frame = ts, ev.frame
            if slot[S_SENDS] == 1:  # Karn: only never-resent messages give an RTT
                rtt = ts - slot[S_TS]
                self.rtt.add(rtt)
                if self.plot is not None:
                    self.plot.rtt(ts, rtt)
                if row is not None:
                    row[10] = rtt
            if self.plot is not None:
                self.plot.ack(ts, slot[S_TYPE], slot[S_OFF])
            if seq == self.finished_seq and self.t_finished_ack is None:
                self.t_finished_ack = (ev.frame, ts)
        pending = slot[S_ROW]
        if pending is not None:
            pending[8] = ev.frame
            if slot[S_SENDS] == 1 and not ev.duplicate:
                pending[10] = ts - slot[S_TS]
            slot[S_ROW] = None

    # -- folding and the end ------------------------------------------------------------

    def _fold(self, b: Burst) -> None:
        self.rtt.tidy()
        if b.fast:
            nb = b.fast * b.first_len
            self.sent[VMCORE] += b.fast
            self.new[VMCORE] += b.fast
            self.new_bytes[VMCORE] += nb
            self.udp_bytes += 24 * b.fast + nb
        n = b.packets
        self.burst_packets[n] = self.burst_packets.get(n, 0) + 1
        bb = self.burst_bytes
        if b.bytes in bb or len(bb) < 256:
            bb[b.bytes] = bb.get(b.bytes, 0) + 1
        else:
            bb[-1] = bb.get(-1, 0) + 1
        self.rounds_hist[b.rounds] = self.rounds_hist.get(b.rounds, 0) + 1
        if b.unacked == 0 and b.last_ack_ts:
            took = b.last_ack_ts - b.start_ts
            self.burst_time.add(took)
        else:
            took = b.last_tx_ts - b.start_ts
        if b.type in (VMCORE, KEY) and b.off_start % 4096:
            self.misaligned_count += 1
            if len(self.misaligned) < KEEP_LIST:
                self.misaligned.append((b.start_frame, MsgType(b.type).name, b.first_seq,
                                        b.off_start))
        if b.type == VMCORE:
            span = b.off_next - b.off_start
            if b.off_start == self.vm_prev_end and self.vm_prev_span + span <= MAX_BUFFER:
                self.mergeable += 1
                if span == self.vm_prev_span == 4096:
                    self.small_runs += 1
            self.vm_prev_end, self.vm_prev_span = b.off_next, span
            self.vm_bursts += 1
            if self.vm_first_bytes is None:
                self.vm_first_bytes = b.bytes
            if b.bytes == MAX_BUFFER:
                self.vm_full += 1
            else:
                self.vm_short += 1
            self.vm_last_bytes = b.bytes
        if self.plot is not None:
            self.plot.burst(b, took)
        if b.rounds:
            key = (b.rounds, b.retransmits, took)
            heap = self.worst.heap
            if len(heap) < KEEP_LIST or key > heap[0][0]:
                self.worst.add(key, b.summary())
            if b.rounds > self.max_rounds:
                self.max_rounds = b.rounds
                self.max_rounds_burst = b.summary()
        if b.unacked:
            old = self.unacked_old
            for seq, slot in b.slots.items():
                if not slot[S_ACK]:
                    if len(old) >= KEEP_UNACKED:
                        self._never(*old.pop(next(iter(old))))
                    old[seq] = (slot[S_FRAME], seq, slot[S_TYPE])
        b.slots = {}

    def _never(self, frame: int, seq: int, mtype: int) -> None:
        self.never_acked_count += 1
        if len(self.never_acked) < KEEP_LIST:
            self.never_acked.append((frame, MsgType(mtype).name, seq))

    def end(self, reason: str) -> None:
        self.end_reason = reason
        if self.prev is not None:
            self._fold(self.prev)
        if self.cur is not None:
            self._fold(self.cur)
        self.prev = self.cur = None
        for item in self.unacked_old.values():
            self._never(*item)
        self.unacked_old = {}
        if self.rows is not None:
            self.rows.close()

