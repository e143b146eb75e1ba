"""``--merge``: the views read as one union through the unchanged pipeline, and the
report's per-session "views"."""
from __future__ import annotations

import os

from analyzer.exits import EXIT_USAGE, Failure
from analyzer.merge.clocks import estimate, path_order
from analyzer.merge.union import UnionSource
from analyzer.merge.views import View, parse_views
from analyzer.pipeline import Analysis, _readable, _with_unreadable, drive, exit_status

MATCH_SLACK_NS = 1_000_000_000  # a view's session may lie this far outside the union's


def _open(views: list[View], verify: bool) -> tuple[list[View], list]:
    from analyzer.capture import CaptureError, open_captures
    usable, unreadable = [], []
    for path in (p for v in views for p in v.paths):
        if path == "-" or (os.path.exists(path) and not os.path.isfile(path)):
            raise Failure(f"{path}: a --merge view is read twice (once for its clock), so it "
                          "must be a file, not standard input or a pipe", EXIT_USAGE)
    for v in views:
        good, bad = _readable(v.paths, CaptureError, open_captures)
        unreadable += bad
        if good:
            v.open(open_captures(good, verify_checksums=verify))
            usable.append(v)
    return usable, unreadable


def run_merge(captures: tuple[str, ...], outdir: str | None, max_dump_size: int,
              sinks: tuple = (), progress=None, verify_checksums: bool = True,
              vantage: bool = False, vantage_plot: bool = False):
    """Like :func:`analyzer.pipeline.run_analysis`, for simultaneous views; returns
    (analysis, report, exit code). With ``vantage``, ``analysis.vantage`` is the
    :class:`~analyzer.merge.vantage.VantageSink` (its ``add_to_report`` adds the table;
    with ``vantage_plot`` it also gathers the points of the vantage plot)."""
    from analyzer.capture import CaptureError
    from analyzer.recovery.writer import WriteError
    from analyzer.report import _anomalies, build_report, session_json

    views, unreadable = _open(parse_views(captures), verify_checksums)
    if not views:
        raise Failure(unreadable[0][1])
    for i, v in enumerate(views):
        v.index = i
    errors = [msg for _p, msg in unreadable]
    try:
        problems = estimate(views)
    except CaptureError as exc:
        raise Failure(str(exc)) from None
    order = path_order(views)
    source = UnionSource(views, order, max_dump_size)
    frames = source.frames
    extra = ()
    if vantage:
        from analyzer.merge.vantage import VantageSink
        extra = (VantageSink(source, order, vantage_plot),)
    try:
        analysis = Analysis(outdir, max_dump_size, (*sinks, *extra))
    except WriteError as exc:
        raise Failure(str(exc)) from None
    analysis.vantage = extra[0] if vantage else None
    analysis.frames = frames  # the audit's frames are the union's: placed with this map
    analysis.recovery.frames = frames
    try:
        error = drive(analysis, source, progress)
    finally:
        source.finish()
    if error:
        errors.append(error)
    analysis.finish()
    files = [c for v in views for c in v.reader.captures]
    paths = [p for spec in captures for p in spec.split(",") if p]
    report = build_report(_with_unreadable(paths, files, unreadable), [], [])
    report["sessions"] = [session_json(r, frames) for r in analysis.records]
    report["anomalies"] = _anomalies(analysis.recovery.capture_anomalies, frames) + \
        source.notices
    t0 = source.first_ts or 0
    report["views"] = [{"capture": v.name, "clock_offset_s": _seconds(v.clock.offset_at(t0)),
                        "clock_drift_ppm": round(v.clock.b * 1e6, 3),
                        "problem": next((p for p in problems if p.startswith(v.name + ":")),
                                        None)} for v in views]
    for s in report["sessions"]:
        s["views"] = _session_views(s, views, source)
    return analysis, report, exit_status(report, "; ".join(errors) or None)


def _session_views(session: dict, views: list[View], source: UnionSource) -> list[dict]:
    """Each view's own account of this dump: its frames and its own missing ranges, from
    its coverage-only analysis."""
    out = []
    start, end = round(session["start_time"] * 1e9), round(session["end_time"] * 1e9)
    for v in views:
        offset = v.clock.offset_at(start)
        rec = _nearest(source.side[v.index].records, session, start + offset, end + offset)
        if rec is None:
            length = session["vmcore"]["length"]
            entry = {"capture": v.name, "frames": 0, "missing": [[0, length]] if length else []}
        else:
            entry = {"capture": v.name, "frames": sum(rec.messages.values()) + rec.acks,
                     "missing": [list(r) for r in rec.vmcore_missing()]}
        entry["clock_offset_s"] = _seconds(offset)
        out.append(entry)
    return out


def _seconds(ns: float) -> float:
    return round(ns / 1e9, 9)


def _nearest(records, session: dict, start_ns: int, end_ns: int):
    """The view's record of the same client and server port overlapping the union's session
    most (both on the view's clock)."""
    best = None
    for rec in records:
        if rec.client != session["client"] or (
                session["server_port"] is not None and rec.server_port is not None
                and rec.server_port != session["server_port"]):
            continue
        overlap = min(rec.last_ts, end_ns) - max(rec.first_ts, start_ns)
        if overlap >= -MATCH_SLACK_NS and (best is None or overlap > best[0]):
            best = (overlap, rec)
    return best[1] if best else None


def run_either(merge: bool, captures: tuple[str, ...], outdir: str | None, max_dump_size: int,
               **kw):
    """run_analysis, or with ``merge`` run_merge: (analysis, report, exit code)."""
    if merge:
        return run_merge(captures, outdir, max_dump_size, **kw)
    kw.pop("vantage", None)
    kw.pop("vantage_plot", None)
    from analyzer.pipeline import run_analysis
    return run_analysis(captures, outdir, max_dump_size, **kw)
