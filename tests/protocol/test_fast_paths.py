"""The fast paths give what the general paths give: the core's batched feeding against
one-by-one feeding, and --no-verify-checksums against the default on clean captures (the
checksum verdicts themselves: tests/capture/test_checksums.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.capture import CaptureReader
from analyzer.protocol.core import NetdumpTracker


ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p for p in (ROOT / "samples").iterdir() if p.suffix in (".pcap", ".pcapng"))


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def _items(path, **kw):
    return list(CaptureReader([path], **kw))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_feed_many_equals_feed(path):
    items = _items(str(path))
    one = NetdumpTracker()
    ev1 = []
    for it in items:
        ev1 += one.feed(it)
    ev1 += one.close()
    many = NetdumpTracker()
    ev2 = []
    for k in range(0, len(items), 97):
        ev2 += many.feed_many(items[k:k + 97])
    ev2 += many.close()
    assert ev2 == ev1
    assert [type(e) for e in ev2] == [type(e) for e in ev1]


def test_no_verify_option(tmp_path):
    sample = str(ROOT / "samples" / "clean-13x.pcap")

    def summary(*extra):
        p = subprocess.run([sys.executable, "-m", "analyzer", "summary", sample, "--json", "-",
                            *extra], capture_output=True, text=True, cwd=ROOT)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    assert summary("--no-verify-checksums") == summary()


@pytest.mark.parametrize("seed", range(20))
def test_held_back_writes_land_as_written_in_order(tmp_path, seed):
    import random

    from analyzer.recovery import writer as w
    rnd = random.Random(seed)
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    files = w._DumpFiles(dir_fd, (), "h", 0)
    size = 1 << 16
    ref = bytearray(size)
    written = [False] * size
    pos = 0
    for k in range(400):
        if rnd.random() < 0.7:  # mostly in order, with holes and resends
            start = pos if rnd.random() < 0.8 else pos + rnd.randrange(1, 3000)
        else:
            start = rnd.randrange(0, max(1, pos))
        n = rnd.choice([1448, 1448, 100, 4096, 7])
        start = min(start, size - n)
        data = bytes([k % 251 + 1]) * n
        files.write_vmcore(start, data)
        ref[start:start + n] = data
        written[start:start + n] = [True] * n
        pos = max(pos, start + n)
        if rnd.random() < 0.02:
            files.flush()
    files.flush()
    got = os.pread(files.vmcore_fd, size, 0).ljust(size, b"\0")
    os.close(files.vmcore_fd)
    os.close(dir_fd)
    assert got == bytes(ref)


def test_writer_holds_resends_together(tmp_path, monkeypatch):
    from analyzer.recovery import writer as w
    calls = []
    monkeypatch.setattr(w, "_pwrite_all", lambda fd, data, pos: calls.append((pos, len(data))))
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    files = w._DumpFiles(dir_fd, (), "h", 0)
    chunk = 1448
    for i in range(3000):  # every 50th block is lost, then resent 10 blocks later
        if i % 50 != 7:
            files.write_vmcore(i * chunk, b"x" * chunk)
        if i % 50 == 17:
            files.write_vmcore((i - 10) * chunk, b"y" * chunk)
    files.flush()
    os.close(files.vmcore_fd)
    os.close(dir_fd)
    assert sum(n for _p, n in calls) == 3000 * chunk
    assert len(calls) <= 3


def test_dumps_together_hold_back_a_bounded_amount(tmp_path, monkeypatch):
    from analyzer.recovery import writer as w
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    budget = [0]
    dumps = [w._DumpFiles(dir_fd, (), f"h{i}", 0, None, budget) for i in range(40)]
    chunk = 1448
    for k in range(600):  # 40 clients dumping at once, interleaved
        for i, f in enumerate(dumps):
            f.write_vmcore(k * chunk, bytes([i + 1]) * chunk)
            assert budget[0] <= w.HOLD_ALL + chunk
    for i, f in enumerate(dumps):
        f.flush()
        assert os.pread(f.vmcore_fd, 600 * chunk + 1, 0) == bytes([i + 1]) * (600 * chunk)
        os.close(f.vmcore_fd)
    assert budget[0] == 0
    os.close(dir_fd)
