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


def ready_dump(outdir: str, files: list[str], has_kdh: bool, private_key: str | None = None,
               decompress: bool = False) -> tuple[dict | None, list[str], str]:
    """Derive and inspect one dump in place: (its inspect entry or None, the files derived,
    relative to ``outdir``, a note for its line: the panic and version when no KDH)."""
    from analyzer.debug.compressed import stream_kind
    from analyzer.debug.derive import decompress_path, decrypt_path
    from analyzer.debug.inspect import inspect_path
    path, encrypted = _dump_file(outdir, files)
    derived: list[str] = []
    if path is None or not os.path.isfile(path):
        return None, derived, ""
    problems: list[str] = []
    try:
        if encrypted and private_key:
            path = _derive(derived, outdir, decrypt_path(path, private_key))
            encrypted = False
        if not encrypted and decompress:
            with open(path, "rb") as f:
                if stream_kind(f.read(4)):
                    path = _derive(derived, outdir, decompress_path(path))
    except Failure as exc:
        problems.append(str(exc))
    except OSError as exc:  # a full disk, say: this dump's problem, never the run's
        problems.append(f"{exc.filename or path}: {exc.strerror}")
    try:
        entry = inspect_path(path, encrypted=encrypted, decode=False)  # cheap
    except (Failure, OSError, ValueError) as exc:  # this dump's problem, not the run's
        return None, derived, f" [not inspected: {exc}]"
    entry["file"] = _relative(outdir, entry["file"])
    entry["problems"] = problems + entry["problems"]
    if problems:
        return entry, derived, f" [not ready to debug: {problems[0]}]"
    return entry, derived, "" if has_kdh else _no_kdh_note(entry)


def make_ready(report: dict, outdir: str, private_key: str | None = None,
               decompress: bool = False, done: dict | None = None) -> dict[int, str]:
    """Derive and inspect each session's dump in place; returns a note per session id for its
    summary line. ``done``: the entries a :class:`ReadyStep` made as the dumps ended (their
    derived files are in the sessions already, their notes were printed with their lines)."""
    notes: dict[int, str] = {}
    for session in report["sessions"]:
        if done is not None and session["id"] in done:
            session["inspect"] = done[session["id"]]
            continue
        entry, derived, note = ready_dump(outdir, session.get("files", []),
                                          session.get("kdh") is not None, private_key,
                                          decompress)
        session["files"] += derived
        session["inspect"] = entry
        if note:
            notes[session["id"]] = note
    return notes


class ReadyStep:
    """Each dump made ready and inspected the moment it ends, as the first ``on_dump``
    callback: its line, its JSON line and the hook see the result, and a follow run that
    lasts days does not keep it for its end. ``list_files`` False (summary): the JSON line
    lists no files, as summary's report does."""

    def __init__(self, outdir: str, private_key: str | None = None, decompress: bool = False,
                 list_files: bool = True):
        self.outdir, self.private_key, self.decompress = outdir, private_key, decompress
        self.list_files = list_files
        self.done: dict[int, dict | None] = {}
        self.notes: dict[int, str] = {}

    def __call__(self, rec) -> None:
        entry, derived, note = ready_dump(self.outdir, list(rec.files), rec.kdh is not None,
                                          self.private_key, self.decompress)
        rec.files.extend(derived)
        self.done[rec.session] = entry
        self.notes[rec.session] = note

    def extra(self, rec) -> dict:
        """The keys the report's session gets after the run, for the dump's JSON line."""
        out: dict = {"inspect": self.done.get(rec.session)}
        if not self.list_files:
            out["files"] = []
        return out


def _derive(files: list[str], outdir: str, derived) -> str:
    files += [_relative(outdir, derived.path), _relative(outdir, derived.path + ".missing")]
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
    """For ``summary``: without the options nothing is written (outdir None, no step). With
    them the dumps are written to a private temporary directory, made ready and inspected
    there as each ends, and removed with it; the report lists no files, as summary's always
    does. Yields (outdir, finish(report) -> notes, the ReadyStep or None)."""
    if not (private_key or decompress):
        yield None, lambda report: {}, None
        return
    with tempfile.TemporaryDirectory(prefix="netdump-summary-") as tmp:
        step = ReadyStep(tmp, private_key, decompress, list_files=False)

        def finish(report: dict) -> dict[int, str]:
            notes = make_ready(report, tmp, private_key, decompress, step.done)
            for session in report["sessions"]:
                session["files"] = []
            return notes
        yield tmp, finish, step
