"""Run by the compiled-vs-uncompiled tests in a child process: for each capture given, one
line with a digest of everything the pipeline's hot modules produce from it.

    python tests/support/run_digest.py CAPTURE...

Per capture: every item the reader yields (chunk sizes 4096 and 1 MiB), every protocol
event, the recovery's view of each dump (coverage, counts, anomalies, hash) and the
compiled modules this process runs. Errors are part of the output.
"""
from __future__ import annotations

import hashlib
import sys

from analyzer import speedups
from analyzer.capture import CaptureError, CaptureReader
from analyzer.protocol.core import NetdumpTracker
from analyzer.recovery.dump import Recovery


def digest(path: str) -> str:
    h = hashlib.sha256()
    for chunk in (4096, 1 << 20):
        try:
            tracker, recovery = NetdumpTracker(), Recovery()
            for batch in CaptureReader([path], chunk_size=chunk).batches():
                h.update(repr(batch).encode())
                events = tracker.feed_many(batch)
                h.update(repr(events).encode())
                recovery.handle(events)
            events = tracker.close()
            h.update(repr(events).encode())
            recovery.handle(events)
            for r in recovery.records.values():
                h.update(repr((list(r.vmcore), list(r.key), sorted(r.messages.items()), r.retransmits,
                               r.acks, r.duplicate_acks, r.anomalies, r.sha256, r.end_reason,
                               r.complete)).encode())
            h.update(repr(recovery.capture_anomalies).encode())
        except CaptureError as exc:
            h.update(f"error {exc}".encode())
    return h.hexdigest()


if __name__ == "__main__":
    print("compiled:", ",".join(speedups.loaded_compiled()) or "none")
    for p in sys.argv[1:]:
        print(p, digest(p))
