"""One analysis run: capture -> datagrams -> protocol events -> sinks. Data flows one way."""
from __future__ import annotations

import gc
from contextlib import nullcontext
from functools import partial
from itertools import islice
from typing import Callable, Iterable, Iterator

from analyzer.anomalies import Kind
from analyzer.exits import EXIT_INCOMPLETE, EXIT_OK, EXIT_UNREADABLE, Failure
from analyzer.framemap import FrameMap
from analyzer.protocol.core import NetdumpTracker
from analyzer.recovery.dump import DEFAULT_MAX_DUMP_SIZE, Recovery
from analyzer.recovery.offload import Offload
from analyzer.recovery.writer import FileWriter

BATCH = 4096  # items per batch when the source is not a capture reader
GC_THRESHOLD = 100_000  # allocations between two young-generation collections during a run


def _slices(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while True:
        batch = list(islice(it, n))
        if not batch:
            return
        yield batch


def _each(calls: Iterable[Callable]) -> Callable | None:
    """One callback calling each of ``calls`` (None when there are none)."""
    calls = list(calls)
    if not calls:
        return None

    def call_all(entry) -> None:
        for call in calls:
            call(entry)
    return call_all


class Analysis:
    """Wires the core to the recovery sink, an optional file writer and extra sinks.

    Extra sinks have ``handle(events)`` and optionally ``close()``.
    """

    def __init__(self, outdir: str | None = None, max_dump_size: int = DEFAULT_MAX_DUMP_SIZE,
                 sinks: Iterable = (), on_dump: Iterable[Callable] = (),
                 on_anomaly: Iterable[Callable] = ()):
        """``on_dump`` callbacks get each dump's record the moment it ends, its files final
        (``extract``); ``on_anomaly`` ones get each capture-level anomaly as it is found."""
        self.tracker = NetdumpTracker()
        self.offload = Offload()  # hashing and file writes, beside the parsing
        self.writer = FileWriter(outdir, self.offload) if outdir else None
        w = self.writer
        self.on_dump = list(on_dump)
        self.recovery = Recovery(max_dump_size,
                                 on_data=w.data if w else None,
                                 on_start=w.start if w else None,
                                 on_end=self._ended,
                                 offload=self.offload,
                                 on_anomaly=_each(on_anomaly))
        self.sinks = list(sinks)
        if w and w.leftovers:
            shown = ", ".join(w.leftovers[:10])
            more = f" and {len(w.leftovers) - 10} more" if len(w.leftovers) > 10 else ""
            self.recovery.capture_anomaly(
                Kind.PART_FILES_FOUND, 0,
                f"the output directory holds {len(w.leftovers)} .part file(s) of an "
                f"interrupted run, left as they are: {shown}{more}")

    def _ended(self, rec) -> None:
        if self.writer:
            self.writer.end(rec)
        for call in self.on_dump:
            call(rec)

    def run(self, items: Iterable) -> None:
        """Feed datagrams/notices through; a reader with ``batches()`` is taken a buffer at
        a time, any other iterable in slices of BATCH items. Sinks get one list per batch."""
        batches = getattr(items, "batches", None)
        self.run_batches(batches() if batches else _slices(items, BATCH))

    def run_batches(self, batches: Iterable[list]) -> None:
        feed_many = self.tracker.feed_many
        handle = self.recovery.handle
        sinks = self.sinks
        # Millions of short-lived tuples, thousands alive at once in a batch: with the default
        # threshold the cyclic collector runs every 700 of them and costs a fifth of the run.
        # Nothing here makes cycles; collect rarely while the run lasts.
        threshold = gc.get_threshold()
        gc.set_threshold(max(threshold[0], GC_THRESHOLD), *threshold[1:])
        try:
            for batch in batches:
                events = feed_many(batch)
                if events:
                    handle(events)
                    for sink in sinks:
                        sink.handle(events)
            self.offload.wait()  # a failed write is reported by the run, as before
        finally:
            gc.set_threshold(*threshold)

    def finish(self) -> None:
        """End every open session and flush the files (also after an error)."""
        try:
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
        finally:
            self.offload.close()

    def abort(self) -> None:
        """Stop without ending any dump: writes already handed over complete into the
        *.part files, nothing is renamed, no info file is finalised."""
        try:
            self.offload.close()
        except Exception:  # the run is being abandoned; its own error matters no more
            pass

    @property
    def records(self):
        return list(self.recovery.records.values())


def drive(analysis: Analysis, source, progress=None) -> str | None:
    """Run ``source`` through ``analysis``; returns the one-line error that stopped the
    reading early, or None. The caller finishes the analysis either way."""
    from analyzer.capture import CaptureError
    from analyzer.recovery.writer import WriteError

    try:
        with (progress(source) if progress else nullcontext(source)) as feed:
            analysis.run(feed)
    except KeyboardInterrupt:
        # Interrupted: the data stays in *.part files and every info file still says
        # "Dump incomplete"; nothing is renamed to look finished.
        analysis.abort()
        raise
    except (CaptureError, WriteError) as exc:
        return str(exc)
    except OSError as exc:
        return f"{exc.filename or 'output'}: {exc.strerror}"
    except Exception:
        analysis.finish()  # an internal error still ends the dumps read so far
        raise
    return None


def run_analysis(captures: tuple[str, ...], outdir: str | None, max_dump_size: int,
                 sinks: tuple = (), progress=None,
                 verify_checksums: bool = True, on_dump: Iterable[Callable] = (),
                 on_anomaly: Iterable[Callable] = (), follow=None) -> tuple[Analysis, dict, int]:
    """Read the captures through the whole pipeline; returns (analysis, report, exit code).

    ``progress``, when given, is a context manager factory ``progress(reader)`` returning a
    wrapper with ``batches()`` (the command line's progress bar); the pipeline never draws.
    """
    from analyzer.capture import CaptureError, open_captures
    from analyzer.recovery.writer import WriteError
    from analyzer.report import build_report

    opener = partial(open_captures, follow=follow)  # follow: capture.follow.Follow or None
    paths, unreadable = _readable(list(captures), CaptureError, opener)
    if not paths:
        raise Failure(unreadable[0][1])
    reader = opener(paths, verify_checksums=verify_checksums)
    try:
        analysis = Analysis(outdir, max_dump_size, sinks, on_dump, on_anomaly)
    except WriteError as exc:
        raise Failure(str(exc)) from None
    analysis.recovery.frames = FrameMap(reader)  # frames named per file as the run goes
    error = drive(analysis, reader, progress)
    analysis.finish()
    report = build_report(_with_unreadable(captures, reader.captures, unreadable),
                          analysis.records, analysis.recovery.capture_anomalies)
    if unreadable and not error:
        error = "; ".join(msg for _path, msg in unreadable)
    return analysis, report, exit_status(report, error)


def exit_status(report: dict, error: str | None) -> int:
    """The run's exit status; a stopping error is also recorded in the report."""
    if error:
        report["error"] = error
        return EXIT_UNREADABLE
    if any(s["status"] != "complete" for s in report["sessions"]):
        return EXIT_INCOMPLETE
    return EXIT_OK


def _readable(paths: list[str], capture_error, open_captures) -> tuple[list, list]:
    """Split the files into those that open and those that cannot be read at all, so one
    bad file of a ring buffer does not cost the dumps in the others."""
    try:
        open_captures(paths)
        return paths, []
    except capture_error:
        pass
    good, bad = [], []
    for path in paths:
        try:
            open_captures([path])
            good.append(path)
        except capture_error as exc:
            bad.append((path, str(exc)))
    return good, bad


def _with_unreadable(paths, captures: list[dict], unreadable: list) -> list[dict]:
    """The report's capture list in the order given, unreadable files included."""
    errors = dict(unreadable)
    if not errors:  # a ring buffer given as one path is several files
        return list(captures)
    read = iter(captures)
    return [{"path": p, "frames": 0, "truncated": False, "error": errors[p]} if p in errors
            else next(read) for p in paths]
