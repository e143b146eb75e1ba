"""Per-dump transfer audit: bursts, retransmission rounds, ACK accounting, RTT and stalls.

The client sends one buffer as a burst of consecutive seqnos, then waits until every packet
is ACKed, resending only the un-ACKed ones after its ≈1 s poll timeout (protocol reference
§5). :class:`SessionAudit` follows that model over the protocol core's events. Per-seqno
state lives only in the current and the previous burst; a burst leaving that window is
folded into counters, distributions and bounded lists.

Burst boundaries are not on the wire, so a new seqno starts a new burst when one of these
holds (first match wins): the message type changes; the current burst already had a
retransmission round; the previous new packet was shorter than the burst's first (the tail
of a buffer); the burst would pass 64 KiB; the offset is not contiguous; or the client
paused — longer than 4 × the usual in-burst spacing with every packet ACKed, or 5 ms and
20 × spacing otherwise.
"""
from __future__ import annotations

from analyzer.audit.stats import Distribution, TopN
from analyzer.wire import MsgType

HERALD, FINISHED, VMCORE, KDH, KEY = 1, 2, 3, 4, 5
MAX_BUFFER = 65536  # MAXDUMPPGS × PAGE_SIZE: the largest send call
MAX_IN_FLIGHT = 64
ROUND_LIMIT = 11  # resend rounds before the client gives up
ROUND_GAP = 100_000_000  # a pause this long between resends starts a new round (ns)
KEEP_LIST = 20  # worst bursts, longest stalls, examples of each problem
KEEP_STALLS = 50  # first stalls listed in time order
KEEP_UNACKED = 4096  # folded seqnos still waiting for a (late) ACK

# slot fields: one small list per seqno in flight
S_TS, S_FRAME, S_OFF, S_LEN, S_TYPE, S_SENDS, S_ACK, S_ACKTS, S_ACKS, S_ROW = range(10)


class Burst:
    __slots__ = ("index", "type", "first_seq", "last_seq", "packets", "off_start", "off_next",
                 "bytes", "start_frame", "start_ts", "last_tx_ts", "first_len", "last_len",
                 "unacked", "rounds", "round_last_seq", "retransmits", "needed", "spurious",
                 "timeouts", "last_ack_ts", "last_ack_frame", "slots", "last_tx_frame")

    def __init__(self, index: int, mtype: int, seq: int, offset: int, length: int,
                 frame: int, ts: int):
        self.index = index
        self.type = mtype
        self.first_seq = self.last_seq = seq
        self.packets = 0
        self.off_start = self.off_next = offset
        self.bytes = 0
        self.start_frame = self.last_tx_frame = frame
        self.start_ts = self.last_tx_ts = ts
        self.first_len = self.last_len = length
        self.unacked = 0
        self.rounds = 0
        self.round_last_seq = 0
        self.retransmits = self.needed = self.spurious = 0
        self.timeouts: list[int] = []
        self.last_ack_ts = 0
        self.last_ack_frame = 0
        self.slots: dict[int, list] = {}

    def summary(self) -> dict:
        done = self.unacked == 0
        end = self.last_ack_ts if done and self.last_ack_ts else self.last_tx_ts
        return {
            "index": self.index, "type": MsgType(self.type).name,
            "seqno": [self.first_seq, self.last_seq], "packets": self.packets,
            "offset": [self.off_start, self.off_next], "bytes": self.bytes,
            "start_frame": self.start_frame, "start_time": self.start_ts / 1e9,
            "last_ack_frame": self.last_ack_frame or None,
            "time_to_last_ack": (end - self.start_ts) / 1e9 if done else None,
            "rounds": self.rounds, "retransmissions": self.retransmits,
            "needed": self.needed, "spurious": self.spurious,
            "timeouts": [t / 1e9 for t in self.timeouts],
            "unacked": self.unacked,
        }


