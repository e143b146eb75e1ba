"""What the commands share: options, sizes, output checks, the report's emission, progress."""
from __future__ import annotations

import os
import sys
import time

import click

from analyzer.exits import Failure


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in units and not t[-1:].isdigit() else ""
    number = t[: len(t) - len(unit)]
    if not number.isdigit():
        raise click.BadParameter(f"{text!r} is not a size such as 1T, 512G or 1048576")
    return int(number) * units[unit]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # not reached


class _Progress:
    """The reader's batches, shown on standard error (a terminal only) as bytes done of the
    total, the read rate and the time left, redrawn at most a few times a second."""

    EVERY = 0.2  # seconds between two redraws

    def __init__(self, reader, stream=None):
        self.reader = reader
        self.stream = stream or sys.stderr
        self.total = max(1, reader.total_bytes)
        self.start = self.last = 0.0
        self.drawn = False

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        if self.drawn:  # leave the terminal as it was: the result lines follow
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        return False

    def line(self, done: int, now: float) -> str:
        elapsed = max(now - self.start, 1e-6)
        rate = done / elapsed
        left = (self.total - done) / rate if rate > 0 else 0.0
        mins, secs = divmod(int(left + 0.5), 60)
        return (f"reading {100 * done // self.total:3d}% {human_bytes(done)} of "
                f"{human_bytes(self.total)}, {human_bytes(rate)}/s, "
                f"{mins // 60}:{mins % 60:02d}:{secs:02d} left")

    def batches(self):
        for batch in self.reader.batches():
            now = time.monotonic()
            if not self.drawn or now - self.last >= self.EVERY:
                self.stream.write("\r" + self.line(self.reader.bytes_read, now) + "\x1b[K")
                self.stream.flush()
                self.drawn, self.last = True, now
            yield batch


def progress_for(enabled: bool):
    """The ``progress`` argument of :func:`analyzer.pipeline.run_analysis`."""
    return _Progress if enabled and sys.stderr.isatty() else None


# -- outputs, checked before any capture is read ----------------------------------------------

def check_output(path: str | None, option: str, directory: bool) -> None:
    """Refuse an output that cannot be written (exit 1), naming the path and the reason, so
    a run never ends in a write error after reading the whole capture. A directory is made
    when missing (its nearest existing parent must be writable); a report file's folder
    must exist."""
    if path is None or (path == "-" and not directory):
        return
    if not directory and os.path.isdir(path):
        raise Failure(f"{option} {path}: {path} is a directory")
    target = path if directory else (os.path.dirname(path) or ".")
    folder = _nearest(target)
    if not os.path.isdir(folder):
        raise Failure(f"{option} {path}: {folder} is a file, not a directory")
    if folder != target and not directory:
        raise Failure(f"{option} {path}: folder {target} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise Failure(f"{option} {path}: cannot write in {folder} (not writable)")
    if not directory and os.path.lexists(path):
        raise Failure(f"{option} {path}: {path} exists; not overwriting it")


def _nearest(path: str) -> str:
    """``path`` if it exists, else its nearest existing parent (as the user wrote it)."""
    probe = os.path.normpath(path)
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe) or "."
        if parent == probe:
            break
        probe = parent
    return probe


def _check_dir(option: str):
    def check(ctx, param, value):
        check_output(value, option, directory=True)
        return value
    return check


def _check_file(ctx, param, value):
    check_output(value, "--json", directory=False)
    return value


def _one_each(ctx, param, value):
    """The same file named twice (a path, a symlink or a hard link to it) is read once."""
    seen: dict[tuple[int, int], str] = {}
    kept = []
    for path in value:
        try:
            st = os.stat(path)
        except OSError:  # the reader says why it cannot be used
            kept.append(path)
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen and not os.path.isdir(path):
            click.echo(f"warning: {path} is the same file as {seen[key]}; reading it once",
                       err=True)
            continue
        seen.setdefault(key, path)
        kept.append(path)
    return tuple(kept)


def lines_stream(json_out: str | None, json_lines: str | None = None):
    """Where the per-dump lines go: standard error when a report takes standard output."""
    return sys.stderr if "-" in (json_out, json_lines) else sys.stdout


