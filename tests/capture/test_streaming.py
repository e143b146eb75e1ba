"""Captures read as they are written: standard input, pipes, FIFOs, gzip streams, a growing
file (--follow), ring buffers, and the real tools writing them (tcpdump, dumpcap)."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from analyzer.capture import CaptureReader
from analyzer.capture.follow import Follow
from tests.support.capture_builders import ether, pcap, udp_ip
from tests.support.live_tools import CLIENT_IP, FILTER, SERVER_IP, stop, wait_started

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples").glob("*.pcap*"))
T0 = 1_700_000_000_000_000_000


def cli(*args, stdin=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], cwd=ROOT,
                          stdin=stdin, capture_output=True, timeout=timeout)


def without_paths(rep):
    """The report with the capture's name (a path, or "-") taken out wherever it is given."""
    names = {c["path"] for c in rep["captures"]}

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if not (k == "path" and x in names)}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return "<capture>" if isinstance(v, str) and v in names else v
    return strip(rep)


def report_of(p) -> dict:
    return without_paths(json.loads(p.stdout))


def slow_writer(path: Path, data: bytes, step: int, pause: float = 0.02) -> threading.Thread:
    def run():
        with open(path, "ab", buffering=0) as f:
            for i in range(0, len(data), step):
                f.write(data[i:i + step])
                time.sleep(pause)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# -- standard input, pipes, FIFOs -------------------------------------------------------------

@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_piped_input_gives_the_same_report_as_the_file(sample):
    by_file = cli("summary", "--json", "-", sample)
    with open(sample, "rb") as f:
        by_pipe = cli("summary", "--json", "-", "-", stdin=f)
    assert by_pipe.returncode == by_file.returncode
    assert report_of(by_pipe) == report_of(by_file)


def test_gzip_stream_on_standard_input(tmp_path):
    sample = ROOT / "samples" / "clean-13x.pcap"
    gz = tmp_path / "c.pcap.gz"
    gz.write_bytes(gzip.compress(sample.read_bytes()))
    cat = subprocess.Popen(["cat", str(gz)], stdout=subprocess.PIPE)
    by_pipe = cli("summary", "--json", "-", "-", stdin=cat.stdout)
    cat.wait()
    assert by_pipe.returncode == 0
    assert report_of(by_pipe) == report_of(cli("summary", "--json", "-", sample))


def test_fifo_is_read_like_the_file(tmp_path):
    sample = ROOT / "samples" / "lossy-12x.pcapng"
    fifo = tmp_path / f"cap-{os.getpid()}.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(sample.read_bytes()), daemon=True)
    writer.start()
    reader = CaptureReader([str(fifo)])
    items = list(reader)
    writer.join(5)
    ref = CaptureReader([str(sample)])
    assert items == list(ref)
    assert reader.captures[0]["frames"] == ref.captures[0]["frames"]


def test_stream_opened_several_times_is_read_once_from_its_start(tmp_path):
    # the pipeline opens its captures to check them before it reads them
    data = pcap([(T0 + i, ether(udp_ip(20024, 20023, b"x%d" % i))) for i in range(50)])
    r, w = os.pipe()
    threading.Thread(target=lambda: (os.write(w, data), os.close(w)), daemon=True).start()
    path = f"/dev/fd/{r}"
    try:
        CaptureReader([path])
        reader = CaptureReader([path])
        assert [d.payload for d in reader] == [b"x%d" % i for i in range(50)]
    finally:
        os.close(r)


# -- follow mode ------------------------------------------------------------------------------

def test_follow_waits_for_a_record_written_in_pieces(tmp_path):
    sample = (ROOT / "samples" / "clean-13x.pcap").read_bytes()
    grow = tmp_path / "grow.pcap"
    grow.write_bytes(b"")
    writer = slow_writer(grow, sample, 7777)  # cuts records and the file header alike
    got = cli("summary", "--json", "-", "--follow", "--idle", "1.5", grow)
    writer.join(10)
    assert got.returncode == 0, got.stderr
    rep = report_of(got)
    assert rep == report_of(cli("summary", "--json", "-", ROOT / "samples" / "clean-13x.pcap"))
    assert not rep["captures"][0]["truncated"]


