"""The audit as a terminal report: rich tables, one section per dump, worst problems first.

Everything is drawn from the JSON "audit" object, so the screen and ``--json`` agree.
"""
from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from analyzer.framemap import FrameMap, frame_label

SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def secs(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1:
        return f"{v:.3f} s"
    if a >= 1e-3:
        return f"{v * 1e3:.3g} ms"
    return f"{v * 1e6:.3g} µs"


def size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def rate(v: float | None) -> str:
    return "-" if v is None else f"{size(v)}/s"


def _at(obj: dict, key: str = "frame", several: bool = False) -> str:
    """The frame ``obj[key]`` names, with its file (the key beside it) when the run read
    several files."""
    return frame_label(obj[key], obj.get("file" if key == "frame" else f"{key}_file"), several)


def _table(title: str, *cols: str, **kw) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
              pad_edge=False, **kw)
    for c in cols:
        justify = "right" if c.endswith(("#", "frame", "count", "s)")) or c in (
            "sent", "retransmitted", "needed", "spurious", "rounds", "packets", "bytes",
            "min", "median", "p95", "p99", "max", "duration", "seqno", "first") else "left"
        # a range (seqnos, offsets) stays on one line: folded, it reads as two numbers
        t.add_column(c, justify=justify, overflow="fold", no_wrap=c in ("seqno", "offset"))
    return t


def problems_table(a: dict) -> Table | Text:
    probs = a["problems"]
    if not probs:
        return Text("No problems found.", style="green")
    t = _table("Problems (worst first)", "severity", "what", "detail")
    for p in probs:
        t.add_row(Text(p["severity"], style=SEV_STYLE[p["severity"]]), p["kind"], p["detail"])
    return t


def advice_table(a: dict) -> Table | None:
    if not a.get("advice"):
        return None
    t = _table("What to do", "advice", "why")
    for x in a["advice"]:
        t.add_row(x["kind"], x["text"])
    return t


def timeline_table(a: dict, several: bool = False) -> Table:
    tl = a["timeline"]
    t0 = (tl["herald"] or tl["first_data"] or {}).get("time")
    t = _table("Timeline", "event", "frame", "time (s)")
    for key, label in (("herald", "HERALD"), ("first_data", "first VMCORE"), ("kdh", "KDH"),
                       ("key", "EKCD key"), ("finished", "FINISHED"),
                       ("finished_ack", "FINISHED ACK")):
        p = tl[key]
        if p is None and key == "finished" and tl.get("capture_cut"):
            t.add_row("capture cut", _at(tl["capture_cut"], several=several), "the file ends here")
            continue
        if p is None:
            t.add_row(label, "-", "not captured")
        else:
            rel = f"+{p['time'] - t0:.6f}" if t0 is not None else f"{p['time']:.6f}"
            t.add_row(label, _at(p, several=several), rel)
    return t


def transfer_table(a: dict) -> Table:
    tl, gen = a["timeline"], a["generation"]
    t = _table("Transfer", "measure", "value")
    t.add_row("outcome", a["outcome"])
    t.add_row("time to dump", secs(tl["time_to_dump"]))
    t.add_row("unique dump bytes", f"{tl['unique_bytes']:,} ({size(tl['unique_bytes'])})")
    t.add_row("goodput", rate(tl["goodput"]))
    t.add_row("wire throughput", f"{rate(tl['wire_throughput'])} "
                                 f"({size(tl['wire_bytes'])} incl. 42-byte frame headers)")
    t.add_row("client generation", Text(gen["guess"], style="bold"))
    for r in gen["reasons"]:
        t.add_row("", Text("• " + r, style="dim"))
    return t


def retrans_table(a: dict) -> Table:
    r = a["retransmissions"]
    t = _table(f"Retransmissions: {r['total']} ({r['needed']} needed, {r['spurious']} spurious)"
               f" in {r['rounds']} rounds; captured copies of sent seqnos: {r['captured']} "
               f"({r['network_duplicates']} network duplicates, {r['hidden']} resends seen "
               "first)", "type", "sent", "first", "retransmitted", "needed", "spurious")
    for name, v in r["by_type"].items():
        t.add_row(name, str(v["sent"]), str(v["first"]), str(v["retransmitted"]),
                  str(v["needed"]), str(v["spurious"]))
    to = r["timeout"]
    if to.get("count"):
        t.caption = (f"observed resend timeout: min {secs(to['min'])}, median "
                     f"{secs(to['median'])}, max {secs(to['max'])} (the client polls ≈1 s). "
                     + r["classification"])
        t.caption_justify = "left"
    return t


