"""The ``netdump-analyzer`` command line.

Exit status: 0 every dump found is complete, 3 at least one is incomplete, 1 the capture
(or the output directory) cannot be used at all, 2 usage errors. Errors are one line.
"""
from __future__ import annotations

import os
import sys
from contextlib import nullcontext

import click

from analyzer import __version__

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


class Failure(Exception):
    """A one-line error for the user; the run stops with ``code``."""

    def __init__(self, message: str, code: int = EXIT_UNREADABLE):
        super().__init__(message)
        self.code = code


def _parse_size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in units and not t[-1:].isdigit() else ""
    number = t[: len(t) - len(unit)]
    if not number.isdigit():
        raise click.BadParameter(f"{text!r} is not a size such as 1T, 512G or 1048576")
    return int(number) * units[unit]


def run_analysis(captures: tuple[str, ...], outdir: str | None, json_out: str | None,
                 max_dump_size: int, sinks: tuple = (), quiet: bool = False,
                 progress: bool = False,
                 verify_checksums: bool = True) -> tuple[object, dict, int]:
    """Read the captures through the whole pipeline; returns (analysis, report, exit code)."""
    from analyzer.capture import CaptureError, open_captures
    from analyzer.pipeline import Analysis
    from analyzer.recovery.writer import WriteError
    from analyzer.report import build_report

    paths, unreadable = _readable(list(captures), CaptureError, open_captures)
    if not paths:
        raise Failure(unreadable[0][1])
    reader = open_captures(paths, verify_checksums=verify_checksums)
    try:
        analysis = Analysis(outdir, max_dump_size, sinks)
    except WriteError as exc:
        raise Failure(str(exc)) from None
    error = None
    bar = _progress(reader, progress and not quiet)
    try:
        with bar or nullcontext():
            analysis.run(_Ticking(reader, bar) if bar else reader)
    except KeyboardInterrupt:
        # Interrupted: the data stays in *.part files and every info file still says
        # "Dump incomplete"; nothing is renamed to look finished.
        analysis.abort()
        raise
    except CaptureError as exc:
        error = str(exc)
    except WriteError as exc:
        error = str(exc)
    except OSError as exc:
        error = f"{exc.filename or 'output'}: {exc.strerror}"
    except Exception:
        analysis.finish()  # an internal error still ends the dumps read so far
        raise
    analysis.finish()
    report = build_report(_with_unreadable(captures, reader.captures, unreadable),
                          analysis.records, analysis.recovery.capture_anomalies)
    if unreadable and not error:
        error = "; ".join(msg for _path, msg in unreadable)
    if error:
        report["error"] = error
    if error:
        code = EXIT_UNREADABLE
    elif any(s["status"] != "complete" for s in report["sessions"]):
        code = EXIT_INCOMPLETE
    else:
        code = EXIT_OK
    return analysis, report, code


def _progress(reader, enabled: bool):
    if not enabled or not sys.stderr.isatty():
        return None
    return click.progressbar(length=max(1, reader.total_bytes), label="reading",
                             file=sys.stderr, show_eta=True)


def _readable(paths: list[str], capture_error, open_captures) -> tuple[list, list]:
    """Split the files into those that open and those that cannot be read at all, so one
    bad file of a ring buffer does not cost the dumps in the others."""
    try:
        open_captures(paths)
        return paths, []
    except capture_error:
        pass
    good, bad = [], []
    for path in paths:
        try:
            open_captures([path])
            good.append(path)
        except capture_error as exc:
            bad.append((path, str(exc)))
    return good, bad


def _with_unreadable(paths, captures: list[dict], unreadable: list) -> list[dict]:
    """The report's capture list in the order given, unreadable files included."""
    errors = dict(unreadable)
    read = iter(captures)
    return [{"path": p, "frames": 0, "truncated": False, "error": errors[p]} if p in errors
            else next(read) for p in paths]


class _Ticking:
    """The reader's batches, moving the progress bar by the bytes read."""

    def __init__(self, reader, bar):
        self.reader, self.bar = reader, bar

    def batches(self):
        done = 0
        for batch in self.reader.batches():
            now = self.reader.bytes_read
            self.bar.update(now - done)
            done = now
            yield batch


