"""Protocol checks on one audited dump, and the problem list ranked worst first.

Each check is ``{"name", "ok", "detail"}``; ``ok`` is None when the capture cannot tell.
"""
from __future__ import annotations

from analyzer.audit.bursts import KEY, ROUND_LIMIT, VMCORE
from analyzer.audit.session import SessionAudit
from analyzer.wire import COMPRESSION_NAMES, KDH_MAGIC, KDH_SIZE, parse_kdh

SEVERITY = {"error": 0, "warning": 1, "info": 2}


def _check(name: str, ok: bool | None, detail: str) -> dict:
    return {"name": name, "ok": ok, "detail": detail}


def _frames(items, n: int = 5) -> str:
    return ", ".join(str(i[0]) for i in items[:n]) + (" ..." if len(items) > n else "")


def kdh_checks(sa: SessionAudit) -> list[dict]:
    if sa.kdh_raw is None:
        return [_check("kdh present", False, "no KDH captured: the dump length and the "
                                             "header facts are unknown")]
    raw = sa.kdh_raw
    if len(raw) < KDH_SIZE:
        return [_check("kdh present", False, f"KDH of {len(raw)} bytes; netdumpd needs 512")]
    k = parse_kdh(raw)
    out = [_check("kdh present", True, f"frame {sa.t_kdh[0]}")]
    out.append(_check("kdh parity", k["parity_ok"],
                      "the 128 words XOR to 0" if k["parity_ok"] else
                      "the 128 words do not XOR to 0: netdumpd writes 'Header Parity Check: Fail'"))
    magic_ok = k["magic"] == KDH_MAGIC.decode()
    out.append(_check("kdh magic", magic_ok, repr(k["magic"])))
    out.append(_check("kdh version", k["version"] == 4,
                      f"version {k['version']}" + ("" if k["version"] == 4 else
                                                   "; 12.0 and later send 4")))
    out.append(_check("kdh blocksize", k["blocksize"] == 4096,
                      f"blocksize {k['blocksize']}" + ("" if k["blocksize"] == 4096 else
                                                       "; netdump always uses 4096")))
    length = k["dumplength"]
    comp = k.get("compression", 0)
    expect = -(-length // 4096) * 4096 if comp else length
    got = sa.vm_end
    unique = sa.new_bytes[VMCORE]
    if got == expect and unique >= expect:
        detail = f"dumplength {length}, data reaches {got}"
        ok: bool | None = True
    else:
        detail = (f"dumplength {length} ({COMPRESSION_NAMES.get(comp, comp)}), data reaches "
                  f"{got}, {unique} unique bytes sent")
        ok = False
    out.append(_check("kdh dumplength matches data", ok, detail))
    keysize = k.get("dumpkeysize", 0)
    key_bytes = sa.new_bytes[KEY]
    if keysize or key_bytes:
        out.append(_check("key size matches kdh dumpkeysize",
                          keysize == sa.key_end and key_bytes >= keysize,
                          f"dumpkeysize {keysize}, key data reaches {sa.key_end} "
                          f"({key_bytes} bytes sent)"))
    if sa.kdh_new > 1:
        out.append(_check("kdh sent once", False, f"{sa.kdh_new} KDH messages with new seqnos"))
    return out


def protocol_checks(sa: SessionAudit) -> list[dict]:
    out = []
    if sa.holes.count:
        gaps = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in sa.holes.ranges(5))
        if sa.holes.lost:
            gaps += f" (and {sa.holes.lost} more)"
        out.append(_check("seqno continuity from 1", False,
                          f"{sa.holes.count} seqnos never captured: {gaps}"))
    else:
        out.append(_check("seqno continuity from 1", True, f"1..{sa.seq_max}"))
    if sa.reordered:
        out.append(_check("seqnos in order", False,
                          f"{sa.reordered} seqnos arrived late, below the highest one, "
                          "inside their burst (reordered on the way)"))
    out.append(_check("burst offsets 4096-aligned", not sa.tally.misaligned.count,
                      "every burst starts on a 4096-byte boundary" if not sa.tally.misaligned.count
                      else f"{sa.tally.misaligned.count} bursts start unaligned, e.g. " +
                      ", ".join(f"frame {f} offset {o}" for f, _t, _s, o in sa.tally.misaligned.items[:3])))
    out.append(_check("payload at most 4096", not sa.oversized.count,
                      "largest payload " + str(max(sa.max_payload)) if not sa.oversized.count
                      else f"{sa.oversized.count} messages above 4096 bytes (frames "
                      f"{_frames(sa.oversized.items)}): netdumpd truncates and never ACKs them"))
    out.extend(kdh_checks(sa))
    if sa.data_after_kdh:
        out.append(_check("kdh after all data", False,
                          f"{sa.data_after_kdh} VMCORE messages after the KDH"))
    if sa.t_finished is None:
        out.append(_check("finished sent", False, "no FINISHED captured"))
    else:
        out.append(_check("finished acknowledged", sa.t_finished_ack is not None,
                          f"ACK in frame {sa.t_finished_ack[0]}" if sa.t_finished_ack else
                          "FINISHED never ACKed: the client prints 'failed to close the "
                          "transaction'"))
    out.append(_check("nothing after finished", not sa.after_finished.count,
                      "" if not sa.after_finished.count else
                      f"{sa.after_finished.count} messages after FINISHED (frames "
                      f"{_frames(sa.after_finished.items)})"))
    if sa.icmp_unreachable.count:
        why = ("after FINISHED: netdumpd had closed the session, so its FINISHED ACK was lost "
               "on the way to the client, which kept resending" if sa.t_finished is not None
               else "the server port the client sends to is closed")
        out.append(_check("no icmp port-unreachable", False,
                          f"{sa.icmp_unreachable.count} ICMP port-unreachable for the client's "
                          f"datagrams (frames {_frames(sa.icmp_unreachable.items)}): {why}"))
    if sa.conflicts:
        out.append(_check("retransmissions identical", False,
                          f"{sa.conflicts} retransmissions differ from the first copy"))
    return out


