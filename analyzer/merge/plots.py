"""The vantage plot of ``audit --merge --plot``: the Stevens graph (VMCORE offset against
time) with each transmission marked by the capture points that saw it. Drawn beside the
audit's own plots, with their helpers, as ``dump-N-CLIENT-vantage.png``."""
from __future__ import annotations

import os

from analyzer.audit.plots import _pyplot, _save, _size_axis, _xy

MARKS = "ov^s<>Dph*"


def _label(ranks: int, names: list[str]) -> str:
    seen = [n for r, n in enumerate(names) if ranks >> r & 1]
    return "seen only at " + ", ".join(seen) if seen else "seen nowhere"


def vantage_plot(plt, s, names: list[str], title: str, path: str, t0: int) -> str:
    every = s.plot_all.points()
    some = sorted(s.plot_some.items())
    top = max([v for _, v in every] + [v for _, pts in some for _, v in pts.all()] or [1])
    scale, unit = _size_axis(None, top)
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=100)
    if every:
        x, y = _xy(every, t0, scale)
        ax.plot(x, y, ".", color="tab:grey", markersize=2.5, zorder=1,
                label=f"seen at every point ({s.plot_all.count:,})")
    for i, (ranks, pts) in enumerate(some):
        x, y = _xy(pts.all(), t0, scale)
        n = len(pts.points) + pts.dropped
        ax.plot(x, y, MARKS[i % len(MARKS)], markersize=6, fillstyle="none", zorder=2 + i,
                label=f"{_label(ranks, names)} ({n:,})")
    ax.set_xlabel("time since first packet (s)")
    ax.set_ylabel(f"VMCORE offset ({unit})")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    return _save(plt, fig, path)


def write_vantage_plots(vantage, audit, report: dict, directory: str) -> list[str]:
    """One PNG per dump; ``audit`` gives each dump's start time (the audit plots' origin)."""
    plt = _pyplot()
    os.makedirs(directory, exist_ok=True)
    names = [os.path.basename(v.name) for v in vantage.order]
    out = []
    for sess in report.get("sessions", []):
        s = vantage.sessions.get(sess["id"])
        sa = audit.sessions.get(sess["id"])
        if s is None or s.plot_all is None or sa is None:
            continue
        title = f"dump {sess['id']} from {sess['client']}: which capture points saw each packet"
        stem = os.path.join(directory, f"dump-{sess['id']}-{sess['client']}")
        written = vantage_plot(plt, s, names, title, stem + "-vantage.png", sa.start_ts)
        if written:
            out.append(written)
    return out
