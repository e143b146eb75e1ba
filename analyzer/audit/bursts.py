"""Bursts: one client send call as seen in the capture, and how to find its boundaries.

The client sends one buffer as a burst of consecutive seqnos, then waits until every packet
is ACKed, resending only the un-ACKed ones after its ≈1 s poll timeout (protocol reference
§5); the next call's first seqno follows the last one's. So a new seqno starts a new burst
when the message sizes say so: the message type changes (HERALD, KDH and FINISHED are always
alone), the offset does not continue the burst (allowing for packets the capture missed),
the previous packet was shorter than the burst's first (the tail of a buffer), or the burst
would pass 64 KiB. Where the sizes allow both, the protocol decides: after a resend round
only a new call brings new seqnos; while a packet of the burst has no ACK in the capture the
client cannot have moved on; a VMCORE or key call is whole 4 KiB blocks. Timing is left for
what remains (payloads that divide 4096, every packet ACKed): the time since the last ACK
against the shortest turnaround seen where the sizes ended a burst, and in a capture with no
ACKs at all (one-way), the gap against that turnaround from the last packet, or against the
link's observed packet spacing.

A capture taken at the server never sees copies lost on the way, so a resend can be the
first copy it shows. Such "hidden" resends are recognised by timing: a seqno below the
highest one arriving in a resend round or after a pause, the missing tail of a burst
arriving after a pause, or a new burst arriving a whole number of poll timeouts after the
previous one finished.
"""
from __future__ import annotations

from analyzer.wire import MsgType

HERALD, FINISHED, VMCORE, KDH, KEY = 1, 2, 3, 4, 5
MAX_BUFFER = 65536  # MAXDUMPPGS × PAGE_SIZE: the largest send call
MAX_IN_FLIGHT = 64
ROUND_LIMIT = 11  # resend rounds before the client gives up
NOMINAL_TIMEOUT = 1_000_000_000  # 2001 polls of DELAY(500), without the driver's time (ns)
ROUND_GAP = 100_000_000  # a pause this long between resends starts a new round (ns)
LONGEST_TIMEOUT = 1_300_000_000  # the longest poll timeout taken without one seen (ns)
KEEP_LIST = 20  # worst bursts, longest stalls, examples of each problem
KEEP_STALLS = 50  # first stalls listed in time order
KEEP_UNACKED = 4096  # folded seqnos still waiting for a (late) ACK

# slot fields: one small list per seqno in flight
S_TS, S_FRAME, S_OFF, S_LEN, S_TYPE, S_SENDS, S_ACK, S_ACKTS, S_ACKS, S_ROW, S_LAST, S_DUPS = range(12)
DUP_WINDOW = 1_000_000_000  # the default poll timeout: a copy sooner than half of it (or of
# the shortest timeout seen) is a network duplicate, not a resend


class Burst:
    __slots__ = ("index", "type", "first_seq", "last_seq", "packets", "off_start", "off_next",
                 "bytes", "start_frame", "start_ts", "last_tx_ts", "first_len", "last_len",
                 "unacked", "rounds", "round_last_seq", "retransmits", "needed", "spurious",
                 "timeouts", "last_ack_ts", "last_ack_frame", "slots", "last_tx_frame",
                 "hidden", "in_round", "fast", "acked_ahead", "provisional")

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
        self.hidden = 0  # resends whose earlier copies the capture never showed
        self.in_round = False  # the packets now being sent are a resend round
        # packets taken by the audit's fast path (full-size VMCORE, first_len bytes each):
        # counted into the session's per-type totals when the burst is folded
        self.fast = 0
        # ACKs captured for seqnos past the last one captured (their packets never were)
        self.acked_ahead = 0
        # opened where only a compressed stream's final block can begin (session._settle)
        self.provisional = False

    def continues(self, mtype: int, seq: int, offset: int) -> bool:
        """Does new seqno ``seq`` at ``offset`` carry on this burst's buffer?"""
        if mtype != self.type or mtype in (HERALD, FINISHED, KDH):
            return False
        skipped = seq - self.last_seq - 1
        if skipped < 0 or offset != self.off_next + skipped * self.first_len:
            return False
        return self.last_len == self.first_len

    def same_call(self, nxt: "Burst") -> bool:
        """Could ``nxt``, the burst after this one, be the rest of this one's call (the message
        sizes let it carry on the buffer, within 64 KiB)?"""
        return not nxt.rounds and nxt.first_len == self.first_len \
            and self.continues(nxt.type, nxt.first_seq, nxt.off_start) \
            and nxt.off_next - self.off_start <= MAX_BUFFER

    def absorb(self, nxt: "Burst") -> None:
        """Take in ``nxt``, the burst after this one, found to be the rest of its call."""
        self.last_seq = nxt.last_seq
        self.packets += nxt.packets
        self.bytes += nxt.bytes
        self.off_next = nxt.off_next
        self.last_len = nxt.last_len
        self.last_tx_ts, self.last_tx_frame = nxt.last_tx_ts, nxt.last_tx_frame
        self.unacked += nxt.unacked
        self.retransmits += nxt.retransmits
        self.needed += nxt.needed
        self.spurious += nxt.spurious
        self.hidden += nxt.hidden
        self.fast += nxt.fast
        self.acked_ahead = nxt.acked_ahead
        if nxt.last_ack_ts > self.last_ack_ts:
            self.last_ack_ts, self.last_ack_frame = nxt.last_ack_ts, nxt.last_ack_frame
        self.slots.update(nxt.slots)

    def unfinished(self) -> bool:
        """Full-size packets so far and under 64 KiB: the buffer's tail has not been seen."""
        return self.last_len == self.first_len and self.off_next - self.off_start < MAX_BUFFER

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
            "unacked": self.unacked, "hidden_resends": self.hidden,
        }


def timeouts_in(gap: int, timeout: int | None) -> int:
    """How many whole poll timeouts ``gap`` looks like (0: not a timeout multiple).

    ``timeout``: the median resend timeout observed so far, the same for every round of one
    client (within 3 %). Without one, the protocol's: 2001 polls of 0.5 ms plus the driver's
    time, taken as 0.95-1.3 s for one or two rounds; a longer gap only within -3/+5 % of
    whole nominal 1.0 s timeouts (else any long pause would match). At most the 11 rounds
    a client makes.
    """
    if timeout is None:
        k = 1 if gap < 1_600_000_000 else 2 if gap < 2_750_000_000 else \
            round(gap / NOMINAL_TIMEOUT)
        lo, hi = (k * 950_000_000, k * LONGEST_TIMEOUT) if k <= 2 else \
            (k * 970_000_000, k * 1_050_000_000)
    else:
        k = round(gap / timeout)
        lo, hi = k * timeout * 0.97 - 20_000_000, k * timeout * 1.03 + 30_000_000
    return k if 1 <= k <= ROUND_LIMIT and lo <= gap <= hi else 0


def fewest_rounds(gap: int, timeout: int | None) -> int:
    """The rounds a resend ``gap`` ns after the previous send of its call holds at least,
    where :func:`timeouts_in` finds no whole number of timeouts: with no timeout seen, as
    many as timeouts of at most 1.3 s need to fill it (a lower bound); else one."""
    if timeout is not None or gap <= LONGEST_TIMEOUT:
        return 1
    return min(ROUND_LIMIT, -(-gap // LONGEST_TIMEOUT))
