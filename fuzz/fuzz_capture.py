"""Fuzz the capture readers with arbitrary bytes given as a capture file.

    .venv/bin/python fuzz/fuzz_capture.py fuzz/corpus/capture -max_total_time=300
    .venv/bin/python fuzz/fuzz_capture.py CRASH-FILE     # replay one input

Each input is written to a scratch file and read with small and with large read buffers.
A finding is any exception other than CaptureError at open, a CaptureError message that is
empty or more than one line, an item that is not a well-formed Datagram or Notice, frame
numbers outside the file, the two buffer sizes giving different items, or the datagrams
crashing the summary pipeline (core + recovery, no files) behind the reader. The modules are
fuzzed as Python (NETDUMP_ANALYZER_PURE=1): atheris sees the coverage of bytecode only; the
compiled build is compared with them by tests/capture/test_compiled.py.
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
    from analyzer.capture import CaptureError, CaptureReader
    from analyzer.datagram import Datagram, Notice, Unreachable
    from analyzer.pipeline import Analysis
    from analyzer.report import build_report

SCRATCH = common.scratch_dir("capture")
PATH = os.path.join(SCRATCH, "input.cap")
SMALL = 4096  # the smallest read buffer: records straddle it all the time


def _read(chunk: int | None):
    """(items, captures) or (None, message) when the file is refused at open."""
    try:
        kw = {"chunk_size": chunk} if chunk else {}
        reader = CaptureReader([PATH], **kw)
    except CaptureError as exc:
        msg = str(exc)
        if not msg or "\n" in msg:
            raise AssertionError(f"CaptureError message is not one line: {msg!r}") from exc
        return None, msg
    items = list(reader)
    if reader.bytes_read != reader.total_bytes:
        raise AssertionError(f"read {reader.bytes_read} of {reader.total_bytes} bytes")
    return items, reader.captures


def _check_items(items, frames: int) -> None:
    """Items are well formed and name frames that exist (a notice may name an earlier frame:
    fragments never completed are reported at the end; a cut record is frame ``frames + 1``)."""
    for it in items:
        t = type(it)
        if t is Datagram:
            frame, ts, src, dst, sport, dport, payload, missing, link, bad = it
            if not (isinstance(ts, int) and len(src) == 4 and len(dst) == 4
                    and 0 <= sport < 65536 and 0 <= dport < 65536 and missing >= 0
                    and isinstance(payload, (bytes, bytearray, memoryview))
                    and isinstance(bad, bool)):
                raise AssertionError(f"malformed datagram {it!r}"[:500])
            if link is not None and not (isinstance(link, tuple) and len(link) == 2):
                raise AssertionError(f"malformed link {link!r}")
        elif t is Unreachable:
            if not (len(it.orig_src) == 4 and len(it.orig_dst) == 4):
                raise AssertionError(f"malformed ICMP item {it!r}")
        elif t is Notice:
            if not (isinstance(it.kind, str) and it.kind and isinstance(it.detail, str)):
                raise AssertionError(f"malformed notice {it!r}")
        else:
            raise AssertionError(f"unexpected item {t.__name__}")
        if it.frame < 1 or it.frame > frames + 1:
            raise AssertionError(f"frame {it.frame} out of 1..{frames + 1}")


def TestOneInput(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(data)
    try:
        items, captures = _read(SMALL)
        if items is None:
            return
        _check_items(items, sum(c["frames"] for c in captures))
        for what, other in ((f"read buffers of {SMALL} bytes and the default", _read(None)[0]),):
            if other != items:
                first = next(i for i, (a, b) in enumerate(zip(items + [None], other + [None]))
                             if a != b)
                raise AssertionError(f"{what} disagree at item {first}: "
                                     f"{items[first:first + 1]!r} vs "
                                     f"{other[first:first + 1]!r}"[:1000])
        a = Analysis(None)
        try:
            a.run(items)
        finally:
            a.finish()
        json.dumps(build_report(captures, a.records, a.recovery.capture_anomalies))
    except Exception as exc:
        if common.skip_known(exc):
            return
        raise


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
