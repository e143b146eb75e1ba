"""What the capture holds of each dump: coverage, KDH, key, outcome. No I/O here.

:class:`Recovery` is a sink: it consumes protocol events and keeps one :class:`DumpRecord`
per session. The file writer and the report read these records.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from analyzer.anomalies import Kind
from analyzer.framemap import FrameMap
from analyzer.intervals import IntervalSet
from analyzer.protocol.events import (
    Ack, Anomaly, DumpFinished, Message, ServerPort, SessionEnded, SessionStarted,
)
from analyzer.recovery import infofile
from analyzer.recovery.hashing import StreamingHash
from analyzer.recovery.paths import check_herald_path
from analyzer.wire import KDH_SIZE, TYPE_NAMES, MsgType, parse_kdh

MAX_ANOMALIES = 1000  # kept per dump; the rest are counted
DEFAULT_MAX_DUMP_SIZE = 1 << 40  # 1 TiB: offsets past this are refused

_VMCORE, _KDH, _KEY, _FINISHED = MsgType.VMCORE, MsgType.KDH, MsgType.EKCD_KEY, MsgType.FINISHED


def _roundup(n: int, to: int) -> int:
    return -(-n // to) * to


_NO_FILES = FrameMap([])  # before a run names its files: frames are named as they are

class DumpRecord:
    # fixed fields: more than an instance dictionary shares keys for, on the hot path
    __slots__ = (
        "_kinds", "_limit", "_limit_for", "acks", "claimed_end", "cut_frame", "anomalies", "anomalies_dropped", "client",
        "done", "duplicate_acks", "end_reason", "files", "finished_frame", "frames", "first_frame", "first_ts",
        "herald_dir", "herald_path", "herald_payload", "herald_seen", "info_blocks",
        "kdh_length_ok", "kdh_raw", "key", "last_frame", "refused_end", "last_ts", "messages", "retransmits",
        "server", "server_port", "session", "sha256", "vmcore", "vmcore_hash",
    )

    def __init__(self, ev: SessionStarted, offload=None):
        self.session = ev.session
        self.client = ev.client
        self.server = ev.server
        self.server_port = ev.server_port
        self.herald_payload = ev.herald_path
        self.herald_seen = ev.herald_seen
        herald = check_herald_path(ev.herald_path)
        self.herald_path = herald.text
        self.herald_dir = herald.parts
        self.first_frame = self.last_frame = ev.frame
        self.first_ts = self.last_ts = ev.ts
        self.messages: Counter[str] = Counter()
        self.retransmits = 0
        self.acks = 0
        self.duplicate_acks = 0
        self.vmcore = IntervalSet()
        self.key = IntervalSet()
        self.vmcore_hash: Any = StreamingHash(offload)
        self.kdh_raw: bytes | None = None
        self.kdh_length_ok = True  # dumplength within --max-dump-size
        self.refused_end = 0  # end of the furthest data refused by --max-dump-size
        self.claimed_end = 0  # furthest offset + mh_len of a VMCORE message taken
        self.cut_frame = 0  # the frame where the capture file was cut mid-dump, if it was
        self.frames = _NO_FILES  # the run's frame map: text names a frame "15 of b.pcap"
        self.info_blocks: list[bytes] = []  # one per KDH message, as netdumpd appends them
        self.finished_frame = 0
        self.end_reason: str | None = None
        self.done = False  # the dump is over and saved; late copies are only counted
        self.anomalies: list[dict] = []
        self.anomalies_dropped = 0
        self.files: list[str] = []  # set by the writer
        self.sha256: str | None = None  # set at the end
        self._kinds: set[str] = set()
        self._limit_for: bytes | None = None  # the KDH the cached limit was computed for
        self._limit = 0
        if herald.refused:
            self.add_anomaly(Kind.PATH_REFUSED, ev.frame,
                             f"HERALD path {herald.text!r} refused ({herald.refused}); "
                             "netdumpd would use its default directory")

    # -- derived facts ------------------------------------------------------------------

    @property
    def kdh(self) -> dict | None:
        return parse_kdh(self.kdh_raw) if self.kdh_raw is not None else None

    @property
    def view(self) -> infofile.ServerView | None:
        return infofile.server_view(self.kdh_raw) if self.kdh_raw is not None else None

    @property
    def vmcore_length(self) -> int:
        """The vmcore's length: KDH dumplength, else as far as the client's VMCORE messages
        reached (refused data and the bytes a cut frame lost included: they are missing)."""
        if self.kdh_raw is not None:
            return parse_kdh(self.kdh_raw)["dumplength"]
        return max(self.vmcore.max, self.claimed_end, self.refused_end)

    @property
    def file_length(self) -> int:
        """The vmcore file's length: the KDH dumplength when it is within --max-dump-size,
        else as far as the messages taken reach (refused data makes no big file)."""
        if self.kdh_raw is not None and self.kdh_length_ok:
            return self.vmcore_length
        return max(self.vmcore.max, self.claimed_end)

    @property
    def refused(self) -> bool:
        """Data was refused because of --max-dump-size."""
        return bool(self.refused_end) or not self.kdh_length_ok

    @property
    def key_length(self) -> int:
        kdh = self.kdh
        if kdh and kdh.get("dumpkeysize"):
            return kdh["dumpkeysize"]
        return self.key.max

    def vmcore_limit(self) -> int:
        """Where VMCORE data must end, once a KDH is known (cached per KDH)."""
        raw = self.kdh_raw
        if raw is not self._limit_for:
            view = self.view
            length = self.vmcore_length
            # A compressed dump's last block is padded to 4096 on the wire, then truncated.
            self._limit = _roundup(length, 4096) if view and view.suffix else length
            self._limit_for = raw
        return self._limit

    def vmcore_missing(self) -> list[tuple[int, int]]:
        return self.vmcore.gaps(0, self.vmcore_length)

    def key_missing(self) -> list[tuple[int, int]]:
        return self.key.gaps(0, self.key_length)

    @property
    def complete(self) -> bool:
        return (self.kdh_raw is not None and self.finished_frame != 0
                and not self.vmcore_missing() and not self.key_missing())

    def add_anomaly(self, kind: str, frame: int, detail: str) -> None:
        self._kinds.add(kind)
        if len(self.anomalies) < MAX_ANOMALIES:
            self.anomalies.append({"kind": kind, "frame": frame, "detail": detail})
        else:
            self.anomalies_dropped += 1

    def has_anomaly(self, kind: str) -> bool:
        return kind in self._kinds


class Recovery:
    """Sink that builds a :class:`DumpRecord` per session from protocol events.

    ``on_data(record, event, start, data)`` is called for every byte range accepted into a
    dump file (``event.type`` tells which file), so a writer can put it in place.
    """

    def __init__(self, max_dump_size: int = DEFAULT_MAX_DUMP_SIZE,
                 on_data: Callable | None = None,
                 on_start: Callable | None = None,
                 on_end: Callable | None = None, offload=None,
                 on_anomaly: Callable | None = None):
        self.offload = offload  # runs the hashing in the background when given
        self.records: dict[int, DumpRecord] = {}
        self.capture_anomalies: list[dict] = []
        self.capture_anomalies_dropped = 0
        self.max_dump_size = max_dump_size
        self.on_data = on_data
        self.on_start = on_start
        self.on_end = on_end
        self.on_anomaly = on_anomaly  # each capture-level anomaly, as it is found
        self.frames = _NO_FILES  # the run's FrameMap: run-wide frames to (file, frame)

    def handle(self, events: list) -> None:
        """Take a list of events in order.

        New VMCORE data that continues the dump past everything it holds so far (nearly all
        of it) is gathered into one run per dump and taken at once by the same steps as a
        single message (:meth:`_count`, :meth:`_take`) before any other event of the list is
        looked at; the result is the same as taking the messages one by one.
        """
        records = self.records
        run_rec = None  # the dump of the run being gathered
        run_start = run_end = run_n = 0
        parts: list = []
        last = None
        vmcore = int(_VMCORE)
        # Events are read by unpacking: indexing a tuple subclass is slow (compiled, it
        # calls ``__getitem__`` through the type).
        for ev in events:
            kind = type(ev)
            if kind is Message:
                sid, frame, ts, mtype, _seq, offset, _len, data, retransmit, _first, conflict = ev
                rec = records[sid]
                if mtype == vmcore and data and not retransmit and not conflict and not rec.done:
                    if run_rec is not None and (rec is not run_rec or offset != run_end):
                        self._apply_run(run_rec, run_start, run_end, run_n, parts, last)
                        run_rec = None
                    if (run_rec is not None or offset == rec.vmcore.max) and \
                            self._refusal(rec, offset, len(data)) is None:
                        if run_rec is None:
                            run_rec, run_start, run_n, parts = rec, offset, 0, []
                        rec.last_frame, rec.last_ts = frame, ts
                        parts.append(data)
                        run_end = offset + len(data)
                        run_n += 1
                        last = ev
                        continue
                if run_rec is not None:
                    self._apply_run(run_rec, run_start, run_end, run_n, parts, last)
                    run_rec = None
                self._message(rec, ev)
            elif kind is Ack:
                sid, frame, ts, _seq, _msg_frame, duplicate, _first, _sport = ev
                rec = records[sid]
                rec.acks += 1
                rec.duplicate_acks += duplicate
                rec.last_frame, rec.last_ts = frame, ts
            else:
                if run_rec is not None:
                    self._apply_run(run_rec, run_start, run_end, run_n, parts, last)
                    run_rec = None
                self._other(ev, kind)
        if run_rec is not None:
            self._apply_run(run_rec, run_start, run_end, run_n, parts, last)

    def _apply_run(self, rec: DumpRecord, start: int, end: int, n: int, parts: list,
                   last: Any) -> None:
        """In-order VMCORE data of ``n`` messages covering [start, end), none refused."""
        self._count(rec, last, n)
        self._take(rec, last, start, parts[0] if n == 1 else b"".join(parts))

    def _other(self, ev, kind) -> None:
        records = self.records
        if kind is Anomaly:
            if ev.session is None:
                self.capture_anomaly(ev.kind, ev.frame, ev.detail)
            else:
                rec = records[ev.session]
                rec.add_anomaly(ev.kind, ev.frame, ev.detail)
                if ev.kind == Kind.TRUNCATED_CAPTURE and not rec.cut_frame:
                    rec.cut_frame = ev.frame
        elif kind is SessionStarted:
            rec = records[ev.session] = DumpRecord(ev, self.offload)
            rec.frames = self.frames
            if self.on_start:
                self.on_start(rec)
        elif kind is ServerPort:
            records[ev.session].server_port = ev.port
        elif kind is DumpFinished:
            rec = records[ev.session]
            if rec.complete:  # else late (reordered) copies may still fill it: wait
                self._end(rec, "finished")
        elif kind is SessionEnded:
            self._end(records[ev.session], ev.reason)

    def capture_anomaly(self, kind: str, frame: int, detail: str) -> None:
        """An anomaly of the capture (or the run), tied to no dump."""
        entry = {"kind": kind, "frame": frame, "detail": detail}
        if len(self.capture_anomalies) < MAX_ANOMALIES:
            self.capture_anomalies.append(entry)
        else:
            self.capture_anomalies_dropped += 1
        if self.on_anomaly:
            self.on_anomaly(entry)

    @staticmethod
    def _count(rec: DumpRecord, ev: Message, n: int = 1) -> None:
        """``n`` well-formed messages like ``ev``, the last of them ``ev`` (when they were
        seen is set as each is looked at: an ACK may come between them)."""
        rec.messages[TYPE_NAMES[ev.type]] += n
        rec.retransmits += ev.retransmit

    def _refusal(self, rec: DumpRecord, offset: int, n: int) -> tuple[str, bool] | None:
        """Why VMCORE data at [offset, offset + n) is not taken, and whether --max-dump-size
        is the reason; None when it is taken."""
        end = offset + n
        if end > self.max_dump_size:
            return (f"VMCORE at offset {offset} (+{n}) is past the {self.max_dump_size}-byte "
                    "limit; data beyond --max-dump-size refused", True)
        if rec.kdh_raw is not None and end > rec.vmcore_limit():
            return (f"VMCORE at offset {offset} (+{n}) is past the KDH dumplength "
                    f"{rec.vmcore_length}", False)
        return None

    def _take(self, rec: DumpRecord, ev: Message, start: int, data: bytes) -> None:
        """Accepted VMCORE data: coverage, hash, file."""
        added = rec.vmcore.add(start, start + len(data))
        if ev.offset + ev.length > rec.claimed_end:  # (more than the data when a frame was cut)
            rec.claimed_end = ev.offset + ev.length
        # A new seqno over bytes already received may carry other bytes: the hash must
        # not trust its first copy (a resend of the same seqno is checked by the core).
        rewrite = ev.conflict or (added < len(data) and not ev.retransmit)
        rec.vmcore_hash.feed(start, data, rewrite)
        if self.on_data:
            self.on_data(rec, ev, start, data)

    def _message(self, rec: DumpRecord, ev: Message) -> None:
        rec.last_frame, rec.last_ts = ev.frame, ev.ts
        self._count(rec, ev)
        if rec.done:
            return  # a late copy after the dump was saved: counted only
        mtype = ev.type
        data = ev.payload
        if mtype == _VMCORE:
            if not data:
                return
            refused = self._refusal(rec, ev.offset, len(data))
            if refused is not None:
                why, past_limit = refused
                rec.add_anomaly(Kind.OFFSET_OUT_OF_RANGE, ev.frame, why)
                if past_limit:
                    rec.refused_end = max(rec.refused_end, ev.offset + len(data))
                return
            self._take(rec, ev, ev.offset, data)
        elif mtype == _KEY:
            end = ev.offset + len(data)
            if end > 1 << 20:
                rec.add_anomaly(Kind.OFFSET_OUT_OF_RANGE, ev.frame,
                                f"EKCD_KEY at offset {ev.offset} (+{len(data)}): a key blob "
                                "is 4096 bytes")
                return
            rec.key.add(ev.offset, end)
            if self.on_data:
                self.on_data(rec, ev, ev.offset, data)
        elif mtype == _KDH:
            self._kdh(rec, ev)
        elif mtype == _FINISHED:
            if not rec.finished_frame:
                rec.finished_frame = ev.frame

    def _kdh(self, rec: DumpRecord, ev: Message) -> None:
        if ev.length < KDH_SIZE or len(ev.payload) < KDH_SIZE:
            rec.info_blocks.append(infofile.kdh_block(ev.payload))
            if len(ev.payload) >= ev.length:
                rec.add_anomaly(Kind.BAD_LENGTH, ev.frame,
                                f"KDH of {ev.length} bytes; netdumpd needs {KDH_SIZE}")
            return
        raw = bytes(ev.payload[:KDH_SIZE])
        rec.info_blocks.append(infofile.kdh_block(raw))
        if rec.kdh_raw is not None and raw == rec.kdh_raw:
            return
        rec.kdh_raw = raw
        kdh = parse_kdh(raw)
        rec.kdh_length_ok = kdh["dumplength"] <= self.max_dump_size
        if not rec.kdh_length_ok:
            rec.add_anomaly(Kind.OFFSET_OUT_OF_RANGE, ev.frame,
                            f"KDH dumplength {kdh['dumplength']} is past the "
                            f"{self.max_dump_size}-byte limit; data beyond --max-dump-size refused")
        if not kdh["parity_ok"]:
            rec.add_anomaly(Kind.KDH_PARITY, ev.frame, "the 128 header words do not XOR to 0")
        limit = rec.vmcore_limit()
        if rec.vmcore.max > limit:
            rec.add_anomaly(Kind.OFFSET_OUT_OF_RANGE, ev.frame,
                            f"VMCORE data reaches offset {rec.vmcore.max}, past the KDH "
                            f"dumplength {kdh['dumplength']}")

    def _end(self, rec: DumpRecord, reason: str) -> None:
        """The dump is over (its FINISHED was ACKed, or its session ended): nothing more is
        taken into it, its hash is final, and the writer finishes its files now."""
        if rec.done:
            return
        rec.done = True
        rec.end_reason = "finished" if rec.finished_frame else reason
        if rec.kdh_raw is None and not rec.has_anomaly(Kind.KDH_MISSING):
            rec.add_anomaly(Kind.KDH_MISSING, rec.last_frame, "no kerneldumpheader was captured")
        if not rec.finished_frame:
            rec.add_anomaly(Kind.FINISHED_MISSING, rec.last_frame,
                            "no FINISHED message was captured"
                            + ("; the client started a new dump" if reason == "restarted"
                               else ""))
        rec.sha256 = rec.vmcore_hash.digest(rec.vmcore_length)
        rec.vmcore_hash = None  # a finished dump leaves only its summary behind
        if self.on_end:
            self.on_end(rec)
        rec.info_blocks = []  # written into its info file by now

    def finish_capture(self, dropped_sessions: int) -> None:
        if dropped_sessions:
            self.capture_anomalies.append(
                {"kind": Kind.SESSION_LIMIT, "frame": 0,
                 "detail": f"{dropped_sessions} sessions dropped over the open-session limit"})