def test_follow_ends_on_sigterm_with_the_usual_status(tmp_path):
    sample = ROOT / "samples" / "clean-13x.pcap"
    grow = tmp_path / "grow.pcap"
    grow.write_bytes(sample.read_bytes())
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", "summary", "--json", "-",
                             "--follow", str(grow)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    time.sleep(2.0)
    assert proc.poll() is None  # still following
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out)["sessions"][0]["status"] == "complete"


def test_idle_needs_follow(tmp_path):
    p = cli("summary", "--idle", "3", ROOT / "samples" / "clean-13x.pcap")
    assert p.returncode == 2 and b"--follow" in p.stderr


def test_ring_buffer_directory_is_read_in_name_order_as_files_appear(tmp_path):
    frames = [ether(udp_ip(20024, 20023, b"r%02d" % i)) for i in range(30)]
    ring = tmp_path / "ring"
    ring.mkdir()
    names = [f"cap_{n:05d}_20260101000000.pcap" for n in range(1, 4)]

    def dumpcap_like():
        for k, name in enumerate(names):
            part = pcap([(T0 + i, frames[i]) for i in range(10 * k, 10 * k + 10)])
            (ring / name).write_bytes(part[:100])
            time.sleep(0.3)
            with open(ring / name, "ab") as f:
                f.write(part[100:])
            time.sleep(0.3)
        (ring / names[0]).unlink()  # the ring buffer drops its oldest file
    t = threading.Thread(target=dumpcap_like, daemon=True)
    t.start()
    reader = CaptureReader([str(ring)], follow=Follow(idle=1.5))
    got = [d.payload for d in reader]
    t.join(10)
    assert got == [b"r%02d" % i for i in range(30)]
    assert [c["frames"] for c in reader.captures] == [10, 10, 10]
    assert [os.path.basename(c["path"]) for c in reader.captures] == names
    assert not any(c["truncated"] for c in reader.captures)


def test_ring_file_deleted_before_it_is_read_is_not_an_error(tmp_path):
    ring = tmp_path / "ring"
    ring.mkdir()
    data = pcap([(T0, ether(udp_ip(20024, 20023, b"kept")))])
    (ring / "a_00002.pcap").write_bytes(data)
    follow = Follow(idle=0.5)
    reader = CaptureReader([str(ring / "a_*.pcap")], follow=follow)
    (ring / "a_00001.pcap").write_bytes(data)  # listed, then gone before it is opened
    os.unlink(ring / "a_00001.pcap")
    assert [d.payload for d in reader] == [b"kept"]


# -- real capture tools, while a client dumps over loopback -----------------------------------

TCPDUMP = shutil.which("tcpdump")
DUMPCAP = shutil.which("dumpcap")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
def need(tool):
    problems = [] if tool else ["the capture tool is not installed"]
    if os.geteuid() != 0:
        problems.append("not running as root")
    if problems:
        if IN_CI:
            pytest.fail("; ".join(problems))
        pytest.skip("; ".join(problems))


def started(proc, marker: str):
    if not wait_started(proc, marker):
        pytest.fail(f"capture tool exited early: {proc.stderr.read()}")


