"""The fast paths give what the general paths give: the checksum helper process against
in-process verification, the core's batched fast lane against one-by-one feeding, and
--no-verify-checksums against the default on clean captures."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.capture import CaptureReader
from analyzer.capture.checksums import Helper
from analyzer.datagram import Datagram
from analyzer.protocol.core import NetdumpTracker
from tests.support import capture_builders as cb


ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p for p in (ROOT / "samples").iterdir() if p.suffix in (".pcap", ".pcapng"))


def _frames():
    """Full-size and small datagrams with every kind of checksum the readers tell apart."""
    payload = bytes(range(256)) * 6  # 1536 bytes: above the inline fold threshold
    out = []
    for i, (ck, ip) in enumerate([
        ("auto", {}), ("bad", {}), ("offload", {}), (0, {}), ("auto", {"bad_checksum": True}),
        ("auto", {"zero_checksum": True}), ("bad", {"zero_checksum": True}),
        (0, {"bad_checksum": True}), ("offload", {"bad_checksum": True}),
    ]):
        for body in (payload[:1448 + 24], payload[:28], payload[:4]):
            sport, dport = (20024, 40001) if len(body) > 4 else (40001, 20024)
            ipp = cb.udp_ip(sport, dport, body, checksum=ck, **ip)
            out.append(cb.ether(ipp))
    return out


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def _items(path, **kw):
    return list(CaptureReader([path], **kw))


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_helper_verdicts_equal_inline(tmp_path, fmt):
    frames = _frames()
    if fmt == "pcap":
        data = cb.pcap([(10**9 + i * 1000, f) for i, f in enumerate(frames)])
    else:
        data = cb.shb() + cb.idb() + b"".join(cb.epb("<", 0, 10**9 + i * 1000, f)
                                            for i, f in enumerate(frames))
    path = _write(tmp_path, "c." + fmt, data)
    inline = _items(path, checksum_helper=False)
    helped = _items(path, checksum_helper=True, chunk_size=4096)  # many batches
    assert helped == inline
    bad = [i.bad_checksum for i in inline if type(i) is Datagram]
    assert any(bad) and not all(bad)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_helper_on_samples(path):
    assert _items(str(path), checksum_helper=True, chunk_size=65536) == \
        _items(str(path), checksum_helper=False)


def test_helper_falls_back_in_process(tmp_path):
    frames = _frames()
    path = _write(tmp_path, "c.pcap", cb.pcap([(10**9 + i, f) for i, f in enumerate(frames)]))
    data = Path(path).read_bytes()
    job, pos, i = [], 24, 0
    while pos < len(data):  # every frame with a UDP checksum: index, IPv4 start, end
        caplen = int.from_bytes(data[pos + 8:pos + 12], "little")
        d = pos + 16
        if data[d + 40:d + 42] != b"\x00\x00":
            job += [i, d + 14, d + 14 + int.from_bytes(data[d + 16:d + 18], "big")]
        pos, i = d + caplen, i + 1
    ref = [d.frame - 1 for d in _items(path, checksum_helper=False)
           if type(d) is Datagram and d.bad_checksum and d.frame - 1 in job[::3]]
    alive = Helper(path)
    alive.send(job)
    assert alive.receive() == ref
    alive.close()
    dead = Helper(path)
    dead.proc.kill()  # the helper dies: its jobs are done here instead
    dead.proc.wait()
    dead.send(job)
    dead.send(job)
    assert dead.receive() == ref and dead.receive() == ref
    dead.close()


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
