"""Which FreeBSD client generation the traffic looks like, with the reasons as text.

A generation is named only when the evidence singles it out, and one is excluded only when
the evidence excludes it (protocol reference §4.2, §9.3 and §12):

- 12.x caps every payload at min(4096, MTU − 52); 13.0 and later (debugnet) only at
  MTU − 52. A payload above 4096 rules 12.x out; a payload of exactly 4096 is 12.x's cap or
  an MTU of 4148, so it rules nothing out.
- The EKCD key follows the KDH on 12.x and 13.x (and 2020–21 main), the HERALD in current
  main: decisive either way.
- 12.x sends one burst per dumper write; 13+ merges contiguous writes into 64 KiB buffers.
  This shows only where the dumper's writes are small: an uncompressed minidump's header
  page, dump_avail page and page-table pages are single 4 KiB writes, so 12.x sends runs of
  neighbouring one-page bursts there and its first burst is the 4096-byte header page alone,
  while 13+ merges them; encrypted data is written in 4 KiB units, so there every 12.x
  burst is one page. Compressed streams are cut into 64 KiB chunks by the compressor in
  every generation, and where every write is 64 KiB nothing can be seen. The burst
  boundaries must be sure for this: payloads that do not divide 4096 (a call is
  whole 4 KiB blocks, so its short last packet ends it), or the client's turnaround measured
  where the sizes ended a call (from the last ACK; in a one-way capture, from the last packet).
"""
from __future__ import annotations

from analyzer.audit.bursts import KDH, KEY, VMCORE
from analyzer.audit.session import SessionAudit
from analyzer.audit.writes import stream_compression

GENERATIONS = ("12.x", "13.x", "main")


def guess(sa: SessionAudit) -> dict:
    cands = set(GENERATIONS)
    reasons: list[str] = []
    big = max(sa.max_payload[VMCORE], sa.max_payload[KEY])
    if big > 4096:
        cands.discard("12.x")
        reasons.append(f"payloads up to {big} bytes: above 12.x's 4096-byte cap, so 13.0 or later")
    elif big == 4096:
        reasons.append("payloads of exactly 4096 bytes: 12.x's cap, or an MTU of 4148 on "
                       "any generation")
    elif big:
        reasons.append(f"payloads of {big} bytes: MTU {big + 52}, below every generation's cap")

    if sa.t_key is not None:
        if sa.kdh_seq and sa.key_seq > sa.kdh_seq:
            cands.discard("main")
            reasons.append(f"EKCD key sent after the KDH (seqno {sa.key_seq} > {sa.kdh_seq}): "
                           "12.x or 13.x, not current main")
        elif not sa.first_vm_seq or sa.key_seq < sa.first_vm_seq:
            cands &= {"main"}
            reasons.append(f"EKCD key sent right after the HERALD (seqno {sa.key_seq}): "
                           "current main")
    else:
        reasons.append("no EKCD key: its position gives no hint")

    _batching(sa, cands, reasons)
    if sa.t_kdh is None and sa.new[KDH] == 0:
        reasons.append("no KDH captured")

    if not cands:
        text = "unknown"
        reasons.append("the hints contradict each other")
    elif len(cands) == 1:
        text = next(iter(cands))
    elif cands == {"13.x", "main"}:
        text = "13.x or main"
    elif cands == {"12.x", "13.x"}:
        text = "12.x or 13.x"
    else:
        text = "unknown"
    return {"guess": text, "candidates": [g for g in GENERATIONS if g in cands],
            "reasons": reasons}


def _batching(sa: SessionAudit, cands: set, reasons: list[str]) -> None:
    """Batching evidence, where the dumper's write sizes make it observable."""
    n = sa.tally.vm_bursts
    comp = _compression(sa)
    if comp:
        reasons.append(f"{comp}-compressed stream: the compressor writes 64 KiB chunks in "
                       "every generation, so burst sizes give no hint")
        return
    if sa.new[VMCORE] == 0:
        reasons.append("no VMCORE data captured")
        return
    payload = sa.max_payload[VMCORE]
    if payload and 4096 % payload and payload <= 4096 or payload > 4096:
        pass  # the short last packet of each call ends its burst
    elif (sa.pace.turn if sa.ledger.acks else sa.pace.turn_tx) is None:
        # (without ACKs, the pause from a call's last packet to the next call's first one,
        # where the sizes ended a call, times the others: ClientPace)
        reasons.append("payloads that divide 4096 and no turnaround of the client measured: "
                       "burst boundaries are not certain, so batching gives no hint")
        return
    if sa.tally.small_runs >= 2:
        cands &= {"12.x"}
        reasons.append(f"{sa.tally.small_runs + 1 if sa.tally.small_runs < 3 else 'several'} neighbouring "
                       "one-page VMCORE bursts in a row (the minidump's single-page writes), "
                       "each sent alone: no batching: 12.x")
    elif (sa.vm_head == b"mini" or sa.t_key is not None) and sa.tally.vm_first_bytes is not None \
            and sa.tally.vm_first_bytes > 4096:
        cands.discard("12.x")
        what = ("the minidump's 4096-byte header page" if sa.vm_head == b"mini" else
                "encrypted data, written in 4096-byte units,")
        reasons.append(f"the first VMCORE burst is {sa.tally.vm_first_bytes} bytes: {what} went out "
                       "merged with later writes: 13.0 or later")
    elif n >= 2:
        reasons.append("no run of single-page bursts where a minidump writes single pages: "
                       "batching cannot be told")
    elif n == 1:
        reasons.append(f"a single VMCORE burst of {sa.tally.vm_first_bytes} bytes: too short to see "
                       "batching")


def _compression(sa: SessionAudit) -> str | None:
    if sa.kdh_raw is not None and len(sa.kdh_raw) >= 496:
        code = sa.kdh_raw[495]
        if sa.kdh_raw[32:36] == b"\0\0\0\x04" and code:
            return {1: "gzip", 2: "zstd"}.get(code, "compressed")
    return stream_compression(sa.vm_head)
