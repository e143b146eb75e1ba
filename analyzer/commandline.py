"""What the commands share: options, sizes, the report's emission, the progress bar."""
from __future__ import annotations

import sys

import click


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in units and not t[-1:].isdigit() else ""
    number = t[: len(t) - len(unit)]
    if not number.isdigit():
        raise click.BadParameter(f"{text!r} is not a size such as 1T, 512G or 1048576")
    return int(number) * units[unit]


class _Progress:
    """The reader's batches, moving a progress bar (standard error, a terminal only) by the
    bytes read."""

    def __init__(self, reader):
        self.reader = reader
        self.bar = click.progressbar(length=max(1, reader.total_bytes), label="reading",
                                     file=sys.stderr, show_eta=True)

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def batches(self):
        done = 0
        for batch in self.reader.batches():
            now = self.reader.bytes_read
            self.bar.update(now - done)
            done = now
            yield batch


def progress_for(enabled: bool):
    """The ``progress`` argument of :func:`analyzer.pipeline.run_analysis`."""
    return _Progress if enabled and sys.stderr.isatty() else None


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
                        callback=lambda ctx, p, v: parse_size(v),
                        help="Refuse data at offsets past this size.")
merge_opt = click.option("--merge", is_flag=True,
                         help="The captures are simultaneous views of the same traffic from "
                              "different points (commas join one view's ring-buffer files).")
