"""A real netdump exchange on loopback, captured by dumpcap, recovered by the command line."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analyzer.simulate.image import DumpImage
from analyzer.simulate.live import run_live
from tests.support.live_tools import CLIENT_IP, FILTER, SERVER_IP, stop, wait_started

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DUMPCAP = shutil.which("dumpcap") or ("/usr/bin/dumpcap" if os.path.exists("/usr/bin/dumpcap") else None)


def _require_capture():
    problems = []
    if DUMPCAP is None:
        problems.append("dumpcap is not installed")
    if os.geteuid() != 0:
        problems.append("not running as root")
    if problems:
        if IN_CI:
            pytest.fail("live capture test cannot run in CI: " + "; ".join(problems))
        pytest.skip("; ".join(problems))


def _start_dumpcap(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([DUMPCAP, "-i", "lo", "-f", FILTER, "-w", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # dumpcap reports "Capturing on 'Loopback: lo'" once the filter is attached
    if not wait_started(proc, "Capturing on"):
        pytest.fail(f"dumpcap exited early: {proc.stderr.read()}")
    return proc


@pytest.mark.parametrize("generation", ["13", "12"])
def test_live_loopback_capture_recovers_dump(tmp_path, generation, monkeypatch):
    _require_capture()
    cap = tmp_path / "live.pcapng"
    proc = _start_dumpcap(cap)
    try:
        started = time.monotonic()
        result = run_live(96 << 10, generation, path=None, seed=21, client_ip=CLIENT_IP,
                          server_ip=SERVER_IP,
                          drop_first_send_of=(4, 9))  # two real resends after the poll timeout
        assert time.monotonic() - started < 10
    finally:
        stop(proc)
    assert result.outcome == "finished"
    expected = DumpImage(96 << 10, 21).read(0, 96 << 10)
    assert result.vmcore == expected
    assert cap.exists() and cap.stat().st_size > 0

    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "analyzer", "extract", str(cap), "-o", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    got = out / result.vmcore_name
    assert got.exists(), (run.stdout, sorted(p.name for p in out.rglob("*")))
    assert got.read_bytes() == expected
    info = (out / f"info.{result.client_ip}.0").read_bytes()
    assert info.startswith(f"Dump from {result.client_ip} [{result.client_ip}]\n".encode())
    assert info.endswith(b"Dump complete\n")

    # The Lua dissector reads the same real capture and counts what the analyzer counts.
    if shutil.which("tshark") is None:
        if IN_CI:
            pytest.fail("tshark is required in CI (make test-deps installs it)")
        return
    from tests.dissector.test_dissector_agreement import analyzer_sessions, dissector_sessions
    for name in ("WIRESHARK_CONFIG_DIR", "HOME", "XDG_CONFIG_HOME"):
        (tmp_path / name.lower()).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    ours = dissector_sessions(cap)
    assert ours and ours[0]["messages"]["VMCORE"] > 0
    assert ours == analyzer_sessions(cap)
