"""Byte sources for capture files: plain files and gzip streams, read in large chunks.

A source never raises while reading: an I/O error or corrupt compressed data ends the
stream early and is remembered in ``error`` so the walker can report the loss.
"""
from __future__ import annotations

import os
import select
import stat
import sys
import zlib


class CaptureError(Exception):
    """A capture file cannot be read at all (one-line human message)."""


GZIP_MAGIC = b"\x1f\x8b"
_RAW_CHUNK = 1 << 20  # compressed bytes fed to zlib at a time


class _Source:
    """What both sources keep: the file, the bytes of it consumed, the error that ended it."""

    __slots__ = ("f", "raw_pos", "error")

    def __init__(self, f):
        self.f = f
        self.raw_pos = 0  # bytes of the file on disk consumed so far
        self.error: str | None = None

    def close(self) -> None:
        try:
            self.f.close()
        except OSError:
            pass

    def _read_file(self, n: int) -> bytes:
        """Up to ``n`` bytes of the file; an error ends the stream (``error`` says why)."""
        try:
            data = self.f.read(n)
        except (OSError, ValueError) as e:
            self.error = f"read error: {e}"
            return b""
        self.raw_pos += len(data)
        return data


class PlainSource(_Source):
    __slots__ = ()

    def read(self, n: int) -> bytes:
        return b"" if self.error is not None else self._read_file(n)


class GzipSource(_Source):
    """Streams the members of a gzip file through zlib with bounded output per call."""

    __slots__ = ("_d", "_pending", "_done", "_carry")

    def __init__(self, f):
        super().__init__(f)
        self._d = zlib.decompressobj(31)  # gzip wrapper only; checks CRC and length
        self._pending = b""  # compressed input not yet given to zlib
        self._done = False
        self._carry = b""  # output salvaged past a corrupt point, not yet returned

    def _raw(self) -> bytes:
        return self._read_file(_RAW_CHUNK)

    @staticmethod
    def _salvage(d, data: bytes) -> bytes:
        """Everything ``d`` yields from ``data`` before the corrupt byte, whatever the read
        sizes were: zlib drops a failing call's output, so feed small slices, then bytes."""
        out: list[bytes] = []
        step = 256
        pos = 0
        while pos < len(data):
            before = d.copy()
            try:
                out.append(d.decompress(data[pos:pos + step]))
                pos += step
            except zlib.error:
                if step == 1:
                    break
                d, step = before, 1
        return b"".join(out)

    def read(self, n: int) -> bytes:
        out: list[bytes] = []
        got = 0
        if self._carry:
            out.append(self._carry[:n])
            got = len(out[0])
            self._carry = self._carry[n:]
        d = self._d
        while got < n and not self._done:
            if d.unconsumed_tail:
                data = d.unconsumed_tail
            elif self._pending:
                data, self._pending = self._pending, b""
            else:
                data = self._raw()
            saved = d.copy()
            try:
                chunk = d.decompress(data, n - got)
            except zlib.error as e:
                self._done = True
                self.error = f"compressed data is corrupt ({e})"
                rest = self._salvage(saved, data)
                out.append(rest[:n - got])
                self._carry = rest[n - got:]
                break
            if chunk:
                out.append(chunk)
                got += len(chunk)
            if d.eof:
                rest = d.unused_data
                if len(rest) < 2:
                    rest += self._raw()
                if rest[:2] == GZIP_MAGIC:  # another gzip member follows
                    self._d = d = zlib.decompressobj(31)
                    self._pending = rest
                else:  # end of data; trailing bytes after the last member are ignored
                    self._done = True
            elif not data and not chunk:  # input exhausted, zlib has nothing more
                self._done = True
                if self.error is None:
                    self.error = "the compressed stream ends before its end marker"
        return b"".join(out)


