"""Which FreeBSD client generation the traffic looks like, with the reasons as text.

Facts used (protocol reference §4.2 and §12):
- 12.x caps every payload at 4096 bytes and sends one burst per dumper write, so small
  neighbouring writes (the 4096-byte header page, single bitmap and page-table pages) go
  out as separate bursts that would have fit in one 64 KiB buffer.
- 13.0 and later (debugnet) cap payloads only at MTU − 52, so a payload above 4096 means 13+;
  they merge contiguous writes into one buffer of up to 64 KiB and send it only when the
  next write does not fit, so two neighbouring bursts never fit in 64 KiB together.
- Compressed dumps are written in 64 KiB chunks by the compressor in every generation, so
  burst sizes say nothing about them.
- The EKCD key follows the KDH on 12.x and 13.x (and 2020–21 main); it follows the HERALD
  in current main.
"""
from __future__ import annotations

from analyzer.audit.bursts import KDH, KEY, VMCORE
from analyzer.audit.session import SessionAudit

GENERATIONS = ("12.x", "13.x", "main")


def guess(sa: SessionAudit) -> dict:
    cands = set(GENERATIONS)
    reasons: list[str] = []
    big = max(sa.max_payload[VMCORE], sa.max_payload[KEY])
    if big > 4096:
        cands.discard("12.x")
        reasons.append(f"payloads up to {big} bytes: above 12.x's 4096-byte cap, so 13.0 or later")
    elif big:
        mtu = big + 52
        if big == 4096:
            reasons.append("payloads of exactly 4096 bytes: 12.x's cap, or an MTU of 4148")
        else:
            reasons.append(f"payloads of {big} bytes: MTU {mtu}, below every generation's cap")

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

    n = sa.vm_bursts
    first = sa.vm_first_bytes
    comp = _compression(sa)
    if comp:
        reasons.append(f"{comp}-compressed stream: the compressor writes 64 KiB chunks in "
                       "every generation, so burst sizes give no hint")
    elif sa.mergeable:
        cands &= {"12.x"}
        reasons.append(f"{sa.mergeable} pairs of neighbouring VMCORE bursts would have fit in "
                       "one 64 KiB buffer but went out separately: one burst per dumper "
                       "write, no batching: 12.x")
    elif n >= 2 and first is not None and first > 4096:
        cands.discard("12.x")
        reasons.append(f"the first VMCORE burst is {first} bytes: the 4096-byte minidump "
                       "header page went out merged with later writes: 13.0 or later")
    elif n >= 3 and sa.vm_short > 1:
        cands.discard("12.x")
        reasons.append(f"no two neighbouring VMCORE bursts of {n} would fit in one 64 KiB "
                       "buffer: contiguous writes are batched: 13.0 or later")
    elif n >= 2:
        reasons.append("every VMCORE burst is 64 KiB: batching cannot be told from "
                       "single large writes")
    elif n == 1:
        reasons.append(f"a single VMCORE burst of {first} bytes: too short to see batching")
    elif sa.new[VMCORE] == 0:
        reasons.append("no VMCORE data captured")
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


def _compression(sa: SessionAudit) -> str | None:
    if sa.kdh_raw is not None and len(sa.kdh_raw) >= 496:
        code = sa.kdh_raw[495]
        if sa.kdh_raw[32:36] == b"\0\0\0\x04" and code:
            return {1: "gzip", 2: "zstd"}.get(code, "compressed")
    head = sa.vm_head
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return None
