"""The ``audit`` and ``messages`` commands (registered lazily by :mod:`analyzer.cli`)."""
from __future__ import annotations

import sys

import click

from analyzer.commandline import emit_report, merge_opt, parse_size, progress_for
from analyzer.exits import EXIT_USAGE, Failure

_captures = click.argument("captures", nargs=-1, required=True,
                           type=click.Path(dir_okay=False))
_size = click.option("--max-dump-size", default="1T", show_default=True,
                     help="Refuse data at offsets past this size.")


@click.command("audit")
@_captures
@click.option("--json", "json_out", metavar="REPORT",
              help="Write the JSON report, with an \"audit\" object per dump, to REPORT "
                   "('-' for standard output).")
@click.option("--plot", "plot_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="Write PNG plots per dump into DIR (needs matplotlib).")
@click.option("--csv", "csv_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="Write one CSV per dump into DIR: a row per message and per ACK.")
@click.option("--stall-threshold", default=0.5, show_default=True, type=float,
              metavar="SECONDS", help="Report gaps in the client's sending longer than this.")
@_size
@click.option("--quiet", "-q", is_flag=True, help="No terminal report, no progress bar.")
@merge_opt
def audit_command(captures, json_out, plot_dir, csv_dir, stall_threshold, max_dump_size,
                  quiet, merge):
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
    try:
        limit = parse_size(max_dump_size)
    except click.BadParameter as exc:
        raise click.BadParameter(str(exc.message), param_hint="--max-dump-size") from None
    sink = AuditSink(stall_threshold, plot=bool(plot_dir), csv_dir=csv_dir)
    vantage = None
    if merge:
        from analyzer.merge.run import run_merge
        analysis, report, code, vantage = run_merge(captures, None, limit, sinks=(sink,),
                                                    progress=progress_for(not quiet),
                                                    vantage=True)
    else:
        from analyzer.pipeline import run_analysis
        analysis, report, code = run_analysis(captures, None, limit, sinks=(sink,),
                                              progress=progress_for(not quiet))
    sink.add_to_report(report)
    if vantage:
        vantage.add_to_report(report)
    if not quiet:
        from rich.console import Console

        from analyzer.audit.render import render_report
        to_stderr = json_out == "-"
        render_report(report, Console(stderr=to_stderr, soft_wrap=False))
        if vantage:
            from analyzer.merge.render import render_vantage
            render_vantage(report, Console(stderr=to_stderr, soft_wrap=False))
    emit_report(report, json_out, analysis.records, quiet=True)
    if plot_dir:
        from analyzer.audit.plots import write_plots
        written = write_plots(sink, report, plot_dir)
        if not quiet:
            click.echo(f"plots: {len(written)} PNG files in {plot_dir}", err=True)
    sys.exit(code)


@click.command("messages")
@_captures
@click.option("--client", metavar="IP", help="Only dumps from this client address.")
@click.option("--dump", type=int, metavar="N", help="Only dump N (the report's session id).")
@click.option("--frames", metavar="A-B", help="Only frames A to B (A-, -B and A work too).")
@_size
def messages_command(captures, client, dump, frames, max_dump_size):
    """List every netdump message and ACK, one line each, with retransmission and ACK notes."""
    from analyzer.audit.messages import MessageLister, parse_frames
    try:
        span = parse_frames(frames)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--frames") from None
    lister = MessageLister(sys.stdout, client=client, dump=dump, frames=span)
    from analyzer.pipeline import run_analysis
    _analysis, report, code = run_analysis(captures, None, parse_size(max_dump_size),
                                           sinks=(lister,))
    if "error" in report:
        click.echo(f"error: {report['error']}", err=True)
    sys.exit(code)
