"""The JSON report and the one-line-per-dump summary, built from recovery records.

The top-level shape is a contract (later versions add keys, never rename them):
``{"captures": [...], "sessions": [...]}``; see README "The JSON report".
"""
from __future__ import annotations

import json
from typing import IO, Iterable

from analyzer.anomalies import Kind
from analyzer import __version__
from analyzer.recovery.dump import DumpRecord


def _seconds(ns: int) -> float:
    return round(ns / 1e9, 9)


def session_json(rec: DumpRecord) -> dict:
    kdh = rec.kdh
    key = None
    if rec.key.total or (kdh and kdh.get("dumpkeysize")):
        key = {"length": rec.key_length, "received": rec.key.total,
               "missing": [list(r) for r in rec.key_missing()]}
    out = {
        "id": rec.session,
        "client": rec.client,
        "server": rec.server,
        "server_port": rec.server_port,
        "herald_path": rec.herald_path,
        "herald_seen": rec.herald_seen,
        "status": "complete" if rec.complete else "incomplete",
        "end_reason": rec.end_reason,
        "first_frame": rec.first_frame,
        "last_frame": rec.last_frame,
        "start_time": _seconds(rec.first_ts),
        "end_time": _seconds(rec.last_ts),
        "messages": dict(rec.messages),
        "retransmits": rec.retransmits,
        "acks": rec.acks,
        "duplicate_acks": rec.duplicate_acks,
        "files": list(rec.files),
        "vmcore": {
            "length": rec.vmcore_length,
            "received": rec.vmcore.total,
            "sha256": rec.sha256,
            "missing": [list(r) for r in rec.vmcore_missing()],
        },
        "key": key,
        "kdh": kdh,
        "finished_frame": rec.finished_frame or None,
        "anomalies": list(rec.anomalies),
    }
    if rec.anomalies_dropped:
        out["anomalies_dropped"] = rec.anomalies_dropped
    return out


def build_report(captures: list[dict], records: Iterable[DumpRecord],
                 capture_anomalies: list[dict]) -> dict:
    return {
        "tool": {"name": "netdump-analyzer", "version": __version__},
        "captures": [dict(c) for c in captures],
        "sessions": [session_json(r) for r in records],
        "anomalies": list(capture_anomalies),
    }


def write_json(report: dict, stream: IO[str]) -> None:
    json.dump(report, stream, indent=2)
    stream.write("\n")


def _ranges(missing: list[tuple[int, int]], limit: int = 4) -> str:
    shown = ", ".join(f"[{a}, {b})" for a, b in missing[:limit])
    if len(missing) > limit:
        shown += f", ... ({len(missing) - limit} more)"
    return shown


def printable(text: str) -> str:
    """Text from the wire made safe for a terminal: control characters and undecodable
    bytes are shown as escapes, so a HERALD path cannot forge lines or move the cursor."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else
                   (f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF
                    else c.encode("unicode_escape").decode("ascii")) for c in text)


def summary_line(rec: DumpRecord) -> str:
    """One line a sysadmin can read: who, where, which files, and what is missing."""
    where = rec.herald_path if rec.herald_path is not None else "."
    head = f"dump {rec.session}: {rec.client} path={printable(where)}"
    size = rec.vmcore_length
    if rec.complete:
        state = f"complete, {size} bytes"
    else:
        missing = rec.vmcore_missing()
        lost = sum(b - a for a, b in missing)
        state = f"INCOMPLETE, {size - lost} of {size} bytes"
        if missing:
            state += f", missing {_ranges(missing)}"
        for kind, text in ((Kind.KDH_MISSING, "no KDH"), (Kind.FINISHED_MISSING, "no FINISHED")):
            if rec.has_anomaly(kind):
                state += f", {text}"
        key_missing = rec.key_missing()
        if key_missing:
            state += f", key missing {_ranges(key_missing)}"
    files = f" -> {', '.join(printable(f) for f in rec.files)}" if rec.files else ""
    return f"{head} {state}{files}"
