"""A capture piped in is read through a 1 MiB pipe, not the default 64 KiB one: each read
takes up to 16 times more of what the writer sent (``cat CAPTURE | extract -`` went from
1.49x to 1.05x the time of reading the file, 1 GiB capture)."""
from __future__ import annotations

import fcntl
import os
import threading

import pytest

from analyzer.capture import CaptureReader
from analyzer.capture.source import PIPE_SIZE
from tests.support import capture_builders as cb


def _max_pipe() -> int:
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


@pytest.mark.skipif(os.geteuid() != 0 and _max_pipe() < PIPE_SIZE,
                    reason="this system does not let a process make a 1 MiB pipe")
def test_a_fifo_read_as_a_capture_is_widened_to_1_mib_and_read_whole(tmp_path):
    r, w = os.pipe()
    default = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
    os.close(r)
    os.close(w)
    assert default < PIPE_SIZE  # (else there would be nothing to widen)
    frames = [cb.ether(cb.udp_ip(20024, 20023, cb.msg(1, 0)))] * 50
    data = cb.pcap([(10**9 + i, f) for i, f in enumerate(frames)])
    fifo = tmp_path / "cap.fifo"
    os.mkfifo(fifo)
    sizes = []

    def write():
        fd = os.open(fifo, os.O_WRONLY)
        try:
            os.write(fd, data[:24])
            while fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) < PIPE_SIZE and len(sizes) < 2000:
                sizes.append(0)
                threading.Event().wait(0.005)
            sizes.append(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
            os.write(fd, data[24:])
        finally:
            os.close(fd)

    t = threading.Thread(target=write)
    t.start()
    items = list(CaptureReader([str(fifo)]))
    t.join()
    assert sizes[-1] == PIPE_SIZE
    assert len(items) == 50
