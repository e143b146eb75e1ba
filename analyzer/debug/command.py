"""The ``decrypt``, ``decompress`` and ``inspect`` commands.

Exit status: 0 done (inspect: every dump complete and kgdb "ok"), 3 inspect found a dump
with missing bytes or a kgdb verdict other than "ok", 2 a wrong key, a key file that does
not match, a truncated key or a bad argument, 1 a file that cannot be read or written.
"""
from __future__ import annotations

import os
import sys

import click

from analyzer.newfiles import create_exclusive
from analyzer.exits import EXIT_INCOMPLETE, EXIT_OK

_private_key_opt = click.option("--private-key", "private_key", metavar="PEM",
                                type=click.Path(dir_okay=False),
                                help="The operator's RSA private key (PEM) that unwraps "
                                     "the dump key.")
_out_opt = click.option("-o", "--output", "out", metavar="OUT", type=click.Path(),
                        help="Where to write (a file, or a directory for the default name).")


def _done(derived, what: str) -> None:
    lost = sum(b - a for a, b in derived.missing)
    state = "complete" if not derived.missing else \
        f"{lost} bytes missing in {len(derived.missing)} ranges"
    click.echo(f"{what} {derived.path}: {derived.length} bytes, {state} "
               f"(map in {derived.path}.missing)")
    for note in derived.notes:
        click.echo(f"  {note}")


@click.command("decrypt")
@click.argument("vmcore", type=click.Path(dir_okay=False, exists=True))
@_private_key_opt
@click.option("--key", "key", metavar="KEYFILE", type=click.Path(dir_okay=False, exists=True),
              help="The dump's key file (default: key.<ip>.<N> beside VMCORE).")
@_out_opt
def decrypt_command(vmcore, private_key, key, out):
    """Decrypt an EKCD dump (AES-256-CBC or ChaCha20); holes stay holes."""
    from analyzer.debug.derive import decrypt_path
    if not private_key:
        raise click.UsageError("--private-key PEM is required")
    _done(decrypt_path(vmcore, private_key, key, out), "decrypted")


@click.command("decompress")
@click.argument("vmcore", type=click.Path(dir_okay=False, exists=True))
@_out_opt
def decompress_command(vmcore, out):
    """Decompress a gzip or zstd dump up to its first hole (and past it where provable)."""
    from analyzer.debug.derive import decompress_path
    _done(decompress_path(vmcore, out), "decompressed")


@click.command("inspect")
@click.argument("dumps", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--json", "json_out", metavar="REPORT",
              help="Write the JSON report to REPORT ('-' for standard output).")
def inspect_command(dumps, json_out):
    """What each dump holds, what was lost, and whether kgdb can open it."""
    from analyzer.debug.inspect import inspect_report, text_lines
    from analyzer.report import write_json
    report = inspect_report(dumps)
    lines_to = sys.stderr if json_out == "-" else sys.stdout
    for entry in report["dumps"]:
        for line in text_lines(entry):
            click.echo(line, file=lines_to)
    if json_out == "-":
        write_json(report, sys.stdout)
    elif json_out:
        with os.fdopen(create_exclusive(json_out), "w", encoding="utf-8") as f:
            write_json(report, f)
    bad = any(e["missing"] or e["kgdb"] != "ok" for e in report["dumps"])
    sys.exit(EXIT_INCOMPLETE if bad else EXIT_OK)