def emit_report(report: dict, json_out: str | None, records, quiet: bool,
                lines_printed: bool = False, line_notes: dict | None = None) -> None:
    """``line_notes``: text for a session's line, by session id (a line of its own when the
    dump's line was already printed as the dump ended)."""
    from analyzer.report import summary_line, write_json

    lines_to = lines_stream(json_out)
    notes = line_notes or {}
    if not quiet:
        for rec in records if not lines_printed else ():
            click.echo(summary_line(rec) + notes.get(rec.session, ""), file=lines_to)
        for session, note in notes.items() if lines_printed else ():
            if note:
                click.echo(f"dump {session}:{note}", file=lines_to)
        if not records:
            click.echo("no netdump sessions found", file=sys.stderr)
        several = len(report.get("captures", [])) > 1
        for a in report.get("anomalies", [])[:20]:
            where = f"frame {a['frame']}" + (f" of {a['file']}" if several and a.get("file")
                                             else "")
            click.echo(f"capture: {a['kind']} at {where}: {a['detail']}", file=sys.stderr)
    if "error" in report:
        click.echo(f"error: {report['error']}", file=sys.stderr)
    if json_out:
        if json_out == "-":
            write_json(report, sys.stdout)
        else:
            from analyzer.newfiles import create_exclusive

            with os.fdopen(create_exclusive(json_out, 0o644), "w", encoding="utf-8") as f:
                write_json(report, f)


captures_arg = click.argument("captures", nargs=-1, required=True, type=click.Path(),
                              callback=_one_each)


def json_option(help_text: str = "Write the JSON report to REPORT ('-' for standard output)."):
    return click.option("--json", "json_out", metavar="REPORT", callback=_check_file,
                        help=help_text)


def output_dir_option(*decls: str, help_text: str, **kw):
    """A directory option checked before the run (created when missing)."""
    kw.setdefault("metavar", "DIR")
    return click.option(*decls, type=click.Path(), callback=_check_dir(decls[0]),
                        help=help_text, **kw)


json_opt = json_option()


def follow_opts(command):
    """``--follow`` and ``--idle SECONDS``: read captures as they are written."""
    command = click.option(
        "--idle", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
        help="With --follow: stop after SECONDS without new data.")(command)
    return click.option(
        "--follow", is_flag=True,
        help="Keep reading captures still being written (as tail -f); a directory or glob "
             "is a ring buffer (dumpcap -b). Ends on SIGINT/SIGTERM or after --idle.")(command)


def follow_for(follow: bool, idle: float | None, merge: bool = False) -> dict:
    """The ``follow`` argument of ``run_analysis`` (the readers' follow state), if any."""
    if idle is not None and not follow:
        raise click.UsageError("--idle needs --follow")
    if not follow:
        return {}
    if merge:
        raise click.UsageError("--follow does not go with --merge (the views' clocks are "
                               "fitted over each whole view before the union)")
    from analyzer.capture.follow import Follow
    return {"follow": Follow(idle)}


quiet_opt = click.option("--quiet", "-q", is_flag=True, help="No per-dump lines, no progress bar.")
verify_opt = click.option("--no-verify-checksums", "no_verify", is_flag=True,
                          help="Do not verify IPv4/UDP checksums (faster; a corrupted "
                               "datagram is then taken as it is).")
size_opt = click.option("--max-dump-size", default="1T", show_default=True, metavar="SIZE",
                        callback=lambda ctx, p, v: parse_size(v),
                        help="Refuse data at offsets past this size.")
merge_opt = click.option("--merge", is_flag=True,
                         help="The captures are simultaneous views of the same traffic from "
                              "different points (commas join one view's ring-buffer files).")

json_lines_opt = click.option("--json-lines", "json_lines", metavar="FILE",
                              help="Append one JSON object per finished dump and per "
                                   "capture-level anomaly to FILE ('-' for standard output), "
                                   "each flushed at once.")
exec_opt = click.option("--exec", "exec_program", metavar="PROGRAM",
                        help="Run PROGRAM for each finished dump, as netdumpd's -i hook: "
                             "REASON IP HOSTNAME INFOFILE COREFILE.")
exec_timeout_opt = click.option("--exec-timeout", default=60.0, show_default=True,
                                type=click.FloatRange(min=0), metavar="SECONDS",
                                help="Kill a hook still running after this long.")
