"""What the finished bursts of one audited dump add up to: sizes, rounds, the worst ones, and
the batching evidence the generation guess reads (:mod:`analyzer.audit.generation`)."""
from __future__ import annotations

from analyzer.audit.bursts import KEEP_LIST, KEY, VMCORE, Burst
from analyzer.audit.stats import Distribution, Sample, TopN
from analyzer.wire import MsgType


class BurstTally:
    """Histograms and bounded lists over the bursts, filled as each is folded."""

    __slots__ = ("burst_packets", "burst_bytes", "rounds_hist", "burst_time", "worst",
                 "max_rounds", "max_rounds_burst", "misaligned", "vm_bursts",
                 "vm_first_bytes", "vm_prev_end", "vm_prev_span", "small_runs")

    def __init__(self) -> None:
        self.burst_packets: dict[int, int] = {}
        self.burst_bytes: dict[int, int] = {}
        self.rounds_hist: dict[int, int] = {}
        self.burst_time = Distribution()
        self.worst = TopN(KEEP_LIST)
        self.max_rounds = 0
        self.max_rounds_burst: dict | None = None
        self.misaligned = Sample(KEEP_LIST)
        self.vm_bursts = 0
        self.vm_first_bytes: int | None = None
        self.vm_prev_end = -1  # where the previous VMCORE burst ended
        self.vm_prev_span = 0
        self.small_runs = 0  # neighbouring pairs of one-page (4096-byte) VMCORE bursts

    def fold(self, b: Burst, plot) -> None:
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
            self.misaligned.add((b.start_frame, MsgType(b.type).name, b.first_seq, b.off_start))
        if b.type == VMCORE:
            span = b.off_next - b.off_start
            if b.off_start == self.vm_prev_end and span == self.vm_prev_span == 4096:
                self.small_runs += 1
            self.vm_prev_end, self.vm_prev_span = b.off_next, span
            self.vm_bursts += 1
            if self.vm_first_bytes is None:
                self.vm_first_bytes = b.bytes
        if plot is not None:
            plot.burst(b, took)
        if b.rounds:
            key = (b.rounds, b.retransmits, took)
            heap = self.worst.heap
            if len(heap) < KEEP_LIST or key > heap[0][0]:
                self.worst.add(key, b.summary())
            if b.rounds > self.max_rounds:
                self.max_rounds = b.rounds
                self.max_rounds_burst = b.summary()