def bursts_table(a: dict) -> Group:
    b = a["bursts"]
    bt = b["time_to_last_ack"]
    head = _table(f"Bursts: {b['count']}", "measure", "value")
    sizes = sorted(b["packets_histogram"], key=lambda kv: -kv[1])[:6]
    head.add_row("packets per burst (most common)",
                 ", ".join(f"{n} pkts ×{c}" for n, c in sizes))
    bsizes = sorted(b["bytes_histogram"], key=lambda kv: -kv[1])[:6]
    head.add_row("bytes per burst (most common)",
                 ", ".join(f"{size(n)} ×{c}" for n, c in bsizes))
    if bt.get("count"):
        head.add_row("time to last ACK", f"min {secs(bt['min'])}, median {secs(bt['median'])}, "
                                         f"p99 {secs(bt['p99'])}, max {secs(bt['max'])}")
    head.add_row("resend rounds per burst",
                 ", ".join(f"{r}: {c}" for r, c in b["rounds_histogram"]))
    style = "red" if b["rounds_to_spare"] <= 0 else "yellow" if b["rounds_to_spare"] <= 5 else ""
    head.add_row("worst burst", Text(f"{b['max_rounds']} of {b['round_limit']} rounds "
                                     f"({b['rounds_to_spare']} to spare)", style=style))
    parts: list = [head]
    if b["worst"]:
        w = _table("Worst bursts", "#", "type", "seqno", "offset", "packets", "rounds",
                   "needed", "spurious", "time to last ACK", "timeouts")
        for x in b["worst"][:10]:
            w.add_row(str(x["index"]), x["type"], f"{x['seqno'][0]}-{x['seqno'][1]}",
                      f"{x['offset'][0]}-{x['offset'][1]}", str(x["packets"]),
                      str(x["rounds"]), str(x["needed"]), str(x["spurious"]),
                      secs(x["time_to_last_ack"]), ", ".join(secs(v) for v in x["timeouts"]))
        parts.append(w)
    return Group(*parts)


def acks_table(a: dict) -> Table:
    k = a["acks"]
    t = _table(f"ACKs: {k['total']}", "check", "count", "meaning")
    rows = [("duplicate", k["duplicate"], "netdumpd ACKs every copy; one per resend is normal"),
            ("duplicate beyond copies sent", k["duplicate_unexplained"],
             "duplicated by the network or the capture"),
            ("for messages never captured", k["for_unseen_messages"],
             "capture loss on the client->server side"),
            ("messages never ACKed", k["never_acknowledged"], "no ACK in the capture at all"),
            ("from an unexpected port", k["unexpected_port"], "not the session's server port"),
            ("too far in future (>= base+64)", k["too_far_in_future"],
             "the client ignores them"),
            ("late (after the burst moved on)", k["late"], "")]
    for name, n, meaning in rows:
        t.add_row(name, Text(str(n), style="yellow" if n and name != "duplicate" else ""),
                  meaning)
    return t


def rtt_table(a: dict) -> Group | Text:
    r = a["rtt"]
    if not r.get("count"):
        return Text("RTT: no never-retransmitted message was ACKed.", style="dim")
    t = _table(f"RTT, {r['count']} samples ({r['rule']}; {r['method']})",
               "min", "median", "p95", "p99", "max")
    t.add_row(*(secs(r[k]) for k in ("min", "median", "p95", "p99", "max")))
    h = _table("RTT histogram", "from", "to", "count", "")
    top = max(x["count"] for x in r["histogram"])
    for x in r["histogram"]:
        bar = "█" * max(1, round(30 * x["count"] / top))
        h.add_row(secs(x["from"]), secs(x["to"]), str(x["count"]), Text(bar, style="blue"))
    return Group(t, h)


def stalls_table(a: dict, several: bool = False) -> Table | Text:
    s = a["stalls"]
    if not s["count"]:
        return Text(f"Stalls: none over {secs(s['threshold'])}.", style="green")
    t = _table(f"Stalls over {secs(s['threshold'])}: {s['count']}, {secs(s['total_time'])} "
               "in total (longest first)", "duration", "after frame", "until frame",
               "burst", "cause")
    for x in s["longest"][:10]:
        t.add_row(secs(x["duration"]), _at(x, "after_frame", several), _at(x, several=several),
                  f"#{x['burst']}" if x["burst"] else "-", x["cause"])
    return t


def checks_table(a: dict) -> Table:
    t = _table("Protocol checks", "check", "result", "detail")
    for c in a["checks"]:
        ok = c["ok"]
        mark = Text("ok", style="green") if ok else Text("unknown", style="dim") \
            if ok is None else Text("FAIL", style="bold red")
        t.add_row(c["name"], mark, c["detail"])
    t.caption = a["not_visible"]
    t.caption_justify = "left"
    return t


def render_session(console: Console, session: dict, several: bool = False) -> None:
    a = session["audit"]
    port = session.get("server_port")
    title = (f"dump {session['id']}: {session['client']} -> {session['server']}"
             f"{':' + str(port) if port else ''}  [{session['status']}; {a['outcome']}]")
    console.print(Rule(Text(title, style="bold")))
    for part in (problems_table(a), advice_table(a), transfer_table(a),
                 timeline_table(a, several), retrans_table(a), bursts_table(a), acks_table(a),
                 rtt_table(a), stalls_table(a, several), checks_table(a)):
        if part is None:
            continue
        console.print(part)
        console.print()


def render_report(report: dict, console: Console | None = None) -> None:
    console = console or Console()
    sessions = [s for s in report.get("sessions", []) if "audit" in s]
    several = FrameMap(report.get("captures", [])).several
    if not sessions:
        console.print("no netdump sessions found")
    for s in sessions:
        render_session(console, s, several)
    for a in report.get("anomalies", [])[:20]:
        console.print(f"capture: {a['kind']} at frame {_at(a, several=several)}: {a['detail']}")
