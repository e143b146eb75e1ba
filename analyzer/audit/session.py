"""Per-dump transfer audit: the client's messages, its send calls (bursts) and resend rounds.

:class:`SessionAudit` follows the burst-and-wait model (see :mod:`analyzer.audit.bursts`)
over the protocol core's events; ACK accounting and RTT are in
:mod:`analyzer.audit.session_acks`, resend counts in :mod:`analyzer.audit.resends`, the
client's pace (the call boundaries timing decides) in :mod:`analyzer.audit.pace`, the
evidence beside it (dumper writes, resends) in :mod:`analyzer.audit.calls`, what the
finished bursts add up to in :mod:`analyzer.audit.tally`, stalls in
:mod:`analyzer.audit.stalls`, seqnos never captured in :mod:`analyzer.audit.seqholes`.
Per-seqno state lives only in the current and the previous burst; a burst leaving that
window is folded into counters, distributions and bounded lists, so memory does not grow
with the dump.
"""
from __future__ import annotations

from analyzer.audit.bursts import (
    FINISHED, HERALD, KDH, KEEP_LIST, KEY, ROUND_GAP, S_ACK, S_DUPS, S_LAST, S_ROW, VMCORE,
    Burst, timeouts_in,
)
from analyzer.audit.calls import moved_on, new_call, rejoin, settle
from analyzer.audit.pace import ClientPace
from analyzer.audit.resends import ResendCount
from analyzer.audit.seqholes import SeqnoHoles
from analyzer.audit.session_acks import AckLedger
from analyzer.audit.stats import Sample
from analyzer.audit.stalls import StallLog
from analyzer.audit.tally import BurstTally
from analyzer.audit.writes import WriteBounds
from analyzer.wire import MsgType


