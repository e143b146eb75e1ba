"""The vantage table on the terminal (``audit --merge``), drawn from the JSON "vantage"."""
from __future__ import annotations

from rich import box
from rich.table import Table


def vantage_table(session: dict) -> Table | None:
    v = session.get("audit", {}).get("vantage")
    if v is None:
        return None
    tx = v["transmissions"]
    views = {x["capture"]: x for x in session.get("views", [])}
    t = Table(title=f"Capture points of dump {session['id']}, client side first",
              caption=f"{tx['total']} client transmissions: {tx['seen_by_all']} seen at every "
                      f"point, {tx['seen_by_none']} at none",
              title_justify="left", caption_justify="left", title_style="bold",
              box=box.SIMPLE_HEAD, pad_edge=False)
    for col, right in (("#", True), ("capture", False), ("clock offset (s)", True),
                       ("saw", True), ("tap drops", True), ("lost after it", True),
                       ("own missing bytes", True)):
        t.add_column(col, justify="right" if right else "left", overflow="fold",
                     no_wrap=col == "capture")
    lost = {x["from"]: x["count"] for x in v["lost_between"]}
    for i, name in enumerate(v["order"], 1):
        own = views.get(name, {})
        missing = sum(b - a for a, b in own.get("missing", []))
        offset = own.get("clock_offset_s")
        t.add_row(str(i), name, "-" if offset is None else f"{offset:+.6f}",
                  str(tx["seen_by"].get(name, 0)), str(v["tap_drops"].get(name, 0)),
                  str(lost.get(name, 0)), f"{missing:,}")
    return t


def render_vantage(report: dict, console) -> None:
    for s in report.get("sessions", []):
        table = vantage_table(s)
        if table is not None:
            console.print(table)
