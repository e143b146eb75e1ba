"""The ``netdump-analyzer`` command line.

Exit status: 0 every dump found is complete, 3 at least one is incomplete, 1 the capture
(or the output directory) cannot be used at all, 2 usage errors. Errors are one line.
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys

import click

from analyzer import __version__
from analyzer.commandline import (captures_arg, emit_report, exec_opt, exec_timeout_opt,
                                  follow_for, follow_opts, json_lines_opt, json_opt, lines_stream,
                                  merge_opt, output_dir_option, progress_for, quiet_opt, size_opt,
                                  verify_opt)
from analyzer.debug.ready import decompress_opt, private_key_opt
from analyzer.exits import (EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_UNREADABLE, EXIT_USAGE,
                            Failure, Interrupted, OutputClosed, interruptible)


class _LazyGroup(click.Group):
    """Commands from other modules are imported only when named (start-up stays small)."""

    lazy = {"audit": ("analyzer.audit.command", "audit_command"),
            "decompress": ("analyzer.debug.command", "decompress_command"),
            "decrypt": ("analyzer.debug.command", "decrypt_command"),
            "inspect": ("analyzer.debug.command", "inspect_command"),
            "messages": ("analyzer.audit.command", "messages_command"),
            "simulate": ("analyzer.simulate.command", "simulate_command"),
            "wireshark": ("analyzer.wireshark", "wireshark_group")}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            module, attr = self.lazy[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        # click would end a closed pipe with status 1; Unix tools end it as SIGPIPE does
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise OutputClosed() from None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netdump-analyzer")
def cli() -> None:
    """Recover FreeBSD netdump crash dumps from packet captures, and audit the transfer."""


def _analysis_opts(command):
    """The options extract and summary share, after their own outputs' (in --help order)."""
    for option in (decompress_opt, private_key_opt, follow_opts, merge_opt, quiet_opt,
                   verify_opt, size_opt):
        command = option(command)
    return command


def _analyse(merge, captures, outdir, max_dump_size, quiet, no_verify, live, follow, idle):
    """One run of extract or summary: (analysis, report, exit status)."""
    from analyzer.merge.run import run_either
    return run_either(merge, captures, outdir, max_dump_size, progress=progress_for(not quiet),
                      verify_checksums=not no_verify, **live.callbacks,
                      **follow_for(follow, idle, merge))


@cli.command()
@captures_arg
@output_dir_option("-o", "--output", "outdir", required=True,
                   help_text="Directory to write the dumps into (created if missing).")
@json_opt
@json_lines_opt
@exec_opt
@exec_timeout_opt
@_analysis_opts
def extract(captures, outdir, json_out, json_lines, exec_program, exec_timeout, max_dump_size,
            no_verify, quiet, merge, follow, idle, private_key, decompress):
    """Write every dump found in CAPTURES as netdumpd would have saved it."""
    from analyzer.debug.ready import ReadyStep, check_private_key, make_ready
    check_private_key(private_key)
    ready = ReadyStep(outdir, private_key, decompress)
    live = _live(merge, json_out, json_lines, quiet, exec_program, exec_timeout, outdir, ready)
    with interruptible(f"any data read so far is in *.part files in {outdir}; "
                       "their info files say Dump incomplete"):
        analysis, report, code = _analyse(merge, captures, outdir, max_dump_size, quiet,
                                          no_verify, live, follow, idle)
    live.close()
    notes = make_ready(report, outdir, private_key, decompress, ready.done)
    emit_report(report, json_out, analysis.records, quiet, lines_printed=not merge,
                line_notes=notes)
    sys.exit(code)


@cli.command()
@captures_arg
@json_opt
@json_lines_opt
@_analysis_opts
def summary(captures, json_out, json_lines, max_dump_size, no_verify, quiet, merge, follow, idle,
            private_key, decompress):
    """The same analysis as extract, writing no dump files."""
    from analyzer.debug.ready import check_private_key, summary_ready
    check_private_key(private_key)
    with interruptible("no report was written"), \
            summary_ready(private_key, decompress) as (outdir, finish, ready):
        live = _live(merge, json_out, json_lines, quiet, ready=ready)
        analysis, report, code = _analyse(merge, captures, outdir, max_dump_size, quiet,
                                          no_verify, live, follow, idle)
        notes = finish(report)
    live.close()
    emit_report(report, json_out, analysis.records, quiet, lines_printed=not merge,
                line_notes=notes)
    sys.exit(code)


def _live(merge, json_out, json_lines, quiet, exec_program=None, exec_timeout=60.0,
          outdir=None, ready=None):
    """The outputs made as each dump ends: its line, its JSON line, the exec hook."""
    from analyzer.outputs import LiveOutputs
    for option, value in (("--json-lines", json_lines), ("--exec", exec_program)):
        if merge and value:
            raise click.UsageError(f"{option} does not go with --merge (a merged run hands "
                                   "its dumps on only once every view is read)")
    if json_out == "-" and json_lines == "-":
        raise click.UsageError("--json - and --json-lines - cannot both take standard output")
    if exec_program and shutil.which(exec_program) is None:
        raise click.BadParameter(f"{exec_program!r} is not an executable program",
                                 param_hint="--exec")
    try:
        return LiveOutputs(None if quiet or merge else lines_stream(json_out, json_lines),
                           json_lines, exec_program, exec_timeout, outdir,
                           warn=lambda text: click.echo(f"warning: {text}", err=True),
                           live=not merge, ready=ready)
    except OSError as exc:
        raise Failure(f"{json_lines}: {exc.strerror}") from None


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


def _stop_quietly() -> None:
    """The reader of our output left (``| head``): end as Unix tools do, without a word, and
    without Python's "Exception ignored" when it flushes standard output at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_BROKEN_PIPE)


def main() -> None:
    _raise_file_limit()
    try:
        try:
            _dispatch()
        finally:  # what is still buffered goes now, where a closed pipe can be handled
            sys.stdout.flush()
    except (BrokenPipeError, OutputClosed):
        _stop_quietly()


def _dispatch() -> None:
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
    except Interrupted as exc:  # each command says what its interrupted output is
        click.echo(f"interrupted: {exc}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Failure as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.code)
    except (BrokenPipeError, OutputClosed):
        _stop_quietly()
    except Exception as exc:  # one line, never a traceback; NETDUMP_ANALYZER_DEBUG shows it
        if os.environ.get("NETDUMP_ANALYZER_DEBUG"):
            raise
        click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