def emit_report(report: dict, json_out: str | None, records, quiet: bool) -> None:
    from analyzer.report import summary_line, write_json

    lines_to = sys.stderr if json_out == "-" else sys.stdout
    if not quiet:
        for rec in records:
            click.echo(summary_line(rec), file=lines_to)
        if not records:
            click.echo("no netdump sessions found", file=sys.stderr)
        for a in report.get("anomalies", [])[:20]:
            click.echo(f"capture: {a['kind']} at frame {a['frame']}: {a['detail']}",
                       file=sys.stderr)
    if "error" in report:
        click.echo(f"error: {report['error']}", file=sys.stderr)
    if json_out:
        if json_out == "-":
            write_json(report, sys.stdout)
        else:
            with open(json_out, "w", encoding="utf-8") as f:
                write_json(report, f)


captures_arg = click.argument("captures", nargs=-1, required=True,
                              type=click.Path(dir_okay=False))
json_opt = click.option("--json", "json_out", metavar="REPORT",
                        help="Write the JSON report to REPORT ('-' for standard output).")
quiet_opt = click.option("--quiet", "-q", is_flag=True, help="No per-dump lines, no progress bar.")
verify_opt = click.option("--no-verify-checksums", "no_verify", is_flag=True,
                          help="Do not verify IPv4/UDP checksums (faster; a corrupted "
                               "datagram is then taken as it is).")
size_opt = click.option("--max-dump-size", default="1T", show_default=True,
                        callback=lambda ctx, p, v: _parse_size(v),
                        help="Refuse data at offsets past this size.")


class _LazyGroup(click.Group):
    """Commands from other modules are imported only when named (start-up stays small)."""

    lazy = {"audit": ("analyzer.audit.command", "audit_command"),
            "messages": ("analyzer.audit.command", "messages_command"),
            "simulate": ("analyzer.simulate.command", "simulate_command"),
            "wireshark": ("analyzer.wireshark", "wireshark_group")}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            module, attr = self.lazy[name]
            self.add_command(getattr(__import__(module, fromlist=[attr]), attr), name)
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netdump-analyzer")
def cli() -> None:
    """Recover FreeBSD netdump crash dumps from packet captures, and audit the transfer."""


@cli.command()
@captures_arg
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
              help="Directory to write the dumps into (created if missing).")
@json_opt
@size_opt
@verify_opt
@quiet_opt
def extract(captures, outdir, json_out, max_dump_size, no_verify, quiet):
    """Write every dump found in CAPTURES as netdumpd would have saved it."""
    analysis, report, code = run_analysis(captures, outdir, json_out, max_dump_size,
                                          quiet=quiet, progress=True,
                                          verify_checksums=not no_verify)
    emit_report(report, json_out, analysis.records, quiet)
    sys.exit(code)


@cli.command()
@captures_arg
@json_opt
@size_opt
@verify_opt
@quiet_opt
def summary(captures, json_out, max_dump_size, no_verify, quiet):
    """The same analysis as extract, writing no dump files."""
    analysis, report, code = run_analysis(captures, None, json_out, max_dump_size,
                                          quiet=quiet, progress=True,
                                          verify_checksums=not no_verify)
    emit_report(report, json_out, analysis.records, quiet)
    sys.exit(code)


def _raise_file_limit() -> None:
    """Each open dump holds a file or two; let many clients dump at once."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096 and (hard == resource.RLIM_INFINITY or hard > soft):
            limit = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def main() -> None:
    _raise_file_limit()
    try:
        cli.main(standalone_mode=False, prog_name="netdump-analyzer")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # One line, like every other error: what is wrong, and where help is.
        where = exc.ctx.command_path if exc.ctx is not None else "netdump-analyzer"
        click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted: the data read so far is in *.part files; "
                   "their info files say Dump incomplete", err=True)
        sys.exit(130)
    except Failure as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.code)
    except BrokenPipeError:
        sys.exit(EXIT_UNREADABLE)
    except Exception as exc:  # one line, never a traceback; NETDUMP_ANALYZER_DEBUG shows it
        if os.environ.get("NETDUMP_ANALYZER_DEBUG"):
            raise
        click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
