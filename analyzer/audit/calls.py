"""Where one client send call ends and the next begins, where the message sizes leave both
open (payloads that divide 4096, every packet ACKed): the evidence beside the pause.

* A dumper write begins every call (writes.py): where no write can begin, a pause is a host
  stall inside the call, however long.
* The client resends only inside a call, and calls never overlap: a resend of a packet of
  the previous burst, after the burst in flight went out, makes the two one call (a host
  stall had ended it on the wire; its ACKs reached the capture point, not the client).
* Elsewhere the pause decides, against the client's turnaround (pace.py).

Functions of a :class:`~analyzer.audit.session.SessionAudit` ``sa``, whose window of two
bursts (``prev``, ``cur``) they may merge.
"""
from __future__ import annotations

from analyzer.audit.bursts import ROUND_GAP, VMCORE, Burst, timeouts_in
from analyzer.audit.writes import LAST_BLOCK, NO


def new_call(sa, cur: Burst, seq: int, gap: int, ts: int, offset: int) -> bool:
    """The message sizes let this new seqno carry on ``cur``: did a new call start? After a
    resend round only a new call brings new seqnos; else see :func:`moved_on`."""
    return bool(cur.rounds) or moved_on(sa, cur, seq, gap, ts, offset)


def moved_on(sa, cur: Burst, seq: int, gap: int, ts: int, offset: int) -> bool:
    """Did the client start a new call at ``offset``? Never where no dumper write begins;
    else the pause decides (ClientPace). Sets ``sa.opening_last`` when only the compressed
    stream's final block could begin there (the burst opened is then provisional)."""
    starts = sa.writes.starts(offset) if cur.type == VMCORE else 1
    if starts == NO:
        return False
    moved = sa.pace.moved_on(cur, seq, gap, ts, bool(sa.ledger.acks),
                             bool(timeouts_in(gap, sa.resends.timeout())))
    sa.opening_last = moved and starts == LAST_BLOCK
    return moved


def rejoin(sa, b: Burst, ts: int) -> Burst:
    """A resend (a poll timeout after the burst in flight) of a packet of burst ``b``: when
    ``b`` is the previous burst, the burst in flight is the rest of its call. Returns the
    burst that now holds the packet."""
    if b is sa.prev and ts - sa.cur.last_tx_ts > ROUND_GAP and join(sa):
        return sa.cur
    return b


def settle(sa, cur: Burst, mtype: int, seq: int, offset: int, length: int) -> Burst:
    """A new seqno after provisional ``cur`` (opened where only the compressed stream's final
    padded block can begin): it was that block when nothing but the end of the stream
    follows it; more data makes it the rest of the previous burst's call."""
    if mtype != VMCORE:
        cur.provisional = False
    elif not cur.continues(mtype, seq, offset) or offset + length - cur.off_start > 4096:
        cur.provisional = False
        if sa.prev is not None and join(sa):
            return sa.cur
    return cur


def join(sa) -> bool:
    """Make the burst in flight part of the previous one, when the sizes allow it."""
    prev, cur = sa.prev, sa.cur
    if not prev.same_call(cur):
        return False
    prev.absorb(cur)
    sa.cur, sa.prev = prev, None
    sa.bursts -= 1
    return True
