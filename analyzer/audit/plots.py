"""PNG plots of an audited dump (matplotlib, the optional ``plot`` extra).

Per dump: a Stevens graph (VMCORE offset against time: first captured copies, resends and
ACKs in different marks, named and counted as in the audit's table, the missing byte ranges
shaded, HERALD/KDH/key/FINISHED as vertical lines), RTT over time,
and a burst timeline (time from each burst's first packet to its last ACK). The point
series come from :class:`~analyzer.audit.plotdata.PlotData`, already bounded.
"""
from __future__ import annotations

import os
import sys

MARKER_NAMES = {1: "HERALD", 2: "FINISHED", 4: "KDH", 5: "EKCD key"}
MARKER_COLORS = {1: "tab:green", 2: "tab:purple", 4: "tab:brown", 5: "tab:olive"}


class PlotUnavailable(Exception):
    pass


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib: pip install "
                              "'netdump-analyzer[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def check_available() -> None:
    _pyplot()


def _xy(points, t0: int, scale: float = 1.0):
    xs = [(t - t0) / 1e9 for t, _ in points]
    ys = [v * scale for _, v in points]
    return xs, ys


def _size_axis(ax, top: int) -> tuple[float, str]:
    for div, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if top >= 4 * div:
            return 1 / div, unit
    return 1.0, "bytes"


def _log_axis(ax, values) -> None:
    """Log scale only when the values span more than a decade; plain numbers either way."""
    from matplotlib.ticker import FuncFormatter
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo > 20:
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))


def _markers(ax, data, t0: int) -> None:
    seen = set()
    for ts, mtype, resend in data.markers:
        label = MARKER_NAMES.get(mtype, str(mtype))
        ax.axvline((ts - t0) / 1e9, color=MARKER_COLORS.get(mtype, "grey"),
                   linestyle=":" if resend else "--", linewidth=0.9, alpha=0.8,
                   label=None if (mtype, resend) in seen else
                   label + (" resend" if resend else ""))
        seen.add((mtype, resend))


def _save(plt, fig, path: str) -> str | None:
    """The PNG at ``path``, made new; a name already taken is left as it is (a warning)."""
    from analyzer.exits import Failure
    from analyzer.newfiles import create_exclusive

    try:
        fd = create_exclusive(path, 0o644)
    except Failure as exc:
        plt.close(fig)
        print(f"warning: --plot: {exc}", file=sys.stderr)
        return None
    fig.tight_layout()
    with os.fdopen(fd, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return path


def stevens(plt, data, title: str, path: str, t0: int, missing=()) -> str:
    """``missing``: the dump's byte ranges that no captured VMCORE frame holds, shaded."""
    tx, retx, acks = data.tx.points(), data.retx.all(), data.acks.points()
    top = max([v for _, v in tx + retx + acks] + [e for _s, e in missing] or [1])
    scale, unit = _size_axis(None, top)
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=100)
    if missing:
        lost = sum(e - s for s, e in missing)
        for i, (s, e) in enumerate(missing):
            ax.axhspan(s * scale, e * scale, color="tab:red", alpha=0.18, linewidth=0,
                       zorder=0, label=None if i else
                       f"missing ({lost:,} bytes in {len(missing):,} ranges)")
    small = len(tx) + len(acks) < 400
    if acks:
        x, y = _xy(acks, t0, scale)
        ax.plot(x, y, "_", color="tab:green", markersize=9 if small else 5,
                markeredgewidth=1 if small else 0.6, alpha=0.6, zorder=1,
                label=f"ACK ({data.acks.count:,})")
    if tx:
        x, y = _xy(tx, t0, scale)
        ax.plot(x, y, ".", color="tab:blue", markersize=6 if small else 2.5, zorder=2,
                label=f"first ({data.tx.count:,})")
    if retx:
        x, y = _xy(retx, t0, scale)
        n = len(data.retx.points) + data.retx.dropped
        # Thousands of resends would paint over the line: shrink and fade them as they grow.
        many = len(x) > 200
        size = 8 if not many else max(2.5, 8 * (200 / len(x)) ** 0.5)
        ax.plot(x, y, "x", color="tab:red", markersize=size,
                markeredgewidth=1.5 if not many else 0.7, alpha=1 if not many else 0.45,
                zorder=3 if not many else 1.5, label=f"retransmitted ({n:,})")
    _markers(ax, data, t0)
    ax.set_xlabel("time since first packet (s)")
    ax.set_ylabel(f"VMCORE offset ({unit})")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    if data.tx.width > 1000:
        fig.text(0.99, 0.01, f"decimated: min/max per {data.tx.width / 1e6:.3g} ms",
                 ha="right", fontsize=7, color="grey")
    return _save(plt, fig, path)


def _dots(plt, pts: list, t0: int, color: str, **kw):
    """A figure with one series of durations (ms) against time, as dots sized to their
    number: (fig, ax, the durations)."""
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    x, y = _xy(pts, t0, 1e-6)
    ax.plot(x, y, ".", color=color, markersize=3 if len(pts) > 300 else 6, **kw)
    return fig, ax, y


def rtt(plt, data, title: str, path: str, t0: int) -> str | None:
    pts = data.rtts.points()
    if not pts:
        return None
    fig, ax, y = _dots(plt, pts, t0, "tab:blue")
    _log_axis(ax, y)
    ax.set_xlabel("time since first packet (s)")
    ax.set_ylabel("RTT (ms)")
    ax.set_title(title + f": RTT of never-retransmitted messages ({data.rtts.count:,})")
    ax.grid(True, which="both", alpha=0.3)
    return _save(plt, fig, path)


def burst_timeline(plt, data, title: str, path: str, t0: int) -> str | None:
    pts = data.burst_time.points()
    if not pts:
        return None
    fig, ax, y = _dots(plt, pts, t0, "tab:grey", label=f"burst ({data.burst_time.count:,})")
    bad = data.burst_retx.all()
    if bad:
        bx = [(t - t0) / 1e9 for t, _ in bad]
        by = [v[0] / 1e6 for _, v in bad]
        rounds = [v[1] for _, v in bad]
        sc = ax.scatter(bx, by, c=rounds, cmap="autumn_r", vmin=1, vmax=11, s=30,
                        edgecolors="black", linewidths=0.4, zorder=3,
                        label="burst with resend rounds")
        fig.colorbar(sc, ax=ax, label="resend rounds (limit 11)")
    _log_axis(ax, y + ([v[0] / 1e6 for _, v in bad] if bad else []))
    ax.set_xlabel("burst start, time since first packet (s)")
    ax.set_ylabel("first packet to last ACK (ms)")
    ax.set_title(title + ": burst timeline")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return _save(plt, fig, path)


def write_plots(sink, report: dict, directory: str) -> list[str]:
    """Write the PNGs of every dump; returns their paths."""
    plt = _pyplot()
    os.makedirs(directory, exist_ok=True)
    out = []
    for s in report.get("sessions", []):
        sa = sink.sessions.get(s["id"])
        if sa is None or sa.plot is None:
            continue
        data = sa.plot
        title = f"dump {s['id']} from {s['client']}"
        stem = os.path.join(directory, f"dump-{s['id']}-{s['client']}")
        t0 = sa.start_ts
        missing = [tuple(r) for r in (s.get("vmcore") or {}).get("missing", [])]
        for p in (stevens(plt, data, title + ": offset vs time", stem + "-stevens.png", t0,
                          missing),
                  rtt(plt, data, title, stem + "-rtt.png", t0),
                  burst_timeline(plt, data, title, stem + "-bursts.png", t0)):
            if p:
                out.append(p)
    return out