def problems(sa: SessionAudit, checks: list[dict]) -> list[dict]:
    """Everything worth a look, worst first."""
    out: list[dict] = []

    def add(sev: str, kind: str, detail: str) -> None:
        out.append({"severity": sev, "kind": kind, "detail": detail})

    severe = {"finished acknowledged", "finished sent", "kdh present", "kdh parity",
              "kdh dumplength matches data", "payload at most 4096",
              "seqno continuity from 1", "key size matches kdh dumpkeysize", "kdh magic"}
    if sa.capture_cut is not None:
        add("error", "capture cut",
            f"the capture file ends inside frame {sa.capture_cut[0]}, in the middle of the "
            f"dump: nothing after it was captured ({sa.capture_cut[1]})")
    for c in checks:
        if c["ok"] is False:
            add("error" if c["name"] in severe else "warning", c["name"], c["detail"])
    if sa.tally.max_rounds:
        left = ROUND_LIMIT - sa.tally.max_rounds
        b = sa.tally.max_rounds_burst or {}
        sev = "error" if left <= 0 else "warning" if left <= 5 or sa.tally.max_rounds >= 3 else "info"
        add(sev, "retransmission rounds",
            f"worst burst #{b.get('index')} (seqno {b.get('seqno')}) needed {sa.tally.max_rounds} "
            f"of {ROUND_LIMIT} resend rounds" + (": the client gives up here" if left <= 0 else
                                                  f", {left} to spare"))
    if sa.ledger.never_acked.count:
        add("warning", "never acknowledged",
            f"{sa.ledger.never_acked.count} messages never ACKed in the capture, e.g. " +
            ", ".join(f"{t} seq {s} (frame {f})" for f, t, s in sa.ledger.never_acked.items[:3]))
    spurious = sum(sa.resends.spurious)
    if spurious:
        add("warning", "spurious retransmissions",
            f"{spurious} resends of messages whose ACK was already captured: "
            "ACKs lost or late between the capture point and the client")
    needed = sum(sa.resends.needed)
    if needed:
        add("info", "needed retransmissions",
            f"{needed} resends of messages with no ACK captured before them")
    if sa.ledger.acks_unseen.count:
        add("warning", "acks for unseen messages",
            f"{sa.ledger.acks_unseen.count} ACKs for seqnos the capture never showed being sent "
            f"(capture loss on the client->server side), e.g. frames {_frames(sa.ledger.acks_unseen.items)}")
    if sa.ledger.acks_bad_port.count:
        add("warning", "acks from unexpected port",
            f"{sa.ledger.acks_bad_port.count} ACKs not from server port {sa.server_port}, e.g. "
            f"frames {_frames(sa.ledger.acks_bad_port.items)}")
    if sa.ledger.acks_future.count:
        add("warning", "acks too far in future",
            f"{sa.ledger.acks_future.count} ACKs >= 64 past their burst's first seqno: the client "
            f"prints 'ACK too far in future' and ignores them")
    if sa.ledger.dup_unexplained:
        add("info", "unexplained duplicate acks",
            f"{sa.ledger.dup_unexplained} duplicate ACKs beyond one per copy sent")
    if sa.stalls.count:
        long = sa.stalls.longest.items()[0]
        add("warning", "stalls",
            f"{sa.stalls.count} gaps over {sa.stall_threshold / 1e9:g}s in the client's sending, "
            f"{sa.stalls.time / 1e9:.3f}s in total; longest {long['duration']:.3f}s at "
            f"frame {long['frame']}: {long['cause']}")
    if sa.resends.outside:
        add("info", "retransmissions outside a burst",
            f"{sa.resends.outside} resends of seqnos from an already finished burst")
    if sa.ledger.late_acks:
        add("info", "late acks", f"{sa.ledger.late_acks} ACKs arrived after the client moved on")
    out.sort(key=lambda p: SEVERITY[p["severity"]])
    return out