def settled(path: Path, quiet: float = 1.5):
    """Until ``path`` has not grown for ``quiet`` seconds (at most 30 s)."""
    deadline = time.monotonic() + 30
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = path.stat().st_size if path.exists() else 0
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def wait_following(proc, path: Path):
    """Until the analyzer has a file at or under ``path`` open (it starts slowly on a busy
    machine, and a ring buffer drops files it has not read)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            fds = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")]
        except OSError:
            fds = []
        if any(f.startswith(str(path)) for f in fds):
            return
        time.sleep(0.05)
    pytest.fail("the analyzer did not start following")


def live_dump(seed: int):
    from analyzer.simulate.image import DumpImage
    from analyzer.simulate.live import run_live
    result = run_live(96 << 10, "13", path=None, seed=seed, client_ip=CLIENT_IP,
                      server_ip=SERVER_IP)
    assert result.outcome == "finished"
    assert result.vmcore == DumpImage(96 << 10, seed).read(0, 96 << 10)
    return result


def test_tcpdump_into_a_pipe(tmp_path):
    need(TCPDUMP)
    copy = tmp_path / "copy.pcap"
    tcpdump = subprocess.Popen([TCPDUMP, "-i", "lo", "-U", "-B", "16384", "-w", "-", FILTER],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False)
    tee = subprocess.Popen(["tee", str(copy)], stdin=tcpdump.stdout, stdout=subprocess.PIPE)
    tcpdump.stdout.close()
    analyzer = subprocess.Popen([sys.executable, "-m", "analyzer", "extract", "--json", "-",
                                 "-", "-o", str(tmp_path / "out")], cwd=ROOT, stdin=tee.stdout,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tee.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # tcpdump says "listening on lo" once it captures
        if b"listening" in tcpdump.stderr.readline():
            break
    time.sleep(0.3)
    try:
        result = live_dump(31)
        settled(copy)  # all written: tcpdump drops what it holds when it is stopped
    finally:
        stop(tcpdump)
    out, err = analyzer.communicate(timeout=60)
    tee.wait(10)
    assert analyzer.returncode == 0, err
    assert copy.stat().st_size > 24, tcpdump.stderr.read()
    piped = without_paths(json.loads(out))
    assert (tmp_path / "out" / result.vmcore_name).read_bytes() == result.vmcore
    by_file = report_of(cli("summary", "--json", "-", copy))
    for s in piped["sessions"] + by_file["sessions"]:
        s.pop("files", None)  # extract names what it wrote; summary writes nothing
        s.pop("inspect", None)  # and extract inspects the dump files it wrote
    assert piped["sessions"] == by_file["sessions"]
    assert piped["captures"] == by_file["captures"]


def test_dumpcap_file_followed_while_it_is_written(tmp_path):
    need(DUMPCAP)
    cap = tmp_path / "live.pcapng"
    dumpcap = subprocess.Popen([DUMPCAP, "-i", "lo", "-f", FILTER, "-w", str(cap)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started(dumpcap, "Capturing on")
    analyzer = subprocess.Popen([sys.executable, "-m", "analyzer", "extract", "--follow",
                                 "--idle", "4", "--json", "-", str(cap), "-o",
                                 str(tmp_path / "out")], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    wait_following(analyzer, cap)
    try:
        result = live_dump(32)
        time.sleep(1)
    finally:
        stop(dumpcap)
    out, err = analyzer.communicate(timeout=60)
    followed = without_paths(json.loads(out))
    by_file = report_of(cli("summary", "--json", "-", cap))
    assert analyzer.returncode == 0, (err, followed["captures"], by_file["captures"],
                                      followed["sessions"][0]["anomalies"][:4])
    assert (tmp_path / "out" / result.vmcore_name).read_bytes() == result.vmcore
    by_file = report_of(cli("summary", "--json", "-", cap))
    assert followed["captures"] == by_file["captures"]
    assert [s["messages"] for s in followed["sessions"]] == [s["messages"] for s in by_file["sessions"]]


def test_dumpcap_ring_buffer_followed(tmp_path):
    need(DUMPCAP)
    ring = tmp_path / "ring"
    ring.mkdir()
    dumpcap = subprocess.Popen([DUMPCAP, "-i", "lo", "-f", FILTER, "-b", "files:3",
                                "-b", "filesize:100", "-w", str(ring / "cap.pcapng")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started(dumpcap, "Capturing on")
    analyzer = subprocess.Popen([sys.executable, "-m", "analyzer", "summary", "--follow",
                                 "--idle", "4", "--json", "-", str(ring)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_following(analyzer, ring)
    try:
        for seed in (33, 34, 35, 36):  # a dump every half second: the ring turns over
            live_dump(seed)
            time.sleep(0.5)
    finally:
        stop(dumpcap)
    out, err = analyzer.communicate(timeout=60)
    assert analyzer.returncode == 0, err
    rep = json.loads(out)
    assert len(rep["captures"]) > 3  # more files than the ring keeps: all of them were read
    assert len(os.listdir(ring)) == 3
    assert [(s["status"], s["vmcore"]["received"]) for s in rep["sessions"]] == [("complete", 96 << 10)] * 4
