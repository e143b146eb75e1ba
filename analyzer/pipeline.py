"""One analysis run: capture -> datagrams -> protocol events -> sinks. Data flows one way."""
from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator

from analyzer.protocol.core import NetdumpTracker
from analyzer.recovery.dump import DEFAULT_MAX_DUMP_SIZE, Recovery
from analyzer.recovery.writer import FileWriter

BATCH = 4096  # items per batch when the source is not a capture reader


def _slices(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while True:
        batch = list(islice(it, n))
        if not batch:
            return
        yield batch


class Analysis:
    """Wires the core to the recovery sink, an optional file writer and extra sinks.

    Extra sinks have ``handle(events)`` and optionally ``close()``.
    """

    def __init__(self, outdir: str | None = None, max_dump_size: int = DEFAULT_MAX_DUMP_SIZE,
                 sinks: Iterable = ()):
        self.tracker = NetdumpTracker()
        self.writer = FileWriter(outdir) if outdir else None
        w = self.writer
        self.recovery = Recovery(max_dump_size,
                                 on_data=w.data if w else None,
                                 on_start=w.start if w else None,
                                 on_end=w.end if w else None)
        self.sinks = list(sinks)

    def run(self, items: Iterable) -> None:
        """Feed datagrams/notices through; a reader with ``batches()`` is taken a buffer at
        a time, any other iterable in slices of BATCH items. Sinks get one list per batch."""
        batches = getattr(items, "batches", None)
        self.run_batches(batches() if batches else _slices(items, BATCH))

    def run_batches(self, batches: Iterable[list]) -> None:
        feed_many = self.tracker.feed_many
        handle = self.recovery.handle
        sinks = self.sinks
        for batch in batches:
            events = feed_many(batch)
            if events:
                handle(events)
                for sink in sinks:
                    sink.handle(events)

    def finish(self) -> None:
        """End every open session and flush the files (also after an error)."""
        events = self.tracker.close()
        self.recovery.handle(events)
        for sink in self.sinks:
            sink.handle(events)
            close = getattr(sink, "close", None)
            if close:
                close()
        self.recovery.finish_capture(self.tracker.dropped_sessions)
        if self.writer:
            self.writer.close()

    @property
    def records(self):
        return list(self.recovery.records.values())
