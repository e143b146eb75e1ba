"""Writes each dump as netdumpd would have saved it, crash-safely and never overwriting.

Per dump: ``info.<ip>.<N>`` is created exclusively at once (it reserves N and says "Dump
incomplete" until the end); payload bytes go straight to their offsets in
``vmcore.<ip>.<N>.part`` / ``key.<ip>.<N>.part`` with coalesced ``pwrite`` calls; at the end the
parts are fsynced and linked to their final names (``vmcore_encrypted``, ``.gz``/``.zst``
as the KDH says), and the info file gets its final text. Holes stay holes.
"""
from __future__ import annotations

import hashlib
import os

from analyzer.anomalies import Kind
from analyzer.newfiles import NEW_FILE
from analyzer.protocol.events import Message
from analyzer.recovery import infofile
from analyzer.recovery.dump import DumpRecord
from analyzer.recovery.paths import open_directory, relative_name
from analyzer.wire import MAX_DUMPS, MsgType

COALESCE = 1 << 20  # bytes gathered before one pwrite
HOLD = 4 << 20  # bytes held back at most, waiting for resends to fill their holes
MAX_SEGMENTS = 256  # separate ranges held back at most
HOLD_ALL = 16 << 20  # bytes held back by all dumps together at most
MAX_HASHED_HOLES = 64 << 20  # an incomplete file with more zeros than this is not hashed
_KEY = MsgType.EKCD_KEY


def _pwrite_all(fd: int, data, pos: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, pos)
        view, pos = view[n:], pos + n


class WriteError(Exception):
    """The output directory cannot be written at all."""


class _DumpFiles:
    """The open files of one dump."""

    def __init__(self, dir_fd: int, parts: tuple[bytes, ...], host: str, index: int,
                 offload=None, budget: list | None = None):
        self.offload = offload
        self.budget = budget if budget is not None else [0]  # bytes held by all dumps
        self.dir_fd = dir_fd
        self.parts = parts
        self.host = host
        self.index = index
        self.info_name = f"info.{host}.{index}"
        self.vmcore_part = f"vmcore.{host}.{index}.part"
        self.key_part = f"key.{host}.{index}.part"
        self.vmcore_fd = os.open(self.vmcore_part, NEW_FILE, 0o600, dir_fd=dir_fd)
        self.key_fd: int | None = None
        # Data not written yet: non-overlapping, non-touching [start, bytearray] segments in
        # offset order. A resend that fills a hole joins its neighbours, so a lossy transfer
        # still goes out in large writes.
        self.segs: list[list] = []
        self.held = 0  # bytes in segs

    def write_vmcore(self, start: int, data: bytes) -> None:
        segs = self.segs
        n = len(data)
        if segs:
            last = segs[-1]
            if last[0] + len(last[1]) == start:  # the usual case: continues the newest data
                last[1] += data
                self.held += n
                self.budget[0] += n
                if self.held >= HOLD or self.budget[0] >= HOLD_ALL:
                    self._spill()
                return
        elif n >= COALESCE:  # already large: written as it is
            self._write(data, start)
            return
        end = start + n
        i = len(segs)
        while i and segs[i - 1][0] > start:
            i -= 1
        prev = segs[i - 1] if i else None
        nxt = segs[i] if i < len(segs) else None
        if prev is not None and prev[0] + len(prev[1]) >= end:
            # a resend of bytes held here (its ACK was lost): the later copy is the one kept
            prev[1][start - prev[0]:end - prev[0]] = data
            return
        if (prev is not None and prev[0] + len(prev[1]) > start) or \
                (nxt is not None and nxt[0] < end):
            # overlaps held data otherwise: write what is held, then this, in order
            self.flush()
            if n >= COALESCE:
                self._write(data, start)
            else:
                self.segs.append([start, bytearray(data)])
                self.held = n
                self.budget[0] += n
            return
        if prev is not None and prev[0] + len(prev[1]) == start:
            prev[1] += data
            if nxt is not None and nxt[0] == end:
                prev[1] += nxt[1]
                del segs[i]
        elif nxt is not None and nxt[0] == end:
            nxt[0] = start
            nxt[1][0:0] = data
        else:
            segs.insert(i, [start, bytearray(data)])
        self.held += n
        self.budget[0] += n
        if self.held >= HOLD or len(segs) > MAX_SEGMENTS or self.budget[0] >= HOLD_ALL:
            self._spill()

    def _spill(self) -> None:
        """Write the older segments (holes in them are unlikely to be filled soon); keep the
        newest one growing unless it is large already."""
        segs = self.segs
        keep = segs[-1] if len(segs[-1][1]) < COALESCE else None
        for seg in segs:
            if seg is not keep:
                self._write(seg[1], seg[0])
        if self.budget[0] >= HOLD_ALL:  # all dumps together hold too much: this one lets go
            if keep is not None:
                self._write(keep[1], keep[0])
            keep = None
        self.segs = [keep] if keep is not None else []
        held = len(keep[1]) if keep is not None else 0
        self.budget[0] -= self.held - held
        self.held = held

    def flush(self) -> None:
        for start, buf in self.segs:
            self._write(buf, start)
        self.segs = []
        self.budget[0] -= self.held
        self.held = 0

    def _write(self, data, pos: int) -> None:
        if self.offload is not None:
            self.offload.submit(len(data), _pwrite_all, self.vmcore_fd, data, pos)
        else:
            _pwrite_all(self.vmcore_fd, data, pos)

    def drain(self) -> None:
        """Write out everything buffered or in flight."""
        self.flush()
        if self.offload is not None:
            self.offload.wait()

    def write_key(self, start: int, data: bytes) -> None:
        if self.key_fd is None:
            self.key_fd = os.open(self.key_part, NEW_FILE, 0o400, dir_fd=self.dir_fd)
        os.pwrite(self.key_fd, data, start)