class SessionAudit:
    """What the audit learns about one dump, fed in capture order: the messages, the bursts
    in flight and the timeline here; ACK accounting in ``ledger`` (:class:`AckLedger`);
    what the finished bursts add up to in ``tally`` (:class:`BurstTally`)."""

    # a fixed set of fields: attribute access is the audit's hot path
    __slots__ = (
        "after_finished", "bursts", "capture_cut", "client", "conflicts",
        "cur", "data_after_kdh", "end_reason", "finished_seq", "first_vm_seq", "gap_ack",
        "herald_seen", "holes",
        "icmp_unreachable", "id", "kdh_new", "kdh_raw", "kdh_seq", "key_end", "key_seq",
        "last_frame", "last_ts", "last_tx_frame", "last_tx_ts", "ledger", "opening_last",
        "max_payload", "new", "new_bytes",
        "oversized", "plain", "plot", "prev", "reordered", "resends", "rows",
        "pace", "sent", "seq_max", "server", "server_port",
        "stall_threshold", "stalls", "start_frame", "start_ts",
        "t_data", "t_finished", "t_finished_ack", "t_herald", "t_kdh", "t_key", "tally",
        "udp_bytes", "vm_end", "vm_head", "writes",
    )

    def __init__(self, sid: int, client: str, server: str, frame: int, ts: int,
                 stall_threshold: int, herald_seen: bool = True):
        self.id = sid
        self.client = client
        self.server = server
        self.server_port: int | None = None
        self.herald_seen = herald_seen
        self.icmp_unreachable = Sample(KEEP_LIST)  # (frame,) of ICMP port-unreachables
        self.start_frame, self.start_ts = frame, ts
        self.stall_threshold = stall_threshold
        self.end_reason: str | None = None
        self.capture_cut: tuple | None = None  # (frame, detail): the file ends inside the dump
        # timeline: (frame, ts) of the first of each
        self.t_herald = self.t_data = self.t_kdh = self.t_key = self.t_finished = None
        self.t_finished_ack = None
        self.last_ts, self.last_frame = ts, frame
        # per message type (index = type): copies, first captured copies, resends
        self.sent = [0] * 6
        self.new = [0] * 6
        self.new_bytes = [0] * 6
        self.resends = ResendCount()
        self.max_payload = [0] * 6
        self.udp_bytes = 0
        self.vm_end = self.key_end = 0
        self.vm_head = b""  # first bytes at offset 0 (compression magic)
        self.writes = WriteBounds()  # where the dumper's writes begin, once known
        self.opening_last = False  # the next burst opens where only the last block can
        # bursts
        self.cur: Burst | None = None
        self.prev: Burst | None = None
        self.bursts = 0
        self.tally = BurstTally()
        self.pace = ClientPace()
        self.gap_ack = 0  # time from the last client packet to the last event before this one
        self.ledger = AckLedger(self)
        # stalls
        self.last_tx_ts = self.last_tx_frame = 0
        self.stalls = StallLog(stall_threshold)
        # protocol checks
        self.seq_max = 0
        self.holes = SeqnoHoles()
        self.reordered = 0
        self.oversized = Sample(KEEP_LIST)
        self.after_finished = Sample(KEEP_LIST)
        self.data_after_kdh = self.finished_seq = self.kdh_new = 0
        self.kdh_raw: bytes | None = None
        self.key_seq = self.kdh_seq = self.first_vm_seq = 0
        self.conflicts = 0
        self.plot = None  # analyzer.audit.plotdata.PlotData when plotting
        self.rows = None  # analyzer.audit.csvout.SessionRows when writing CSV
        # no KDH or FINISHED yet, no plot or CSV rows: the per-packet fast paths apply
        self.plain = True

    # -- messages -----------------------------------------------------------------------

    def message(self, ev) -> None:
        _sid, frame, ts, mtype, seq, offset, length, _payload, retransmit, _first, _c = ev
        last_tx = self.last_tx_ts
        gap = ts - last_tx if last_tx else 0
        cur = self.cur
        if mtype == 3 and self.plain and cur is not None and seq == self.seq_max + 1 \
                and not retransmit and offset == cur.off_next and cur.type == 3 \
                and not cur.rounds and cur.last_len == length == cur.first_len \
                and length <= 4096 and offset + length - cur.off_start <= 65536 \
                and gap <= self.stall_threshold and gap <= ROUND_GAP \
                and (cur.unacked and self.ledger.acks or (offset - cur.off_start) & 4095) \
                and not cur.acked_ahead and not cur.provisional \
                and len(_payload) == length:
            # the common case: the next full-size VMCORE packet of the burst in flight (its
            # length is the burst's first, already counted in max_payload): a packet of the
            # burst is still unACKed, or the burst is not yet whole 4 KiB blocks, so the
            # client cannot have started a new call; and the capture holds all of it
            self.last_ts, self.last_frame = ts, frame
            cur.fast += 1  # sent, new, new_bytes and udp_bytes: added up when cur is folded
            self.seq_max = seq
            end = offset + length
            if end > self.vm_end:
                self.vm_end = end
            if cur.packets:
                self.pace.space(ts - cur.last_tx_ts)
            cur.packets += 1
            cur.bytes += length
            cur.last_seq = seq
            cur.off_next = end
            cur.last_tx_ts = self.last_tx_ts = ts
            cur.last_tx_frame = self.last_tx_frame = frame
            cur.unacked += 1
            cur.slots[seq] = [ts, frame, offset, length, 3, 1, 0, 0, 0, None, ts, 0]
            return
        self.gap_ack = self.last_ts - last_tx if last_tx else 0
        self.last_ts, self.last_frame = ts, frame
        self.sent[mtype] += 1
        self.udp_bytes += 24 + length
        if length > self.max_payload[mtype]:
            self.max_payload[mtype] = length
        if length > 4096:
            self.oversized.add((frame, MsgType(mtype).name, seq, length))
        if gap > self.stall_threshold:
            before, unacked = cur, (cur.unacked if cur else 0)
        self.conflicts += bool(_c)
        if retransmit:
            self.resends.captured += 1
            hint = self._resend(ev)
        else:
            hint = self._new(ev, gap)
        if gap > self.stall_threshold:
            self.stalls.record(ev, gap, self.last_tx_ts, self.last_tx_frame, before, unacked,
                               hint)
        self.last_tx_ts, self.last_tx_frame = ts, frame
        if self.rows is not None:
            row = self.rows.message(ev)
            slot = self._slot(seq)[1]
            if slot is not None:
                slot[S_ROW] = row

    def _slot(self, seq: int) -> tuple[Burst | None, list | None]:
        """The burst in flight that holds ``seq`` and its slot (the burst in flight and None
        when neither of the two holds it)."""
        b = self.cur
        slot = b.slots.get(seq) if b is not None else None
        if slot is None and self.prev is not None and seq in self.prev.slots:
            b = self.prev
            slot = b.slots[seq]
        return b, slot

    def _first_copy(self, ev) -> None:
        """Bookkeeping for the first captured copy of a seqno."""
        mtype, seq, offset, length = ev.type, ev.seqno, ev.offset, ev.length
        self.new[mtype] += 1
        # the bytes the capture holds: a record the capture cut counts only what it kept
        self.new_bytes[mtype] += min(length, len(ev.payload))
        if self.t_finished is not None and mtype != FINISHED:
            self.after_finished.add((ev.frame, MsgType(mtype).name, seq))
        if mtype == VMCORE:
            if self.t_data is None:
                self.t_data = (ev.frame, ev.ts)
                self.first_vm_seq = seq
            if offset == 0 and not self.vm_head:
                self.vm_head = bytes(ev.payload[:4])
                self.writes.learn(bytes(ev.payload[:128]))
            if self.t_kdh is not None:
                self.data_after_kdh += 1
            if offset + length > self.vm_end:
                self.vm_end = offset + length
        elif mtype == KDH:
            self.kdh_new += 1
            if self.t_kdh is None:
                self.t_kdh = (ev.frame, ev.ts)
                self.plain = False
                self.kdh_seq = seq
                self.kdh_raw = bytes(ev.payload[:512])
        elif mtype == KEY:
            if self.t_key is None:
                self.t_key = (ev.frame, ev.ts)
                self.key_seq = seq
            if offset + length > self.key_end:
                self.key_end = offset + length
        elif mtype == HERALD:
            if self.t_herald is None:
                self.t_herald = (ev.frame, ev.ts)
        elif mtype == FINISHED and self.t_finished is None:
            self.t_finished = (ev.frame, ev.ts)
            self.plain = False
            self.finished_seq = seq

    def _new(self, ev, gap: int) -> str | None:
        """A seqno the capture shows for the first time. Returns a stall-cause hint."""
        ts, mtype, seq, offset, length = ev.ts, ev.type, ev.seqno, ev.offset, ev.length
        self._first_copy(ev)
        if seq <= self.seq_max:
            return self._late_first(ev)
        self.pace.packet_gap(gap)
        if seq > self.seq_max + 1:
            self.holes.jump(self.seq_max + 1, seq, ev.frame)
        self.seq_max = seq
        cur = self.cur
        if cur is not None and cur.provisional:
            cur = settle(self, cur, mtype, seq, offset, length)
        hidden = False
        hint = None
        cont = cur is not None and cur.continues(mtype, seq, offset)
        if cont and offset + length - cur.off_start <= 65536:
            if cur.in_round and ts - cur.last_tx_ts <= ROUND_GAP:
                if moved_on(self, cur, seq, gap, ts, offset):
                    cur = None  # every packet ACKed, then a pause: the next call
                else:
                    hidden = True  # more of the resend round: the tail's first copies were lost
            elif gap > ROUND_GAP and cur.unfinished() and timeouts_in(gap, self.resends.timeout()) \
                    and not (cur.packets == 1 and not cur.unacked and self.ledger.acks):
                # (a one-packet burst, ACKed: more likely a whole new call whose first copy
                # was lost than a call whose every later packet was)
                self.resends.round(cur, ts, seq)
                hint = ("resend after the poll timeout; the burst's tail never reached the "
                        "capture point before")
                hidden = True
            elif new_call(self, cur, seq, gap, ts, offset):
                cur = None
        else:
            if cur is not None and not cont:
                # the call surely ended here (64 KiB is only as sure as the burst's start)
                acked = not cur.unacked and cur.last_ack_ts and self.ledger.acks
                self.pace.sizes_ended(ts - cur.last_ack_ts if acked else None, gap)
            cur = None
        if cur is None:
            k = timeouts_in(gap, self.resends.timeout()) if self.cur is not None else 0
            if k and self._wait_explained(self.cur):
                # the previous call's resends went uncaptured: its rounds, not this burst's
                self.resends.uncaptured_rounds(self.cur, k)
                k = 0
            cur = self._open_burst(mtype, seq, offset, length, ev.frame, ts)
            cur.provisional, self.opening_last = self.opening_last, False
            if k:
                self.resends.uncaptured_rounds(cur, k, shown=1)  # this burst is the last
                cur.in_round = True
                hidden = True
                hint = (f"probably {k} resend round(s): the gap is {k} poll timeout(s) and "
                        "the earlier copies never reached the capture point")
        elif not hidden and cur.packets and not cur.rounds:
            self.pace.space(ts - cur.last_tx_ts)
        cur.packets += 1
        cur.bytes += length
        cur.last_seq = seq
        cur.off_next = offset + length
        cur.last_len = length
        cur.last_tx_ts, cur.last_tx_frame = ts, ev.frame
        acked = self._acked(cur, seq, ts, ev.frame, offset, length, mtype, hidden)
        if hidden or acked:
            self.resends.hidden_resend(cur, mtype, acked)
        if self.plot is not None:
            self._plot_first(ts, mtype, offset, hidden or acked)
        return hint

    def _acked(self, b: Burst, seq: int, ts: int, frame: int, offset: int, length: int,
               mtype: int, resend: bool) -> bool:
        """The slot of a first captured copy in burst ``b``. True when an ACK of ``seq`` was
        captured before it: the server had an earlier copy, so this one is a resend."""
        ack = self.ledger.unseen.pop(seq, 0) if self.ledger.unseen else 0
        b.unacked += not ack
        b.slots[seq] = [ts, frame, offset, length, mtype, 2 if resend or ack else 1, ack, 0,
                        1 if ack else 0, None, ts, 0]
        return bool(ack)

    def _plot_first(self, ts: int, mtype: int, offset: int, resend: bool) -> None:
        """A first captured copy: the table's "first", and "retransmitted" if a resend."""
        self.plot.first(ts, mtype, offset)
        if resend:
            self.plot.resend(ts, mtype, offset)

    def _late_first(self, ev) -> str | None:
        """A new seqno below the highest: its earlier copy was lost, or it was reordered."""
        ts, mtype, seq = ev.ts, ev.type, ev.seqno
        self.holes.fill(seq)
        cur, prev = self.cur, self.prev
        b = None
        if cur is not None and (seq >= cur.first_seq or prev is None or seq > prev.last_seq):
            b = cur
        elif prev is not None and seq >= prev.first_seq:
            b = prev
        if b is None:
            acked = self.ledger.unseen.pop(seq, None) is not None
            self.resends.hidden_resend(None, mtype, acked)
            if self.plot is not None:
                self._plot_first(ts, mtype, ev.offset, True)
            return None
        timed = b.in_round or ts - b.last_tx_ts > ROUND_GAP
        hint = None
        if timed:
            b = rejoin(self, b, ts)
            if self.resends.round(b, ts, seq):
                hint = "resend after the poll timeout; the first copy never reached the capture point"
            b.last_tx_ts, b.last_tx_frame = ts, ev.frame
        if seq < b.first_seq:
            # the burst's real first packet: full-size (the one captured first was its tail)
            b.first_seq, b.first_len = seq, max(b.first_len, ev.length)
        if ev.offset < b.off_start:
            b.off_start = ev.offset
        b.packets += 1
        b.bytes += ev.length
        acked = self._acked(b, seq, ts, ev.frame, ev.offset, ev.length, mtype, timed)
        if timed or acked:
            self.resends.hidden_resend(b, mtype, acked)
        else:
            self.reordered += 1
        if self.plot is not None:
            self._plot_first(ts, mtype, ev.offset, timed or acked)
        return hint

    def _wait_explained(self, prev: Burst | None) -> bool:
        """A gap of whole poll timeouts before a new burst: was the client waiting on the
        previous call (a packet of it unACKed, or never captured and its ACK neither, or an
        ACK captured in the gap, answering a resend the capture missed) rather than
        resending this one? (A call whose every packet has an ACK in the capture is no more
        likely to be waiting than any other.)"""
        if prev is None:
            return False
        missing = prev.last_seq - prev.first_seq + 1 - prev.packets
        if missing and self.ledger.unseen:
            unseen = self.ledger.unseen
            missing -= sum(s in unseen for s in range(prev.first_seq, prev.last_seq + 1))
        return bool(missing > 0 or self.gap_ack > ROUND_GAP)

    def _open_burst(self, mtype, seq, offset, length, frame, ts) -> Burst:
        if self.prev is not None:
            self._fold(self.prev)
        self.prev = self.cur
        if self.rows is not None:
            self.rows.flush()
        self.bursts += 1
        b = self.cur = Burst(self.bursts, mtype, seq, offset, length, frame, ts)
        return b

    def _resend(self, ev) -> None:
        ts, seq, mtype = ev.ts, ev.seqno, ev.type
        b, slot = self._slot(seq)
        rs = self.resends
        if slot is not None and ts - slot[S_LAST] < rs.dup_window() and not ev.conflict:
            # the same bytes inside the same send (sooner than any poll timeout could bring
            # a resend): duplicated on the way, not resent
            slot[S_DUPS] += 1
            rs.net_dups += 1
            return None
        if self.plot is not None:
            self.plot.resend(ts, mtype, ev.offset)
        if slot is None:
            rs.resend(None, None, mtype, ts, seq in self.ledger.unacked_old)
            return None
        b = rejoin(self, b, ts)
        rs.round(b, ts, seq)
        b.last_tx_ts, b.last_tx_frame = ts, ev.frame
        rs.resend(b, slot, mtype, ts, not slot[S_ACK])
        return None

    # -- folding and the end ------------------------------------------------------------

    def _fold(self, b: Burst) -> None:
        """A burst leaves the window of two: its packets into the totals, it into the tally."""
        if b.fast:
            nb = b.fast * b.first_len
            self.sent[VMCORE] += b.fast
            self.new[VMCORE] += b.fast
            self.new_bytes[VMCORE] += nb
            self.udp_bytes += 24 * b.fast + nb
        self.tally.fold(b, self.plot)
        self.ledger.retire(b)
        b.slots = {}

    def end(self, reason: str) -> None:
        self.end_reason = reason
        if self.prev is not None:
            self._fold(self.prev)
        if self.cur is not None:
            self._fold(self.cur)
        self.prev = self.cur = None
        self.ledger.close()
        if self.rows is not None:
            self.rows.close()
