"""The JSON report and the one-line-per-dump summary, built from recovery records.

The top-level shape is a contract (later versions add keys, never rename them):
``{"captures": [...], "sessions": [...]}``; see README "The JSON report".
"""
from __future__ import annotations

import json
from typing import IO, Iterable

from analyzer.anomalies import Kind
from analyzer import __version__
from analyzer.framemap import FrameMap
from analyzer.recovery.dump import DumpRecord


def _seconds(ns: int) -> float:
    return round(ns / 1e9, 9)


def _anomalies(items: Iterable[dict], frames: FrameMap) -> list[dict]:
    """Anomalies with their frame numbered within its file, and that file beside it; so are
    the frames their details name."""
    retext = getattr(frames, "retext", None)
    out = []
    for a in items:
        path, n = frames.locate(a["frame"])
        out.append({**a, "frame": n, "file": path,
                    "detail": retext(a["detail"]) if retext else a["detail"]})
    return out


def session_json(rec: DumpRecord, frames: FrameMap | None = None) -> dict:
    """One session of the report; ``frames`` renumbers its frame references per file."""
    frames = frames or FrameMap([])
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
        "file": frames.locate(rec.first_frame)[0],  # where the dump starts
        "first_frame": frames.locate(rec.first_frame)[1],
        "first_frame_file": frames.locate(rec.first_frame)[0],
        "last_frame": frames.locate(rec.last_frame)[1],
        "last_frame_file": frames.locate(rec.last_frame)[0],
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
        "finished_frame": frames.locate(rec.finished_frame)[1] or None,
        "finished_frame_file": frames.locate(rec.finished_frame)[0],
        "anomalies": _anomalies(rec.anomalies, frames),
    }
    if rec.anomalies_dropped:
        out["anomalies_dropped"] = rec.anomalies_dropped
    return out


def build_report(captures: list[dict], records: Iterable[DumpRecord],
                 capture_anomalies: list[dict]) -> dict:
    """Frame numbers in the report are Wireshark's, within the file named beside them."""
    frames = FrameMap(captures)
    return {
        "tool": {"name": "netdump-analyzer", "version": __version__},
        "captures": [dict(c) for c in captures],
        "sessions": [session_json(r, frames) for r in records],
        "anomalies": _anomalies(capture_anomalies, frames),
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
        no_kdh = rec.kdh_raw is None
        if no_kdh:  # without the header nobody knows how long the dump was
            state = f"INCOMPLETE, {size - lost} bytes received, dump length unknown (no KDH)"
        else:
            state = f"INCOMPLETE, {size - lost} of {size} bytes"
        if missing:
            state += f", missing {_ranges(missing)}"
        if rec.has_anomaly(Kind.KDH_MISSING) and not no_kdh:
            state += ", no KDH"
        if rec.has_anomaly(Kind.FINISHED_MISSING):
            state += ", no FINISHED"
        if rec.cut_frame and not rec.finished_frame:
            state += f", capture cut at frame {rec.frames.label(rec.cut_frame)}"
        if rec.refused:
            state += ", data beyond --max-dump-size refused"
        key_missing = rec.key_missing()
        if key_missing:
            state += f", key missing {_ranges(key_missing)}"
    if rec.has_anomaly(Kind.PATH_REFUSED):
        saved = "saved" if rec.files else "would be saved"
        state += f", path '{printable(where)}' refused, {saved} in the output directory"
    files = f" -> {', '.join(printable(f) for f in rec.files)}" if rec.files else ""
    return f"{head} {state}{files}"
