"""After an extract run: each dump also written ready to debug, and inspected.

A post-processing step over the files the run wrote (never inside the core): with a private
key an encrypted dump is decrypted, with ``--decompress`` a compressed one is decompressed,
each to its own new file beside the netdumpd files, which stay exactly as they are. Every
dump readable as plain data is then inspected cheaply (header, msgbuf, bitmap, pmap) and the
result goes into the session's ``"inspect"``; an encrypted or compressed one left as it is
is only named there (its format, and why it was not read); null when there is no dump file.
A failure on one dump is that dump's problem, never the run's.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager

import click

from analyzer.exits import Failure

private_key_opt = click.option(
    "--private-key", "private_key", metavar="PEM", type=click.Path(dir_okay=False),
    help="RSA private key (PEM): also write each encrypted dump decrypted, as vmcore.<ip>.<N>.")
decompress_opt = click.option(
    "--decompress", is_flag=True,
    help="Also write each compressed dump decompressed, as vmcore.<ip>.<N>.")


def _dump_file(outdir: str, files: list[str]) -> tuple[str | None, bool]:
    """(the vmcore file of a session, whether it is encrypted)."""
    from analyzer.debug.files import parse_name
    names = {f: parse_name(f) for f in files}
    has_key = any(n and n.kind == "key" for n in names.values())
    for f, n in names.items():
        if n and n.kind in ("vmcore", "vmcore_encrypted"):
            # Without a KDH netdumpd never renames: a key file beside it tells.
            return os.path.join(outdir, f), n.kind == "vmcore_encrypted" or has_key
    return None, False


def _relative(outdir: str, path: str) -> str:
    return os.path.relpath(path, outdir)


def make_ready(report: dict, outdir: str, private_key: str | None = None,
               decompress: bool = False) -> dict[int, str]:
    """Derive and inspect each session's dump in place; returns a note per session id for its
    summary line (the panic and version when the capture had no KDH)."""
    from analyzer.debug.compressed import stream_kind
    from analyzer.debug.derive import decompress_path, decrypt_path
    from analyzer.debug.inspect import inspect_path
    notes: dict[int, str] = {}
    for session in report["sessions"]:
        path, encrypted = _dump_file(outdir, session.get("files", []))
        session["inspect"] = None
        if path is None or not os.path.isfile(path):
            continue
        problems: list[str] = []
        try:
            if encrypted and private_key:
                path = _derive(session, outdir, decrypt_path(path, private_key))
                encrypted = False
            if not encrypted and decompress:
                with open(path, "rb") as f:
                    if stream_kind(f.read(4)):
                        path = _derive(session, outdir, decompress_path(path))
        except Failure as exc:
            problems.append(str(exc))
        try:
            entry = inspect_path(path, encrypted=encrypted, decode=False)  # cheap
        except (Failure, OSError, ValueError) as exc:  # this dump's problem, not the run's
            session["inspect"] = None
            notes[session["id"]] = f" [not inspected: {exc}]"
            continue
        entry["file"] = _relative(outdir, entry["file"])
        entry["problems"] = problems + entry["problems"]
        session["inspect"] = entry
        if problems:
            notes[session["id"]] = f" [not ready to debug: {problems[0]}]"
        elif session.get("kdh") is None and _no_kdh_note(entry):
            notes[session["id"]] = _no_kdh_note(entry)
    return notes


def _derive(session: dict, outdir: str, derived) -> str:
    session["files"] += [_relative(outdir, derived.path),
                         _relative(outdir, derived.path + ".missing")]
    return derived.path


def _no_kdh_note(entry: dict) -> str:
    from analyzer.report import printable
    mb = entry.get("msgbuf") or {}
    parts = []
    if mb.get("panic"):
        parts.append(f"panic: {printable(mb['panic'])}")
    if mb.get("version_line"):
        parts.append(printable(mb["version_line"]))
    return f" [msgbuf: {'; '.join(parts)}]" if parts else ""


def check_private_key(private_key: str | None) -> None:
    """A key that is no RSA private key stops the run before it starts (exit 2)."""
    if private_key:
        from analyzer.debug.ekcd import load_private_key
        load_private_key(private_key)


@contextmanager
def summary_ready(private_key: str | None, decompress: bool):
    """For ``summary``: without the options nothing is written (outdir None). With them the
    dumps are written to a private temporary directory, made ready and inspected there, and
    removed with it; the report lists no files, as summary's always does."""
    if not (private_key or decompress):
        yield None, lambda report: {}
        return
    with tempfile.TemporaryDirectory(prefix="netdump-summary-") as tmp:
        def finish(report: dict) -> dict[int, str]:
            notes = make_ready(report, tmp, private_key, decompress)
            for session in report["sessions"]:
                session["files"] = []
            return notes
        yield tmp, finish
