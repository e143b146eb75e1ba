"""Fuzz the protocol core and the recovery sink (and the file writer) with datagram sequences.

    .venv/bin/python fuzz/fuzz_core.py fuzz/corpus/core -max_total_time=300
    .venv/bin/python fuzz/fuzz_core.py CRASH-FILE        # replay one input

The input is a sequence of Datagram/Notice records (format in fuzz/common.py). Each input is
run through:

* ``NetdumpTracker.feed`` item by item and ``feed_many`` in batches: the events must be equal;
* the whole ``Analysis`` (core, Recovery, and when the input asks for it the FileWriter into a
  scratch directory), then the JSON report and the summary lines.

A finding is any exception, or a broken invariant: a file or symlink outside the output
directory, a symlink inside it, a final vmcore whose size or SHA-256 differs from the report,
an info file whose status line disagrees with the report, more anomalies kept than the bound.
"""
from __future__ import annotations

import json
import os
import sys

import atheris

os.environ["NETDUMP_ANALYZER_PURE"] = "1"  # atheris instruments bytecode: fuzz the .py files

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

with atheris.instrument_imports(include=["analyzer"]):
    from analyzer.pipeline import Analysis
    from analyzer.protocol.core import NetdumpTracker
    from analyzer.recovery.dump import MAX_ANOMALIES
    from analyzer.report import build_report, summary_line

SCRATCH = common.scratch_dir("core")
OUT = os.path.join(SCRATCH, "out")
HASH_LIMIT = 16 << 20


class Finding(AssertionError):
    """A broken invariant; ``tag`` names it (see common.KNOWN)."""

    def __init__(self, tag: str, message: str):
        super().__init__(f"[{tag}] {message}")
        self.tag = tag


def _events_one_by_one(items):
    t = NetdumpTracker()
    out = []
    for it in items:
        out += t.feed(it)
    return out + t.close()


def _events_batched(items, size):
    t = NetdumpTracker()
    feed_many = getattr(t, "feed_many", None)
    if feed_many is None:
        return None
    out = []
    for i in range(0, len(items), size):
        out += feed_many(items[i:i + size])
    return out + t.close()


def _check_tree(rec_files: set[str]) -> None:
    if sorted(os.listdir(SCRATCH)) != ["out"]:
        raise Finding("escape", f"written beside the output directory: {os.listdir(SCRATCH)}")
    for dirpath, dirnames, filenames in os.walk(OUT, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                raise Finding("symlink", f"symlink created: {p} -> {os.readlink(p)}")
            real = os.path.realpath(p)
            if not real.startswith(os.path.realpath(OUT) + os.sep):
                raise Finding("escape", f"{p} resolves outside the output directory")


def _raw_names(top: str) -> list[bytes]:
    out = []
    for dirpath, dirnames, filenames in os.walk(os.fsencode(top)):
        out += dirnames + filenames
    return out


def _sha256(path: str) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _check_files(rec) -> None:
    for rel in rec.files:
        path = os.path.join(OUT, rel)
        if not os.path.isfile(path):
            undecodable = any(not p.isascii() for p in _raw_names(OUT))
            raise Finding("undecodable-path-name" if undecodable else "missing-file",
                          f"reported file {rel!r} does not exist")
        base = os.path.basename(rel)
        if base.startswith("info."):
            with open(path, "rb") as f:
                last = f.read().splitlines()[-1:]
            ok = last == [b"Dump complete"] if rec.complete else \
                bool(last) and last[0].startswith(b"Dump incomplete")
            if not ok:
                raise Finding("info-status", f"{rel}: last line {last!r}, complete={rec.complete}")
        elif base.startswith("vmcore") and not base.endswith(".part"):
            size = os.stat(path).st_size
            if size != rec.vmcore_length:
                raise Finding("vmcore-size-mismatch",
                              f"{rel}: {size} bytes on disk, report says {rec.vmcore_length}")
            if rec.sha256 is not None and size <= HASH_LIMIT and _sha256(path) != rec.sha256:
                raise Finding("vmcore-sha-mismatch", f"{rel}: content differs from the report")


def run(data: bytes) -> None:
    flags, max_size, items = common.decode(data)
    one = _events_one_by_one(items)
    batched = _events_batched(items, 1 << ((flags >> 1) & 7))
    if batched is not None and batched != one:
        first = next(i for i, (a, b) in enumerate(zip(one + [None], batched + [None])) if a != b)
        raise Finding("feed-many-differs", f"event {first}: feed {one[first:first + 1]} "
                      f"vs feed_many {batched[first:first + 1]}")
    write = bool(flags & 1)
    if write:
        common.reset_dir(OUT)
    a = Analysis(OUT if write else None, max_size)
    try:
        a.run(items)
    finally:
        a.finish()
    report = build_report([], a.records, a.recovery.capture_anomalies)
    json.dumps(report)
    for rec in a.records:
        summary_line(rec)
        if len(rec.anomalies) > MAX_ANOMALIES:
            raise Finding("anomalies", f"{len(rec.anomalies)} anomalies kept")
        length = rec.vmcore_length
        for s, e in rec.vmcore_missing():
            if not 0 <= s < e <= length:
                raise Finding("missing-range", f"missing [{s}, {e}) outside [0, {length})")
        if write:
            _check_files(rec)
    if write:
        _check_tree({f for rec in a.records for f in rec.files})


def TestOneInput(data: bytes) -> None:
    try:
        run(data)
    except Finding as exc:
        if os.environ.get("FUZZ_SKIP_KNOWN") == "1" and exc.tag in common.KNOWN_TAGS:
            return
        raise
    except Exception as exc:
        if common.skip_known(exc):
            return
        raise


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
