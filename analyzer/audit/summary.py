"""The "audit" object of one session in the JSON report (times in seconds)."""
from __future__ import annotations

from analyzer.audit import checks as _checks
from analyzer.audit.bursts import ROUND_LIMIT, VMCORE
from analyzer.audit.session import SessionAudit
from analyzer.audit.generation import guess
from analyzer.audit.stats import decade_edges
from analyzer.wire import TYPE_NAMES

NOT_VISIBLE = ("ARP is not visible: the capture readers yield UDP datagrams and ICMP "
               "port-unreachable messages only, so ARP retries cannot be audited")


def _point(p) -> dict | None:
    return {"frame": p[0], "time": p[1] / 1e9} if p else None


def _rate(nbytes: int, ns: int) -> float | None:
    return round(nbytes / (ns / 1e9), 1) if ns > 0 else None


def outcome(sa: SessionAudit) -> str:
    if sa.t_finished_ack is not None:
        return "finished"
    if sa.t_finished is not None:
        return "finished, never acknowledged"
    if sa.capture_cut is not None:
        return f"capture cut at frame {sa.capture_cut[0]}, mid-dump"
    if sa.end_reason == "restarted":
        return "abandoned: the client started a new dump"
    if sa.tally.max_rounds >= ROUND_LIMIT:
        return "aborted after 11 resend rounds"
    return "no FINISHED captured"


def timeline(sa: SessionAudit) -> dict:
    start = sa.t_herald or (sa.start_frame, sa.start_ts)
    end = sa.t_finished_ack or sa.t_finished or (sa.last_frame, sa.last_ts)
    total = end[1] - start[1]
    data_start = sa.t_data[1] if sa.t_data else start[1]
    data_end = sa.t_kdh[1] if sa.t_kdh else end[1]
    unique = sa.new_bytes[VMCORE]
    return {
        "herald": _point(sa.t_herald), "first_data": _point(sa.t_data),
        "kdh": _point(sa.t_kdh), "key": _point(sa.t_key), "finished": _point(sa.t_finished),
        "finished_ack": _point(sa.t_finished_ack),
        "capture_cut": {"frame": sa.capture_cut[0], "detail": sa.capture_cut[1]}
        if sa.capture_cut else None,
        "time_to_dump": total / 1e9,
        "data_time": (data_end - data_start) / 1e9,
        "unique_bytes": unique,
        "udp_bytes": sa.udp_bytes,
        "wire_bytes": sa.udp_bytes + 42 * sum(sa.sent),
        "goodput": _rate(unique, total),
        "wire_throughput": _rate(sa.udp_bytes + 42 * sum(sa.sent), total),
    }


def _hist(d: dict) -> list[list[int]]:
    return [[k, d[k]] for k in sorted(d)]


def bursts(sa: SessionAudit) -> dict:
    bb = dict(sa.tally.burst_bytes)
    other = bb.pop(-1, 0)
    out = {
        "count": sa.bursts,
        "vmcore": sa.tally.vm_bursts,
        "packets_histogram": _hist(sa.tally.burst_packets),
        "bytes_histogram": _hist(bb),
        "time_to_last_ack": sa.tally.burst_time.summary(),
        "rounds_histogram": _hist(sa.tally.rounds_hist),
        "max_rounds": sa.tally.max_rounds,
        "round_limit": ROUND_LIMIT,
        "rounds_to_spare": ROUND_LIMIT - sa.tally.max_rounds,
        "worst": sa.tally.worst.items(),
        "detection": "one burst per client send call: a new seqno starts one after a type "
                     "change, a resend round, a short tail packet, 64 KiB or an offset jump; "
                     "never while a packet of the burst has no ACK, inside a 4 KiB block, "
                     "or where no dumper write begins (a compressed stream's 64 KiB chunks, "
                     "an amd64 minidump's sections); a resend of the previous burst's packet "
                     "a poll timeout later joins the two; where only timing can tell "
                     "(payloads that divide 4096), after a pause within the client's "
                     "turnaround seen elsewhere in the dump (from the last ACK, or without "
                     "ACKs from the last packet), or else well past the link's packet spacing",
    }
    if other:
        out["bytes_histogram_other"] = other
    return out


