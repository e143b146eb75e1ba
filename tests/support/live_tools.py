"""Real capture tools on loopback for the live tests: addresses of this test process's own
(other test runs may dump over loopback at the same time), starting and stopping a tool."""
from __future__ import annotations

import os
import signal
import subprocess
import time

_NET = f"127.{100 + os.getpid() % 100}.{os.getpid() // 100 % 250 + 1}"
CLIENT_IP, SERVER_IP = f"{_NET}.2", f"{_NET}.1"
FILTER = f"host {CLIENT_IP} and (udp port 20023 or udp port 20024)"


def wait_started(proc: subprocess.Popen, marker: str, timeout: float = 10) -> str:
    """Read the tool's standard error until ``marker`` (it is capturing); '' when it exited."""
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if marker in line or proc.poll() is not None:
            break
    if proc.poll() is not None:
        return ""
    time.sleep(0.3)
    return line


def stop(proc: subprocess.Popen) -> None:
    """SIGINT, as a user stops a capture, after a moment for the last packets."""
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
