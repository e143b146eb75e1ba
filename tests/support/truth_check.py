"""Compare an analyzer report (and the files it wrote) with the simulator's ground truth."""
from __future__ import annotations

import hashlib
from pathlib import Path


def pair_dumps(report: dict, truth: dict) -> list[tuple[dict, dict]]:
    """Match report sessions to truth dumps by client and order (a restart is a second dump)."""
    seen = [d for d in truth["dumps"] if d["capture"].get("client_frames", 1)]
    pairs = []
    by_client: dict[str, list[dict]] = {}
    for s in report["sessions"]:
        by_client.setdefault(s["client"], []).append(s)
    for d in seen:
        sessions = by_client.get(d["client"], [])
        assert sessions, f"no session found for {d['client']}"
        pairs.append((sessions.pop(0), d))
    leftovers = [s for rest in by_client.values() for s in rest]
    assert not leftovers, f"sessions the truth does not know: {leftovers}"
    return pairs


def expected_retransmits(dump: dict) -> int:
    """Captured client frames of a seqno seen before, from the per-packet record."""
    packets = dump.get("packets")
    if not packets:
        cap = dump["capture"]
        return cap["retransmissions_visible"] + cap["network_duplicates"]
    frames = sum(p["captured"] for p in packets)
    return frames - len({p["seqno"] for p in packets if p["captured"]})


def check(report: dict, truth: dict, outdir: Path | None = None) -> None:
    for session, dump in pair_dumps(report, truth):
        cap = dump["capture"]
        who = f"{dump['client']} attempt {dump.get('attempt')}"
        whole = cap["complete"] and cap["kdh_frames"] and cap["finished_frames"]
        assert session["status"] == ("complete" if whole else "incomplete"), who
        assert session["vmcore"]["missing"] == [list(r) for r in cap["missing"]], who
        assert session["vmcore"]["length"] == cap["length"], who
        assert session["messages"] == cap["counts"], who
        # A network duplicate arrives later than the first copy: by the report's definition it
        # is a retransmission; only a copy with the same timestamp (the capture's own) is not.
        assert session["retransmits"] == expected_retransmits(dump), who
        if outdir is None:
            continue
        vmcore = [f for f in session["files"] if "/vmcore" in "/" + f]
        assert len(vmcore) == 1, (who, session["files"])
        data = (outdir / vmcore[0]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == cap["recovered_vmcore_sha256"], who
        assert session["vmcore"]["sha256"] == cap["recovered_vmcore_sha256"], who
        if whole:
            # Byte-identical to what netdumpd saved: every file, same relative name.
            for rel, meta in truth["files"].items():
                if meta["dump"] == truth["dumps"].index(dump):
                    name = rel.rsplit("/", 1)[-1]
                    ours = [f for f in session["files"] if f.rsplit("/", 1)[-1] == name]
                    assert ours, (who, rel, session["files"])
                    got = hashlib.sha256((outdir / ours[0]).read_bytes()).hexdigest()
                    assert got == meta["sha256"], (who, rel)