def retransmissions(sa: SessionAudit) -> dict:
    rs = sa.resends
    by_type = {}
    for t in range(1, 6):
        if sa.sent[t]:
            by_type[TYPE_NAMES[t]] = {"sent": sa.sent[t], "first": sa.new[t],
                                      "retransmitted": rs.retx[t], "needed": rs.needed[t],
                                      "spurious": rs.spurious[t]}
    return {"total": sum(rs.retx), "needed": sum(rs.needed), "spurious": sum(rs.spurious),
            "by_type": by_type, "rounds": rs.rounds,
            "timeout": rs.timeouts.summary(), "outside_burst": rs.outside,
            "network_duplicates": rs.net_dups,
            "captured": rs.captured,
            "hidden": sum(rs.hidden), "hidden_rounds": rs.hidden_rounds,
            "classification": "needed = no ACK for the seqno captured before the resend; "
                              "spurious = an ACK was already captured; a copy sooner than "
                              "half the client's poll timeout after the previous one, with the "
                              "same bytes, is a network duplicate, not a resend; captured = "
                              "every captured copy of an already-sent seqno (total − hidden + "
                              "network_duplicates), as the report's retransmits counts; "
                              "hidden = resends whose earlier copies never reached the "
                              "capture point (told by timing or by an ACK before them); the "
                              "dump's first captured frame has nothing before it to be timed "
                              "against, so whether it was a resend is not known: it counts "
                              "as the first captured copy it is, and not among the resends"}


def acks(sa: SessionAudit) -> dict:
    return {
        "total": sa.ledger.acks, "duplicate": sa.ledger.dup_acks,
        "duplicate_unexplained": sa.ledger.dup_unexplained,
        "for_unseen_messages": sa.ledger.acks_unseen.count,
        "for_unseen_messages_frames": [f for f, _ in sa.ledger.acks_unseen.items],
        "never_acknowledged": sa.ledger.never_acked.count,
        "never_acknowledged_examples": [{"frame": f, "type": t, "seqno": s}
                                        for f, t, s in sa.ledger.never_acked.items],
        "unexpected_port": sa.ledger.acks_bad_port.count,
        "unexpected_port_examples": [{"frame": f, "seqno": s, "port": p}
                                     for f, s, p in sa.ledger.acks_bad_port.items],
        "too_far_in_future": sa.ledger.acks_future.count,
        "too_far_in_future_examples": [{"frame": f, "seqno": s, "burst_base": b}
                                       for f, s, b in sa.ledger.acks_future.items],
        "late": sa.ledger.late_acks,
    }


def rtt(sa: SessionAudit) -> dict:
    d = sa.ledger.rtt
    out = d.summary()
    out["rule"] = "first transmission to first ACK, never-retransmitted messages only (Karn)"
    if d.count:
        out["histogram"] = d.histogram(decade_edges(d.min, d.max))
    return out


def stalls(sa: SessionAudit) -> dict:
    return {"threshold": sa.stall_threshold / 1e9, "count": sa.stalls.count,
            "total_time": sa.stalls.time / 1e9, "first": sa.stalls.first,
            "longest": sa.stalls.longest.items()}


def audit_json(sa: SessionAudit) -> dict:
    checks = _checks.protocol_checks(sa)
    gen = guess(sa)
    return {
        "outcome": outcome(sa),
        "timeline": timeline(sa),
        "generation": gen,
        "problems": _checks.problems(sa, checks),
        "advice": _checks.advice(sa, gen["candidates"]),
        "bursts": bursts(sa),
        "retransmissions": retransmissions(sa),
        "acks": acks(sa),
        "rtt": rtt(sa),
        "stalls": stalls(sa),
        "checks": checks,
        "not_visible": NOT_VISIBLE,
    }