class FileWriter:
    """Sink callbacks for :class:`~analyzer.recovery.dump.Recovery` that write the files."""

    def __init__(self, outdir: str, offload=None):
        self.offload = offload  # runs the writes in the background when given
        self.held = [0]  # bytes all dumps hold back, shared with them
        try:
            os.makedirs(outdir, exist_ok=True)
            self.top_fd = os.open(outdir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise WriteError(f"cannot use output directory {outdir}: {exc.strerror}") from exc
        self.outdir = outdir
        self.leftovers = _leftover_parts(outdir)  # *.part files of an interrupted run
        self.open: dict[int, _DumpFiles] = {}
        self._indices: dict[tuple[bytes, ...], dict[str, set[int]]] = {}  # see _taken

    def close(self) -> None:
        os.close(self.top_fd)

    # -- Recovery callbacks -------------------------------------------------------------

    def start(self, rec: DumpRecord) -> None:
        parts = rec.herald_dir
        try:
            dir_fd = open_directory(self.top_fd, parts)
        except OSError as exc:
            if not parts:
                raise WriteError(f"cannot write in {self.outdir}: {exc.strerror}") from exc
            rec.add_anomaly(Kind.PATH_REFUSED, rec.first_frame,
                            f"cannot create {rec.herald_path!r} in the output directory "
                            f"({exc.strerror}); writing to the output directory itself")
            parts = ()
            dir_fd = os.dup(self.top_fd)
        files = self._reserve(dir_fd, parts, rec)
        if files is None:
            os.close(dir_fd)
            return
        self.open[rec.session] = files
        rec.files = [relative_name(parts, files.info_name)]

    def data(self, rec: DumpRecord, ev: Message, start: int, payload: bytes) -> None:
        files = self.open.get(rec.session)
        if files is None:
            return
        if ev.type == _KEY:
            files.write_key(start, payload)
        else:
            files.write_vmcore(start, payload)

    def end(self, rec: DumpRecord) -> None:
        files = self.open.pop(rec.session, None)
        if files is None:
            return
        try:
            self._finish(files, rec)
        finally:
            if self.offload is not None:
                self.offload.settle()  # no write may be left for a closed descriptor
            os.close(files.vmcore_fd)
            if files.key_fd is not None:
                os.close(files.key_fd)
            os.close(files.dir_fd)

    # -- helpers ------------------------------------------------------------------------

    def _taken(self, dir_fd: int, parts: tuple[bytes, ...]) -> dict[str, set[int]]:
        """Indices in use per host in a directory: listed once per run, then kept up to date
        (a listing per dump is quadratic when thousands of dumps share a directory; a file
        made by someone else meanwhile is still caught by O_EXCL)."""
        known = self._indices.get(parts)
        if known is not None:
            return known
        if len(self._indices) >= 1024:
            self._indices.clear()
        known = self._indices[parts] = {}
        try:
            names = os.listdir(dir_fd)
        except OSError:
            names = []
        for name in names:
            for stem in ("info.", "vmcore.", "vmcore_encrypted.", "key."):
                if name.startswith(stem):
                    host, _, idx = name[len(stem):].rpartition(".")
                    if not idx.isdigit():  # a suffix (.gz, .part): the index is before it
                        host, _, idx = host.rpartition(".")
                    if idx.isdigit() and host:
                        known.setdefault(host, set()).add(int(idx))
                    break
        return known

    def _reserve(self, dir_fd: int, parts: tuple[bytes, ...], rec: DumpRecord) -> _DumpFiles | None:
        """Pick N as netdumpd does (bounds file, else the first free index) and claim it."""
        host = rec.client
        taken = self._taken(dir_fd, parts).setdefault(host, set())
        order = list(range(MAX_DUMPS))
        hint = _read_bounds(dir_fd, host)
        if hint is not None and 0 <= hint < MAX_DUMPS:
            order.insert(0, hint)
        header = infofile.first_line(host, host) + b"Dump incomplete: extraction in progress\n"
        for index in order:
            if index in taken:
                continue
            try:
                fd = os.open(f"info.{host}.{index}", NEW_FILE, 0o600, dir_fd=dir_fd)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(header)
            taken.add(index)
            try:
                return _DumpFiles(dir_fd, parts, host, index, self.offload, self.held)
            except FileExistsError:
                os.unlink(f"info.{host}.{index}", dir_fd=dir_fd)
                continue
        rec.add_anomaly(Kind.NO_FREE_INDEX, rec.first_frame,
                        f"no free index below {MAX_DUMPS} for {host}; dump not written")
        return None

    def _finish(self, files: _DumpFiles, rec: DumpRecord) -> None:
        files.drain()
        fd, dir_fd = files.vmcore_fd, files.dir_fd
        view = rec.view
        length = rec.file_length
        size = os.fstat(fd).st_size
        if view is not None and view.truncate_to is not None and rec.kdh_length_ok:
            os.ftruncate(fd, view.truncate_to)  # netdumpd chops the compressed block padding
        elif size != length:
            # Shorter: a hole at the end stays a hole, at the right size. Longer: data sent
            # before the KDH past its dumplength, refused (reported as offset-out-of-range).
            os.ftruncate(fd, length)
        os.fsync(fd)
        name = f"vmcore_encrypted.{files.host}.{files.index}" if view and view.encrypted \
            else f"vmcore.{files.host}.{files.index}"
        name += view.suffix if view else ""
        final = [(files.vmcore_part, name)]
        if files.key_fd is not None:
            os.fsync(files.key_fd)
            final.append((files.key_part, f"key.{files.host}.{files.index}"))
        written = [relative_name(files.parts, files.info_name)]
        for part, target in final:
            try:
                os.link(part, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                os.unlink(part, dir_fd=dir_fd)
                written.append(relative_name(files.parts, target))
            except FileExistsError:
                rec.add_anomaly(Kind.NAME_TAKEN, rec.last_frame,
                                f"{target} appeared meanwhile; kept the data as {part}")
                written.append(relative_name(files.parts, part))
        if rec.sha256 is None:
            size = os.fstat(fd).st_size
            if size - rec.vmcore.total <= MAX_HASHED_HOLES:
                rec.sha256 = _sha256_of(fd, size)
        rec.files = written
        self._write_info(files, rec)

    @staticmethod
    def _write_info(files: _DumpFiles, rec: DumpRecord) -> None:
        tmp = files.info_name + ".part"
        fd = os.open(tmp, NEW_FILE, 0o600, dir_fd=files.dir_fd)
        with os.fdopen(fd, "wb") as f:
            f.write(info_text(rec))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, files.info_name, src_dir_fd=files.dir_fd, dst_dir_fd=files.dir_fd)


def info_text(rec: DumpRecord) -> bytes:
    """netdumpd's info file for this dump, plus the missing ranges when it is incomplete."""
    text = [infofile.first_line(rec.client, rec.client), *rec.info_blocks]
    if rec.complete:
        text.append(infofile.STATUS_COMPLETE)
        return b"".join(text)
    text.append(infofile.missing_lines(rec.vmcore_missing(), "vmcore"))
    text.append(infofile.missing_lines(rec.key_missing(), "key"))
    if rec.kdh_raw is None:
        text.append(b"  Missing: the kerneldumpheader (KDH) was not captured\n")
    if rec.refused:
        text.append(infofile.STATUS_REFUSED)
    elif not rec.finished_frame and rec.cut_frame:
        text.append(infofile.status_cut(rec.frames.label(rec.cut_frame)))
    elif not rec.finished_frame:
        text.append(infofile.STATUS_TIMED_OUT)
    else:
        text.append(infofile.STATUS_LACKING)
    return b"".join(text)


_STEMS = ("info.", "vmcore.", "vmcore_encrypted.", "key.")
MAX_SCANNED = 100_000  # directory entries looked at for leftovers at most


def _leftover_parts(outdir: str) -> list[str]:
    """The dump files still under a ``.part`` name in the output directory (relative
    paths, sorted): an earlier run was interrupted there. They are left as they are."""
    found, seen = [], 0
    for top, dirs, names in os.walk(outdir):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
        seen += len(names) + len(dirs)
        found += [os.path.relpath(os.path.join(top, n), outdir) for n in names
                  if n.endswith(".part") and n.startswith(_STEMS)]
        if seen > MAX_SCANNED:
            break
    return sorted(found)


def _read_bounds(dir_fd: int, host: str) -> int | None:
    try:
        fd = os.open(f"bounds.{host}", os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        text = f.read(16).split(b"\n", 1)[0].strip()
    return int(text) if text.isdigit() else None


def _sha256_of(fd: int, size: int) -> str:
    sha = hashlib.sha256()
    pos = 0
    while pos < size:
        chunk = os.pread(fd, min(8 << 20, size - pos), pos)
        if not chunk:
            break
        sha.update(chunk)
        pos += len(chunk)
    return sha.hexdigest()
