"""A passive netdumpd for real: while dumpcap is still capturing (one file, or a ring buffer
directory), `extract --follow` has already saved the dump under its final name, written its
info file, its JSON line and run the hook; SIGTERM then ends the run with status 0."""
from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analyzer.simulate.image import DumpImage
from tests.capture.test_streaming import DUMPCAP, ROOT, live_dump, need, started, wait_following
from tests.recovery.test_live_outputs import _recorder as recording_hook
from tests.support.live_tools import CLIENT_IP, FILTER, stop

SIZE = 96 << 10


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _until(done, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.1)
    return done()


@pytest.mark.parametrize("mode", ["file", "ring"])
def test_dump_saved_hooked_and_logged_while_dumpcap_still_runs(tmp_path, mode):
    need(DUMPCAP)
    out, events, calls = tmp_path / "out", tmp_path / "events.jsonl", tmp_path / "calls.jsonl"
    if mode == "ring":
        ring = tmp_path / "ring"
        ring.mkdir()
        target, followed = ["-b", "files:3", "-b", "filesize:40", "-w", str(ring / "cap.pcapng")], ring
    else:
        followed = tmp_path / "live.pcapng"
        target = ["-w", str(followed)]
    dumpcap = subprocess.Popen([DUMPCAP, "-i", "lo", "-f", FILTER, *target],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    analyzer = None
    try:
        started(dumpcap, "Capturing on")
        analyzer = subprocess.Popen(
            [sys.executable, "-m", "analyzer", "extract", "--follow", str(followed), "-o", str(out),
             "--exec", str(recording_hook(tmp_path)), "--json-lines", str(events)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_following(analyzer, followed)
        result = live_dump(41 if mode == "file" else 42)
        core = out / result.vmcore_name
        info = core.with_name(core.name.replace("vmcore.", "info.", 1))
        assert _until(lambda: _lines(calls)), analyzer.stderr.peek() if analyzer.poll() else ""

        assert dumpcap.poll() is None and analyzer.poll() is None  # both still running
        expected = hashlib.sha256(DumpImage(SIZE, 41 if mode == "file" else 42).read(0, SIZE))
        assert hashlib.sha256(core.read_bytes()).hexdigest() == expected.hexdigest()
        assert not list(out.rglob("*.part"))
        assert info.read_text().endswith("Dump complete\n")
        (dump,) = [x for x in _lines(events) if x["event"] == "dump"]
        assert dump["status"] == "complete"
        (call,) = _lines(calls)
        assert call["argv"] == ["success", CLIENT_IP, CLIENT_IP, info.name, core.name]
        assert call["env"] == {} or set(call["env"]) <= {"LC_CTYPE", "PWD"}
        assert Path(call["cwd"]).samefile(core.parent)
        assert not call["stdin_open"]  # standard input closed

        analyzer.send_signal(signal.SIGTERM)
        _out, err = analyzer.communicate(timeout=30)
        assert analyzer.returncode == 0, err
        assert dumpcap.poll() is None  # the run ended on its own signal, not the capture's end
    finally:
        if analyzer is not None and analyzer.poll() is None:
            analyzer.kill()
            analyzer.wait()
        stop(dumpcap)