ADVICE_ROUNDS = 3  # a worst burst this close to the round limit: suggest more retries


def advice(sa: SessionAudit, candidates: list[str]) -> list[dict]:
    """What to do about what the audit found: ``{"kind", "text"}`` each."""
    out: list[dict] = []
    if sa.tally.max_rounds and ROUND_LIMIT - sa.tally.max_rounds <= ADVICE_ROUNDS:
        if candidates == ["12.x"]:
            knob = "net.netdump.retries"
        elif "12.x" not in candidates:
            knob = "debug.debugnet.nretries (net.netdump.retries is its alias)"
        else:
            knob = "net.netdump.retries on 12.x, debug.debugnet.nretries on 13.0 and later"
        out.append({"kind": "raise retries", "text":
                    f"the worst burst needed {sa.tally.max_rounds} of {ROUND_LIMIT} resend rounds: "
                    f"raise {knob} on the client (default 10) so that a bad patch of the "
                    "network does not abort the dump"})
    big = max(sa.max_payload[VMCORE], sa.max_payload[KEY])
    if big > 4096:
        out.append({"kind": "use a 1500 MTU", "text":
                    f"payloads of {big} bytes (a jumbo MTU): netdumpd takes at most 4096 and "
                    "never ACKs larger ones; the client must dump through an interface with a "
                    "1500-byte MTU"})
    spurious = sum(sa.resends.spurious)
    if spurious:
        out.append({"kind": "find the lost acks", "text":
                    f"{spurious} resends although the capture holds the ACK: the ACKs were lost "
                    "after the capture point, on the way to the client. Capture at the client's "
                    "side as well (a mirror port next to it) to tell a network loss from one "
                    "in the client's NIC"})
    unanswered = sum(sa.resends.needed) - sum(sa.resends.hidden)
    if unanswered:
        out.append({"kind": "find the missing acks", "text":
                    f"{unanswered} resends of messages the capture shows but with no ACK "
                    "captured before them: if this capture was taken on the server, netdumpd "
                    "did not answer in time or its ACKs were dropped on the server host before "
                    "the capture point; a capture next to the client shows whether the data "
                    "reached the server's network at all"})
    return out
