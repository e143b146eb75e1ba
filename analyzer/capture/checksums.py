"""Checksum verification of full-size datagrams on the second core.

Verifying the UDP checksum of a 1500-byte frame costs more than everything else the fast
path does for it. For a plain (uncompressed) capture file the walkers can instead note
where each datagram lies in the file; a helper process reads those bytes itself (from the
page cache) and returns the ones whose checksum is wrong, while this process goes on
parsing. The verdict is the one the inline code gives: same arithmetic, same offload rule.
If the helper cannot be started or fails, the same function runs here.

Helper protocol (stdin/stdout, frames of a 4-byte length and a marshal payload): a job is a
flat list ``[index, start, end, index, start, end, ...]`` (file offsets of an IPv4 header
without options and the end of its UDP datagram); the answer is the list of the indices
whose datagram is bad.

    python -c "from analyzer.capture.checksums import serve; serve()" CAPTURE  # the helper
"""
from __future__ import annotations

import marshal
import os
import struct
import subprocess
import sys

_LEN = struct.Struct("<I")
SPAN = 4 << 20  # most bytes read at once by the helper
PIPE_SIZE = 1 << 20  # bytes of jobs the pipe to the helper holds


def bad_indices(fd: int, job: list) -> list:
    """Indices of the job's datagrams whose IPv4 or UDP checksum is wrong (not offload)."""
    from analyzer.capture.decode import datagram_bad

    out = []
    i, n = 0, len(job)
    while i < n:
        # read a span of the file holding as many datagrams as fit
        lo = job[i + 1]
        j = i
        while j < n and job[j + 2] - lo <= SPAN:
            j += 3
        if j == i:
            j = i + 3
        hi = job[j - 1]
        data = os.pread(fd, hi - lo, lo)
        for k in range(i, j, 3):
            s, e = job[k + 1] - lo, job[k + 2] - lo
            if e > len(data):
                out.append(job[k])  # the file changed under us: do not trust it
                continue
            if datagram_bad(data, s, e, e - s - 20, data[s + 12:s + 16], data[s + 16:s + 20],
                            data[s + 26] << 8 | data[s + 27]):
                out.append(job[k])
        i = j
    return out


class Helper:
    """The helper process for one capture file, with an in-process fallback."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        self.proc = None
        self.waiting: list = []  # jobs sent, answers not read yet (or jobs to do here)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from analyzer.capture.checksums import serve; serve()",
                 path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
                cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        except OSError:
            self.proc = None
        if self.proc is not None:
            try:  # room for a few jobs in the pipe: sending must not wait for the helper
                import fcntl
                fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except (ImportError, AttributeError, OSError):
                pass

    def send(self, job: list) -> None:
        if self.proc is not None and job:
            try:
                data = marshal.dumps(job)
                self.proc.stdin.write(_LEN.pack(len(data)) + data)
                self.waiting.append((job, True))
                return
            except (OSError, ValueError):
                self._lost()
        self.waiting.append((job, False))

    def receive(self) -> list:
        """The bad indices of the oldest job sent."""
        job, remote = self.waiting.pop(0)
        if not job:
            return []
        if remote and self.proc is not None:
            try:
                head = _read_exact(self.proc.stdout, 4)
                answer = marshal.loads(_read_exact(self.proc.stdout, _LEN.unpack(head)[0]))
                if isinstance(answer, list):
                    return answer
            except (OSError, ValueError, EOFError, TypeError):
                pass
            self._lost()
        return bad_indices(self.fd, job)

    def _lost(self) -> None:
        """The helper failed: every job from now on is done here, outstanding ones too."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop(proc)
        self.waiting = [(job, False) for job, _remote in self.waiting]

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
        os.close(self.fd)


def _stop(proc) -> None:
    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    try:
        proc.stdout.close()
    except OSError:
        pass


def _read_exact(f, n: int) -> bytes:
    parts = []
    while n:
        b = f.read(n)
        if not b:
            raise EOFError
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def serve() -> None:
    """The helper's main loop: jobs on stdin, answers on stdout, until stdin closes."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    fd = os.open(sys.argv[1], os.O_RDONLY)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        job = marshal.loads(_read_exact(inp, _LEN.unpack(head)[0]))
        data = marshal.dumps(bad_indices(fd, job))
        out.write(_LEN.pack(len(data)) + data)
        out.flush()

