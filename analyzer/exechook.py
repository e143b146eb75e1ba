"""``--exec PROGRAM``: netdumpd's ``-i`` hook, run for each dump as soon as it ends.

The contract is netdumpd's (markjdb/netdumpd, exec_handler): the program gets five
arguments, the reason (``success``, ``timeout`` or ``error``), the client's IP address, its
host name (we resolve no names: the address again, as on the info file's first line), the
info file and the core file. It runs with an empty environment and its standard input
closed: ``/bin/sh`` closes descriptor 0 and execs the program, so no code runs between fork
and exec in this threaded process. Unlike netdumpd, whose working directory is its dump directory, it runs
in the dump's own folder, and the two files are named relative to it.

A hook runs beside the capture, never in its way: each one is watched by a thread, killed
(with its process group) after ``timeout`` seconds, and a failure is only reported.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from typing import Callable

from analyzer.recovery.dump import DumpRecord

DEFAULT_TIMEOUT = 60.0
# "$0" is the program, "$@" its arguments; "<&-" closes standard input for it alone.
_CLOSED_STDIN = ("/bin/sh", "-c", 'exec "$0" "$@" <&-')


def reason(rec: DumpRecord) -> str:
    """netdumpd's word for how the dump ended."""
    if rec.complete:
        return "success"
    if not rec.files:  # nothing could be written for it
        return "error"
    return "timeout"


class ExecHook:
    """Call as ``hook(rec)`` once a dump's files are final; ``close()`` waits for the rest."""

    def __init__(self, program: str, outdir: str, timeout: float = DEFAULT_TIMEOUT,
                 warn: Callable[[str], None] | None = None):
        self.program = os.path.abspath(program) if os.sep in program else program
        self.outdir = outdir
        self.timeout = timeout
        self.warn = warn or (lambda text: None)
        self._watchers: list[threading.Thread] = []
        self.results: list[dict] = []  # one per run: dump id, reason, exit status or why not

    def __call__(self, rec: DumpRecord) -> None:
        files = rec.files
        info = files[0] if files else ""
        core = next((f for f in files[1:] if "vmcore" in os.path.basename(f)), "")
        folder = os.path.join(self.outdir, os.path.dirname(info)) if info else self.outdir
        why = reason(rec)
        program = shutil.which(self.program)  # None unless an executable file
        if program is None:
            self._report(rec, why, None, f"cannot run {self.program}: not an executable file")
            return
        argv = [*_CLOSED_STDIN, program, why, rec.client, rec.client, os.path.basename(info),
                os.path.basename(core)]
        try:
            proc = subprocess.Popen(argv, env={}, cwd=folder, stdin=subprocess.DEVNULL,
                                    close_fds=True, start_new_session=True)
        except OSError as exc:
            self._report(rec, why, None, f"cannot run {self.program}: {exc.strerror}")
            return
        watcher = threading.Thread(target=self._watch, args=(proc, rec, why), daemon=True)
        watcher.start()
        self._watchers = [w for w in self._watchers if w.is_alive()]
        self._watchers.append(watcher)

    def _watch(self, proc: subprocess.Popen, rec: DumpRecord, why: str) -> None:
        try:
            status = proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            self._report(rec, why, None, f"killed after {self.timeout:g} s")
            return
        self._report(rec, why, status, None if status == 0 else
                     f"exit status {status}" if status > 0 else f"killed by signal {-status}")

    def _report(self, rec: DumpRecord, why: str, status: int | None, problem: str | None):
        self.results.append({"dump": rec.session, "reason": why, "status": status,
                             "problem": problem})
        if problem:
            self.warn(f"exec hook for dump {rec.session}: {problem}")

    def close(self) -> None:
        """Wait for the hooks still running (each is killed at its own deadline)."""
        for w in self._watchers:
            w.join()
        self._watchers = []