class SessionAudit:
    """Everything the audit learns about one dump, fed in capture order."""

    def __init__(self, sid: int, client: str, server: str, frame: int, ts: int,
                 stall_threshold: int, herald_seen: bool = True):
        self.id = sid
        self.client = client
        self.server = server
        self.server_port: int | None = None
        self.herald_seen = herald_seen
        self.start_frame, self.start_ts = frame, ts
        self.stall_threshold = stall_threshold
        self.end_reason: str | None = None
        # timeline: (frame, ts) of the first of each
        self.t_herald = self.t_data = self.t_kdh = self.t_key = self.t_finished = None
        self.t_finished_ack = None
        self.last_ts = ts
        self.last_frame = frame
        # per type (index = message type), all copies / first copies / resends
        self.sent = [0] * 6
        self.new = [0] * 6
        self.new_bytes = [0] * 6
        self.retx = [0] * 6
        self.needed = [0] * 6
        self.spurious = [0] * 6
        self.max_payload = [0] * 6
        self.udp_bytes = 0  # client datagrams: 24-byte header + payload, every copy
        self.vm_end = 0  # highest VMCORE offset + length
        self.key_end = 0
        self.out_of_burst_retx = 0
        # bursts
        self.cur: Burst | None = None
        self.prev: Burst | None = None
        self.bursts = 0
        self.burst_packets: dict[int, int] = {}
        self.burst_bytes: dict[int, int] = {}
        self.rounds_hist: dict[int, int] = {}
        self.round_count = 0
        self.max_rounds = 0
        self.max_rounds_burst: dict | None = None
        self.timeouts = Distribution()
        self.burst_time = Distribution()
        self.worst = TopN(KEEP_LIST)
        self.spacing = 0  # EWMA of in-burst send spacing (ns)
        self.vm_bursts = 0
        self.vm_full = 0
        self.vm_short = 0
        self.vm_first_bytes: int | None = None
        self.vm_last_bytes = 0
        self.vm_first_len = 0
        # ACKs
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
        # stalls
        self.last_tx_ts = 0
        self.last_tx_frame = 0
        self.stalls: list[dict] = []
        self.stall_count = 0
        self.stall_time = 0
        self.longest_stalls = TopN(KEEP_LIST)
        # protocol checks
        self.seq_max = 0
        self.missing_seqnos = 0
        self.seq_gaps: list = []
        self.reordered = 0
        self.misaligned: list = []
        self.misaligned_count = 0
        self.oversized: list = []
        self.oversized_count = 0
        self.after_finished: list = []
        self.after_finished_count = 0
        self.data_after_kdh = 0
        self.finished_seq = 0
        self.kdh_raw: bytes | None = None
        self.kdh_new = 0
        self.key_seq = 0
        self.kdh_seq = 0
        self.first_vm_seq = 0
        self.conflicts = 0
        # optional collectors
        self.plot = None  # analyzer.audit.plots.PlotData
        self.rows = None  # analyzer.audit.csvout.SessionRows

    # -- messages -----------------------------------------------------------------------

    def message(self, ev) -> None:
        ts, frame, mtype, seq, length = ev.ts, ev.frame, ev.type, ev.seqno, ev.length
        self.last_ts, self.last_frame = ts, frame
        self.sent[mtype] += 1
        self.udp_bytes += 24 + length
        if length > self.max_payload[mtype]:
            self.max_payload[mtype] = length
        if length > 4096:
            self.oversized_count += 1
            if len(self.oversized) < KEEP_LIST:
                self.oversized.append((frame, MsgType(mtype).name, seq, length))
        gap = ts - self.last_tx_ts if self.last_tx_ts else 0
        if gap > self.stall_threshold:
            self._stall(ev, gap)
        if ev.conflict:
            self.conflicts += 1
        if ev.retransmit:
            self._resend(ev)
        else:
            self._new(ev, gap)
        self.last_tx_ts, self.last_tx_frame = ts, frame

    def _new(self, ev, gap: int) -> None:
        ts, frame, mtype, seq, offset, length = (ev.ts, ev.frame, ev.type, ev.seqno,
                                                 ev.offset, ev.length)
        if seq > self.seq_max + 1:
            missing = seq - self.seq_max - 1
            self.missing_seqnos += missing
            if len(self.seq_gaps) < KEEP_LIST:
                self.seq_gaps.append((self.seq_max + 1, seq - 1, frame))
        elif seq <= self.seq_max:
            self.reordered += 1
            self.missing_seqnos -= 1
        if seq > self.seq_max:
            self.seq_max = seq
        self.new[mtype] += 1
        self.new_bytes[mtype] += length
        if self.t_finished is not None and mtype != FINISHED:
            self.after_finished_count += 1
            if len(self.after_finished) < KEEP_LIST:
                self.after_finished.append((frame, MsgType(mtype).name, seq))
        if mtype == VMCORE:
            if self.t_data is None:
                self.t_data = (frame, ts)
                self.first_vm_seq = seq
            if self.t_kdh is not None:
                self.data_after_kdh += 1
            end = offset + length
            if end > self.vm_end:
                self.vm_end = end
        elif mtype == KDH:
            self.kdh_new += 1
            if self.t_kdh is None:
                self.t_kdh = (frame, ts)
                self.kdh_seq = seq
                self.kdh_raw = bytes(ev.payload[:512])
        elif mtype == KEY:
            if self.t_key is None:
                self.t_key = (frame, ts)
                self.key_seq = seq
            if offset + length > self.key_end:
                self.key_end = offset + length
        elif mtype == HERALD:
            if self.t_herald is None:
                self.t_herald = (frame, ts)
        elif mtype == FINISHED:
            if self.t_finished is None:
                self.t_finished = (frame, ts)
                self.finished_seq = seq

        cur = self.cur
        if cur is None or self._starts_burst(cur, mtype, seq, offset, length, gap):
            cur = self._open_burst(mtype, seq, offset, length, frame, ts)
        else:
            if cur.packets:
                spacing = ts - cur.last_tx_ts
                self.spacing = spacing if not self.spacing else (7 * self.spacing + spacing) >> 3
        cur.packets += 1
        cur.bytes += length
        cur.last_seq = seq
        cur.off_next = offset + length
        cur.last_len = length
        cur.last_tx_ts, cur.last_tx_frame = ts, frame
        cur.unacked += 1
        row = None
        if self.rows is not None:
            row = self.rows.message(ev)
        cur.slots[seq] = [ts, frame, offset, length, mtype, 1, 0, 0, 0, row]
        if self.plot is not None:
            self.plot.first(ts, mtype, offset)

    def _starts_burst(self, cur: Burst, mtype: int, seq: int, offset: int, length: int,
                      gap: int) -> bool:
        if mtype != cur.type or cur.rounds or seq != cur.last_seq + 1:
            return True
        if cur.last_len < cur.first_len or cur.bytes + length > MAX_BUFFER:
            return True
        if offset != cur.off_next or mtype in (HERALD, FINISHED, KDH):
            return True
        spacing = self.spacing
        if cur.unacked == 0:
            return gap > max(4 * spacing, 50_000)
        return gap > max(20 * spacing, 5_000_000)

    def _open_burst(self, mtype, seq, offset, length, frame, ts) -> Burst:
        if self.prev is not None:
            self._fold(self.prev)
        self.prev = self.cur
        if self.rows is not None:
            self.rows.flush()
        self.bursts += 1
        b = self.cur = Burst(self.bursts, mtype, seq, offset, length, frame, ts)
        if mtype in (VMCORE, KEY) and offset % 4096:
            self.misaligned_count += 1
            if len(self.misaligned) < KEEP_LIST:
                self.misaligned.append((frame, MsgType(mtype).name, seq, offset))
        return b

    def _resend(self, ev) -> None:
        ts, seq, mtype = ev.ts, ev.seqno, ev.type
        self.retx[mtype] += 1
        b = self.cur
        slot = b.slots.get(seq) if b is not None else None
        if slot is None and self.prev is not None:
            slot = self.prev.slots.get(seq)
            if slot is not None:
                b = self.prev
        if slot is not None:
            if (not b.rounds or seq <= b.round_last_seq
                    or ts - b.last_tx_ts > ROUND_GAP):
                b.rounds += 1
                self.round_count += 1
                wait = ts - b.last_tx_ts
                if len(b.timeouts) < 16:
                    b.timeouts.append(wait)
                self.timeouts.add(wait)
            b.round_last_seq = seq
            b.last_tx_ts, b.last_tx_frame = ts, ev.frame
            b.retransmits += 1
            slot[S_SENDS] += 1
            if slot[S_ACK]:
                b.spurious += 1
                self.spurious[mtype] += 1
            else:
                b.needed += 1
                self.needed[mtype] += 1
        else:
            self.out_of_burst_retx += 1
            if seq in self.unacked_old:
                self.needed[mtype] += 1
            else:
                self.spurious[mtype] += 1
        if self.rows is not None:
            row = self.rows.message(ev)
            if slot is not None:
                slot[S_ROW] = row
        if self.plot is not None:
            self.plot.resend(ts, mtype, ev.offset)

    # -- ACKs ---------------------------------------------------------------------------

    def ack(self, ev) -> None:
        ts, seq = ev.ts, ev.seqno
        self.last_ts, self.last_frame = ts, ev.frame
        self.acks += 1
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
            if slot[S_ACKS] > slot[S_SENDS]:
                self.dup_unexplained += 1
        else:
            slot[S_ACK], slot[S_ACKTS] = ev.frame, ts
            burst.unacked -= 1
            burst.last_ack_ts, burst.last_ack_frame = ts, ev.frame
            rtt = -1
            if slot[S_SENDS] == 1:  # Karn: only never-resent messages give an RTT
                rtt = ts - slot[S_TS]
                self.rtt.add(rtt)
                if self.plot is not None:
                    self.plot.rtt(ts, rtt)
            if self.plot is not None:
                self.plot.ack(ts, slot[S_TYPE], slot[S_OFF])
            if seq == self.finished_seq and self.t_finished_ack is None:
                self.t_finished_ack = (ev.frame, ts)
            if row is not None and rtt >= 0:
                row[10] = rtt / 1e9
        pending = slot[S_ROW]
        if pending is not None:
            pending[8] = ev.frame
            if slot[S_SENDS] == 1 and not ev.duplicate:
                pending[10] = (ts - slot[S_TS]) / 1e9
            slot[S_ROW] = None

    # -- stalls -------------------------------------------------------------------------

    def _stall(self, ev, gap: int) -> None:
        self.stall_count += 1
        self.stall_time += gap
        cur = self.cur
        start = self.last_tx_ts
        if cur is None:
            cause = "nothing on the wire"
        elif ev.retransmit:
            acked = cur.slots.get(ev.seqno)
            if acked is not None and acked[S_ACK]:
                cause = (f"retransmission timeout: the ACK (frame {acked[S_ACK]}) was captured "
                         "but the client resent anyway (ACK lost or late on the client side)")
            else:
                cause = (f"waiting for ACKs: {cur.unacked} of {cur.packets} packets of burst "
                         f"#{cur.index} unacknowledged, resent after the poll timeout")
        elif cur.unacked:
            cause = (f"waiting for ACKs: {cur.unacked} of {cur.packets} packets of burst "
                     f"#{cur.index} never ACKed in the capture")
        elif cur.last_ack_ts - start > self.stall_threshold // 2:
            cause = (f"waiting for ACKs: the server took {(cur.last_ack_ts - start) / 1e9:.3f}s "
                     f"to ACK burst #{cur.index}")
        else:
            cause = ("nothing on the wire: every packet was ACKed; the client was silent "
                     "(busy, or ARP/other non-UDP traffic, which the capture readers do not show)")
        stall = {"start": start / 1e9, "end": ev.ts / 1e9, "duration": gap / 1e9,
                 "after_frame": self.last_tx_frame, "frame": ev.frame,
                 "burst": cur.index if cur else None,
                 "seqno": [cur.first_seq, cur.last_seq] if cur else None, "cause": cause}
        if len(self.stalls) < KEEP_STALLS:
            self.stalls.append(stall)
        self.longest_stalls.add(gap, stall)

    # -- folding and the end ------------------------------------------------------------

    def _fold(self, b: Burst) -> None:
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
        if b.type == VMCORE:
            self.vm_bursts += 1
            if self.vm_first_bytes is None:
                self.vm_first_bytes = b.bytes
                self.vm_first_len = b.first_len
            if b.bytes == MAX_BUFFER:
                self.vm_full += 1
            else:
                self.vm_short += 1
            self.vm_last_bytes = b.bytes
        if self.plot is not None:
            self.plot.burst(b, took)
        key = (b.rounds, b.retransmits, took)
        heap = self.worst.heap
        if b.rounds and (len(heap) < KEEP_LIST or key > heap[0][0]):
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