class StreamFile:
    """A pipe, FIFO or character device read as a file: the bytes looked at to recognise it
    come first, a read returns what is there (several reads while more is ready, up to the
    size asked), and a wait for data can be ended by ``stop`` (follow mode's signals)."""

    def __init__(self, f, head: bytes):
        self.f = f
        self.fd = f.fileno()
        self.head = head
        self.stop = None  # a callable: True when the wait should end (see follow.py)

    def read(self, n: int) -> bytes:
        if self.head:
            data, self.head = self.head[:n], self.head[n:]
            return data
        parts = []
        got = 0
        wait = True
        while got < n:
            if not self._ready(wait):
                break
            data = self.f.read(min(n - got, 1 << 20))
            if not data:
                break
            parts.append(data)
            got += len(data)
            wait = False  # after the first read only take what is there already
        return b"".join(parts)

    def _ready(self, wait: bool) -> bool:
        while True:
            try:
                r, _, _ = select.select([self.fd], [], [], 0.2 if wait else 0)
            except (OSError, ValueError):
                return True  # not selectable: let read() block or fail
            if r:
                return True
            if not wait or (self.stop is not None and self.stop()):
                return False

    def close(self) -> None:
        self.f.close()


class _Head:
    """A followed file's first bytes, read to recognise it, handed back first."""

    def __init__(self, f, head: bytes = b""):
        self.f = f
        self.head = head

    def read(self, n: int) -> bytes:
        if self.head:
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.f.read(n)

    def close(self) -> None:
        self.f.close()


PIPE_SIZE = 1 << 20  # Linux's default limit for an unprivileged process (pipe-max-size)


def _widen_pipe(fd: int) -> None:
    """Let the pipe hold 1 MiB instead of 64 KiB: each read then takes up to 16 times more
    of what the writer has sent, so a capture piped in costs far fewer reads and wake-ups
    (where the system refuses, the pipe stays as it is)."""
    try:
        import fcntl
        if fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) < PIPE_SIZE:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass


def open_source(path: str, follow=None, newer=None, f=None):
    """Open ``path`` (``-`` is standard input) and return ``(source, size_on_disk,
    stream)``; CaptureError when impossible (``f``: the file, opened already). A stream
    (pipe, FIFO, device) is never seeked.
    With ``follow`` (a ``follow.Follow``) a regular file is read as it grows (``newer``:
    see ``follow.GrowingFile``) and a stream's waits end when following stops."""
    try:
        if f is not None:
            pass  # opened already (a ring buffer's file, see follow.Ring)
        elif path == "-":
            f = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
        else:
            f = open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{path}: is a directory") from None
    except PermissionError:
        raise CaptureError(f"{path}: permission denied") from None
    except (OSError, ValueError, AttributeError) as e:
        raise CaptureError(f"{path}: cannot open: {getattr(e, 'strerror', None) or e}") from None
    try:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        stream = not stat.S_ISREG(st.st_mode)
        if stream or follow is not None:
            if stream:
                if stat.S_ISFIFO(st.st_mode):
                    _widen_pipe(f.fileno())
                raw = StreamFile(f, b"")
                raw.stop = follow.should_stop if follow is not None else None
            else:
                from analyzer.capture.follow import GrowingFile
                raw = _Head(GrowingFile(f, follow, newer))
            head = b""
            while len(head) < 2:
                more = raw.read(2 - len(head))
                if not more:
                    break
                head += more
            raw.head = head
            size = 0 if stream else st.st_size
        else:
            size = st.st_size
            head = f.read(2)
            f.seek(0)
            raw = f
    except IsADirectoryError:
        f.close()
        raise CaptureError(f"{path}: is a directory") from None
    except OSError as e:
        f.close()
        raise CaptureError(f"{path}: cannot read: {e.strerror or e}") from None
    if not head:
        f.close()
        raise CaptureError(f"{path}: empty {'input' if stream else 'file'}")
    if head == GZIP_MAGIC:
        return GzipSource(raw), size, stream
    return PlainSource(raw), size, stream
