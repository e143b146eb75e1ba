"""The ``audit`` and ``messages`` commands (registered lazily by :mod:`analyzer.cli`)."""
from __future__ import annotations

import ipaddress
import sys

import click

from analyzer.commandline import (captures_arg, emit_report, follow_for, follow_opts, json_option,
                                  merge_opt, output_dir_option, progress_for, quiet_opt,
                                  size_opt)
from analyzer.exits import EXIT_USAGE, Failure, OutputClosed, interruptible


def _console(to_stderr: bool):
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich would exit 1; stop as the others do
            raise OutputClosed()

    return _Console(stderr=to_stderr, soft_wrap=False)


@click.command("audit")
@captures_arg
@json_option("Write the JSON report, with an \"audit\" object per dump, to REPORT "
             "('-' for standard output).")
@output_dir_option("--plot", "plot_dir", metavar="DIR",
                   help_text="Write PNG plots per dump into DIR (needs matplotlib).")
@output_dir_option("--csv", "csv_dir", metavar="DIR",
                   help_text="Write one CSV per dump into DIR: a row per message and per ACK.")
@click.option("--stall-threshold", default=0.5, show_default=True, type=float,
              metavar="SECONDS", help="Report gaps in the client's sending longer than this.")
@size_opt
@click.option("--quiet", "-q", is_flag=True, help="No terminal report, no progress bar.")
@merge_opt
@follow_opts
def audit_command(captures, json_out, plot_dir, csv_dir, stall_threshold, max_dump_size,
                  quiet, merge, follow, idle):
    """Audit the transfer of every dump: bursts, retransmissions, ACKs, RTT, stalls, checks."""
    from analyzer.audit.sink import AuditSink
    if plot_dir:
        from analyzer.audit.plots import PlotUnavailable, check_available
        try:
            check_available()
        except PlotUnavailable as exc:
            raise Failure(str(exc), EXIT_USAGE) from None
    if stall_threshold <= 0:
        raise click.BadParameter("must be above 0", param_hint="--stall-threshold")
    sink = AuditSink(stall_threshold, plot=bool(plot_dir), csv_dir=csv_dir)
    from analyzer.merge.run import run_either
    left = "no report was written" + (f"; the CSV files in {csv_dir} are partial"
                                      if csv_dir else "")
    with interruptible(left):
        analysis, report, code = run_either(merge, captures, None, max_dump_size, sinks=(sink,),
                                            progress=_watched(sink, progress_for(not quiet),
                                                              merge), vantage=merge,
                                            vantage_plot=bool(plot_dir),
                                            **follow_for(follow, idle, merge))
    sink.add_to_report(report)
    _frames_per_file(report, analysis.frames if merge else None)
    if merge:
        analysis.vantage.add_to_report(report)
    if not quiet:
        from analyzer.audit.render import render_report
        render_report(report, _console(to_stderr=json_out == "-"))
        if merge:
            from analyzer.merge.render import render_vantage
            render_vantage(report, _console(to_stderr=json_out == "-"))
    emit_report(report, json_out, analysis.records, quiet=True)
    if plot_dir:
        from analyzer.audit.plots import write_plots
        written = write_plots(sink, report, plot_dir)
        if merge:
            from analyzer.merge.plots import write_vantage_plots
            written += write_vantage_plots(analysis.vantage, sink, report, plot_dir)
        if not quiet:
            click.echo(f"plots: {len(written)} PNG files in {plot_dir}", err=True)
    sys.exit(code)


def _watched(sink, progress, merge: bool):
    """The ``progress`` hook, also handing the reader to the sink (its CSV rows then name
    each frame's file); a merged run's union source has no files to name."""
    if merge:
        return progress
    from contextlib import contextmanager, nullcontext

    @contextmanager
    def hook(reader):
        sink.watch(reader)
        with (progress(reader) if progress else nullcontext(reader)) as source:
            yield source
    return hook


def _frames_per_file(report: dict, frames=None) -> None:
    """The audit objects name frames as the rest of the report does: Wireshark's number
    within the file named beside it (``frames``: a merged run's map of union frames)."""
    from analyzer.framemap import FrameMap
    frames = frames or FrameMap(report["captures"])
    for s in report["sessions"]:
        if "audit" in s:
            s["audit"] = frames.renumber(s["audit"])


def _client(ctx, param, value):
    if value is None:
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IPv4 address") from None


def _frames(ctx, param, value):
    from analyzer.audit.messages import parse_frames
    try:
        return parse_frames(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("messages")
@captures_arg
@click.option("--client", metavar="IP", callback=_client,
              help="Only dumps from this client address.")
@click.option("--dump", type=click.IntRange(min=1), metavar="N",
              help="Only dump N (the report's session id).")
@click.option("--frames", "span", metavar="A-B", callback=_frames,
              help="Only frames A to B (A-, -B and A work too).")
@size_opt
def messages_command(captures, client, dump, span, max_dump_size):
    """List every netdump message and ACK, one line each, with retransmission and ACK notes.

    The exit status is that of the dumps shown: 3 if one of them is incomplete.
    """
    from analyzer.audit.messages import MessageLister
    from analyzer.pipeline import run_analysis
    lister = MessageLister(sys.stdout, client=client, dump=dump, frames=span)
    with interruptible("the listing above ends where the run stopped; no file was written"):
        _analysis, report, code = run_analysis(captures, None, max_dump_size, sinks=(lister,),
                                               progress=lister.watch)
    if "error" in report:
        click.echo(f"error: {report['error']}", err=True)
        sys.exit(code)
    _check_matched(lister, report, client, dump, span)
    lister.header()
    shown = [s for s in report["sessions"] if s["id"] in lister.wanted]
    sys.exit(3 if any(s["status"] != "complete" for s in shown) else 0)


def _check_matched(lister, report: dict, client, dump, span) -> None:
    """A filter that matches nothing in the capture is a usage error naming its value."""
    ids = [s["id"] for s in report["sessions"]]
    if dump is not None and dump not in ids:
        known = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
        raise click.BadParameter(f"no dump {dump} in the capture (dumps: {known or 'none'})",
                                 param_hint="--dump")
    if client is not None and client not in {s["client"] for s in report["sessions"]}:
        raise click.BadParameter(f"no dump from {client} in the capture",
                                 param_hint="--client")
    if (client is not None or dump is not None) and not lister.wanted:
        raise click.UsageError(f"no dump is both dump {dump} and from {client}")
    total = sum(c["frames"] for c in report["captures"])
    if span[0] > total:
        raise click.BadParameter(f"the capture has {total} frames, none from {span[0]} on",
                                 param_hint="--frames")
