"""Where the time goes: the pipeline run in growing prefixes, in this process, CPU time.

    python benchmarks/stages.py CAPTURE [--no-verify]

Rows: the reader alone (checksums in-process), + the protocol core, + recovery (coverage,
hashing in its thread, no files), + the audit sink. Each row is the whole run up to that
stage; the difference to the row above is that stage's cost. Figures are CPU seconds of
this process (all threads) and microseconds per frame.
"""
from __future__ import annotations

import gc
import resource
import sys
import time

from analyzer.audit.sink import AuditSink
from analyzer.capture import CaptureReader
from analyzer.protocol.core import NetdumpTracker
from analyzer.recovery.dump import Recovery
from analyzer.recovery.offload import Offload


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    path = sys.argv[1]
    verify = "--no-verify" not in sys.argv
    gc.set_threshold(100_000, 10, 10)

    def reader():
        return CaptureReader([path], verify_checksums=verify)

    frames = 0
    rows = []

    t, w = cpu(), time.perf_counter()
    for b in reader().batches():
        frames += len(b)
    rows.append(("reader", cpu() - t, time.perf_counter() - w))

    t, w = cpu(), time.perf_counter()
    tr = NetdumpTracker()
    for b in reader().batches():
        tr.feed_many(b)
    rows.append(("+ core", cpu() - t, time.perf_counter() - w))

    t, w = cpu(), time.perf_counter()
    tr, off = NetdumpTracker(), Offload()
    rec = Recovery(offload=off)
    for b in reader().batches():
        rec.handle(tr.feed_many(b))
    rec.handle(tr.close())
    off.close()
    rows.append(("+ recovery", cpu() - t, time.perf_counter() - w))

    t, w = cpu(), time.perf_counter()
    tr, off = NetdumpTracker(), Offload()
    rec, audit = Recovery(offload=off), AuditSink()
    for b in reader().batches():
        ev = tr.feed_many(b)
        rec.handle(ev)
        audit.handle(ev)
    ev = tr.close()
    rec.handle(ev)
    audit.handle(ev)
    audit.close()
    off.close()
    rows.append(("+ audit sink", cpu() - t, time.perf_counter() - w))

    print(f"{path}: {frames} items, checksums {'verified' if verify else 'not verified'}")
    prev = 0.0
    for name, c, wall in rows:
        print(f"  {name:14} {c:6.2f} s CPU {wall:6.2f} s wall  {c / frames * 1e6:5.2f} us/item"
              f"  (stage {(c - prev) / frames * 1e6:5.2f} us/item)")
        prev = c


if __name__ == "__main__":
    main()
