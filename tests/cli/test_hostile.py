"""Hostile and broken captures, end to end through ``python -m analyzer``.

Nothing crashes (one-line errors, defined exit codes, never a traceback), nothing escapes the
output directory (no writes outside it, no overwrites, no symlinks followed), and nothing
recoverable is lost (every good dump in a damaged or polluted capture is still recovered).
Captures are built here from datagram sequences (tests/support/datagrams.py) framed by
tests/support/capture_builders.py, so every byte on the wire is known.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.wire import MsgType, build_message
from tests.support.capture_builders import (
    CLIENT_MAC, SERVER_MAC, epb, ether, idb, ipv4, pcap, shb, udp,
)
from tests.support.datagrams import CLIENT, SERVER, Conversation, clean_dump, image
from tests.support.schema_check import check_written_report

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
OTHER_MAC = bytes.fromhex("02000000cc02")


# -- building captures ----------------------------------------------------------------------

def frame(d, mac: bytes | None = None, vlans=(), udp_checksum="auto", bad_ip=False) -> bytes:
    """One Ethernet frame carrying datagram ``d`` (a tests.datagrams Datagram)."""
    client_side = d.dport != 20024
    if mac is None:
        mac = CLIENT_MAC if d.sport == 20024 else SERVER_MAC
    dst_mac = SERVER_MAC if client_side else CLIENT_MAC
    seg = udp(d.sport, d.dport, d.payload, d.src, d.dst, checksum=udp_checksum)
    return ether(ipv4(seg, d.src, d.dst, bad_checksum=bad_ip), src=mac, dst=dst_mac, vlans=vlans)


def write_pcap(path: Path, records, snaplen: int = 262144) -> Path:
    """records: Datagrams (framed plainly) or (ts_ns, frame bytes) pairs."""
    out = [r if isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], bytes)
           else (r.ts, frame(r)) for r in records]
    path.write_bytes(pcap(out, snaplen=snaplen))
    return path


def second_client(ip_text="192.0.2.8", size=6000, seed=2, t0=None):
    c = Conversation(client=ip_text)
    if t0 is not None:
        c.t = t0
    img = image(size, seed=seed)
    c.herald(b"")
    c.data(img)
    c.kdh(len(img))
    c.finished()
    return c, img


# -- running the command line -----------------------------------------------------------------

def cli(*args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NETDUMP_ANALYZER_DEBUG"}
    p = subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)],
                       capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)
    check_written_report(args, p.stdout, cwd)
    return p


def assert_clean_stderr(p: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in p.stderr, p.stderr
    assert "internal error" not in p.stderr, p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, p.stderr


def one_line_error(p: subprocess.CompletedProcess) -> str:
    """The whole of stderr is one line starting with 'error:'."""
    assert "Traceback" not in p.stderr, p.stderr
    text = p.stderr.strip()
    assert text and "\n" not in text, p.stderr
    assert text.startswith("error: ") and "internal error" not in text, text
    return text


def extract(tmp_path: Path, capture, *extra, out: Path | None = None):
    """Run extract with a JSON report; returns (process, report or None, outdir)."""
    out = out or tmp_path / "out"
    report = tmp_path / "report.json"
    if report.exists():
        report.unlink()
    p = cli("extract", capture, "-o", out, "--json", report, "-q", *extra)
    assert_clean_stderr(p)
    rep = json.loads(report.read_text()) if report.exists() else None
    return p, rep, out


def kinds(session: dict) -> list[str]:
    return [a["kind"] for a in session["anomalies"]]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def snapshot(root: Path, skip: set[str]) -> dict:
    """Every path below ``root`` (outside ``skip``) with its type, size and content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        if rel.split(os.sep)[0] in skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            r = os.path.relpath(p, root)
            if r.split(os.sep)[0] in skip:
                continue
            st = os.lstat(p)
            if os.path.islink(p):
                out[r] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[r] = ("dir",)
            else:
                out[r] = ("file", st.st_size, st.st_mtime_ns, sha(Path(p).read_bytes()))
    return out


def all_inside(out: Path) -> list[str]:
    """Regular files under ``out`` (relative), with no symlink anywhere below it."""
    files = []
    for dirpath, dirnames, filenames in os.walk(out, followlinks=False):
        for name in filenames:
            files.append(os.path.relpath(os.path.join(dirpath, name), out))
    return files


# ==========================================================================================
# Path safety
# ==========================================================================================

HOSTILE_PATHS = {
    "absolute": b"/tmp/netdump-escape",
    "absolute-etc": b"/etc/cron.d",
    "dotdot": b"../escape",
    "dotdot-deep": b"crash/../../escape",
    "dotdot-middle": b"a/./b/../../../escape",
    "nul": b"crash\0/../../escape",
    "backslash-dotdot": b"..\\..\\escape",
    "backslash-absolute": b"\\escape",
    "mixed-slashes": b"crash\\..\\..\\escape",
    "long": b"a/" * 600,  # 1200 bytes, over netdumpd's MAXPATHLEN
    "long-component": b"x" * 300,
    "not-utf8": b"\xff\xfe\xc0\xaf/\xc0\xae\xc0\xae/esc",
    "not-utf8-dotdot": b"\xc0\xae\xc0\xae/../escape",
    "only-dots": b"./././.",
    "trailing-slash-dotdot": b"crash/..",
}


@pytest.mark.parametrize("path", HOSTILE_PATHS.values(), ids=HOSTILE_PATHS.keys())
def test_hostile_herald_path_never_writes_outside(tmp_path, path):
    sentinel = tmp_path / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "keep.txt").write_bytes(b"precious\n")
    c, img = clean_dump(size=3000, path=path)
    cap = write_pcap(tmp_path / "x.pcap", c.items)
    before = snapshot(tmp_path, {"out", "report.json"})
    p, rep, out = extract(tmp_path, cap)
    assert snapshot(tmp_path, {"out", "report.json"}) == before
    assert p.returncode == EXIT_OK, p.stderr
    (s,) = rep["sessions"]
    assert s["status"] == "complete" and s["vmcore"]["sha256"] == sha(img)
    for f in s["files"]:
        assert not f.startswith("/") and ".." not in f.replace("\\", "/").split("/")
    files = all_inside(out)
    vm = [f for f in files if os.path.basename(f).startswith("vmcore.")]
    assert len(vm) == 1 and (out / vm[0]).read_bytes() == img
    assert not os.path.exists("/tmp/netdump-escape")
    if b"\0" in path or b".." in path.replace(b"\\", b"/").split(b"/") or path[:1] in b"/\\" \
            or len(path) > 1024:
        assert "path-refused" in kinds(s)
        assert all("/" not in f for f in files), files  # the output directory itself


def test_symlinked_directory_component_below_an_accepted_path_is_not_followed(tmp_path):
    out = tmp_path / "out"
    (out / "crash").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "crash" / "web1")
    c, img = clean_dump(size=3000, path=b"crash/web1")
    p, rep, _ = extract(tmp_path, write_pcap(tmp_path / "x.pcap", c.items))
    assert os.listdir(elsewhere) == []
    (s,) = rep["sessions"]
    assert p.returncode == EXIT_OK and "path-refused" in kinds(s)
    assert s["files"] == ["info.192.0.2.7.0", "vmcore.192.0.2.7.0"]
    assert (out / "vmcore.192.0.2.7.0").read_bytes() == img
    assert os.path.islink(out / "crash" / "web1")


def test_symlink_to_a_file_in_the_way_of_a_directory_is_not_followed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "target"
    target.write_bytes(b"untouched")
    os.symlink(target, out / "crash")
    c, img = clean_dump(size=3000, path=b"crash/web1")
    p, rep, _ = extract(tmp_path, write_pcap(tmp_path / "x.pcap", c.items))
    assert target.read_bytes() == b"untouched"
    assert p.returncode == EXIT_OK and "path-refused" in kinds(rep["sessions"][0])


PLANTED = ["info.192.0.2.7.0", "vmcore.192.0.2.7.0.part", "vmcore.192.0.2.7.0",
           "key.192.0.2.7.0.part", "info.192.0.2.7.0.part", "vmcore_encrypted.192.0.2.7.0",
           "bounds.192.0.2.7"]


@pytest.mark.parametrize("name", PLANTED)
@pytest.mark.parametrize("where", [b"", b"crash/web1"])
def test_pre_planted_symlinked_file_names_are_neither_followed_nor_overwritten(
        tmp_path, name, where):
    out = tmp_path / "out"
    d = out / where.decode() if where else out
    d.mkdir(parents=True)
    target = tmp_path / "target"
    target.write_bytes(b"0\n")  # also a plausible bounds file
    os.symlink(target, d / name)
    dangling = tmp_path / "dangling-target"
    os.symlink(dangling, d / name.replace("192.0.2.7.0", "192.0.2.7.1").replace(
        "bounds.192.0.2.7", "vmcore.192.0.2.7.1.part"))
    before = target.stat()
    c, img = clean_dump(size=5000, path=where)
    p, rep, _ = extract(tmp_path, write_pcap(tmp_path / "x.pcap", c.items))
    assert p.returncode == EXIT_OK, p.stderr
    assert target.read_bytes() == b"0\n"
    after = target.stat()
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == \
        (before.st_mtime_ns, before.st_size, before.st_ino)
    assert not os.path.lexists(dangling)
    assert os.path.islink(d / name)
    (s,) = rep["sessions"]
    assert s["status"] == "complete"
    vm = [f for f in s["files"] if "vmcore" in f]
    assert len(vm) == 1 and not os.path.islink(out / vm[0])
    assert (out / vm[0]).read_bytes() == img
    assert all(not os.path.islink(out / f) for f in s["files"])


def test_directory_planted_under_every_index_name_is_left_alone(tmp_path):
    """A name taken by anything (even a directory) is never reused, never removed."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "vmcore.192.0.2.7.0").mkdir()
    (out / "info.192.0.2.7.1").mkdir()
    c, img = clean_dump(size=3000, path=b"")
    p, rep, _ = extract(tmp_path, write_pcap(tmp_path / "x.pcap", c.items))
    assert p.returncode == EXIT_OK
    assert rep["sessions"][0]["files"] == ["info.192.0.2.7.2", "vmcore.192.0.2.7.2"]
    assert (out / "vmcore.192.0.2.7.0").is_dir() and (out / "info.192.0.2.7.1").is_dir()


def test_output_directory_that_cannot_be_used_is_a_one_line_error(tmp_path):
    c, _ = clean_dump(size=1000)
    cap = write_pcap(tmp_path / "x.pcap", c.items)
    (tmp_path / "file").write_bytes(b"x")
    p = cli("extract", cap, "-o", tmp_path / "file" / "out")
    assert p.returncode == EXIT_UNREADABLE
    one_line_error(p)


# ==========================================================================================
# Resource bounds
# ==========================================================================================

def _small_on_disk(path: Path, limit: int) -> None:
    st = os.stat(path)
    assert st.st_size <= limit, (path, st.st_size)
    assert st.st_blocks * 512 <= limit + (1 << 20), (path, st.st_blocks)


def _dump_with(tmp_path, build, *extra):
    c = Conversation()
    c.herald(b"")
    build(c)
    return extract(tmp_path, write_pcap(tmp_path / "x.pcap", c.items), *extra)


IMG = image(16384)


def _near_2_64(c):
    c.data(IMG)
    c.send(MsgType.VMCORE, offset=2**64 - 1000, payload=b"x" * 1000)
    c.send(MsgType.VMCORE, offset=2**64 - 1, payload=b"y" * 1000)
    c.kdh(len(IMG))
    c.finished()


def _past_kdh_length(c):
    c.data(IMG[:8192])
    c.kdh(len(IMG))
    c.send(MsgType.VMCORE, offset=500 << 30, payload=b"x" * 1000)
    c.send(MsgType.VMCORE, offset=len(IMG) + 4096, payload=b"x" * 1000)
    c.data(IMG[8192:], start=8192)
    c.finished()


@pytest.mark.parametrize("build", [_near_2_64, _past_kdh_length], ids=["near-2**64", "past-kdh"])
def test_offsets_out_of_range_are_refused_and_make_no_big_file(tmp_path, build):
    p, rep, out = _dump_with(tmp_path, build)
    (s,) = rep["sessions"]
    assert "offset-out-of-range" in kinds(s)
    assert s["status"] == "complete" and s["vmcore"]["sha256"] == sha(IMG)
    assert p.returncode == EXIT_OK
    _small_on_disk(out / "vmcore.192.0.2.7.0", len(IMG))
    assert (out / "vmcore.192.0.2.7.0").read_bytes() == IMG


def test_data_far_past_the_dumplength_sent_before_the_kdh_makes_no_big_file(tmp_path):
    def build(c):
        c.data(IMG[:8192])
        c.send(MsgType.VMCORE, offset=500 << 30, payload=b"x" * 1000)
        c.data(IMG[8192:], start=8192)
        c.kdh(len(IMG))
        c.finished()
    p, rep, out = _dump_with(tmp_path, build)
    (s,) = rep["sessions"]
    assert "offset-out-of-range" in kinds(s)
    assert s["vmcore"]["sha256"] == sha(IMG)
    _small_on_disk(out / "vmcore.192.0.2.7.0", len(IMG))


def test_max_dump_size_caps_data_offsets_and_kdh_lengths(tmp_path):
    def build(c):
        c.data(IMG)
        c.send(MsgType.VMCORE, offset=5 << 20, payload=b"x" * 1000)  # past 1M
        c.send(MsgType.VMCORE, offset=(1 << 20) - 10, payload=b"x" * 100)  # straddles 1M
        c.kdh(len(IMG))
        c.finished()
    p, rep, out = _dump_with(tmp_path, build, "--max-dump-size", "1M")
    (s,) = rep["sessions"]
    refused = [a for a in s["anomalies"] if a["kind"] == "offset-out-of-range"]
    assert len(refused) == 2
    assert p.returncode == EXIT_OK and s["vmcore"]["sha256"] == sha(IMG)
    _small_on_disk(out / "vmcore.192.0.2.7.0", len(IMG))


def test_kdh_dumplength_over_the_cap_is_refused_data_and_makes_no_big_file(tmp_path):
    def build(c):
        c.data(IMG)
        c.kdh(1 << 40)
        c.finished()
    p, rep, out = _dump_with(tmp_path, build, "--max-dump-size", "1M")
    (s,) = rep["sessions"]
    assert "offset-out-of-range" in kinds(s)
    assert p.returncode == EXIT_INCOMPLETE and s["status"] == "incomplete"
    assert s["vmcore"]["length"] == 1 << 40 and s["vmcore"]["missing"] == [[len(IMG), 1 << 40]]
    assert (out / "info.192.0.2.7.0").read_bytes().endswith(
        b"Dump incomplete: data beyond --max-dump-size refused\n")
    _small_on_disk(out / "vmcore.192.0.2.7.0", len(IMG))


@pytest.mark.parametrize("dumplength", [2**64 - 1, 2**63, 1 << 40], ids=["2**64-1", "2**63", "1T"])
def test_compressed_kdh_with_a_refused_length_is_harmless(tmp_path, dumplength):
    other, other_img = second_client(t0=1_700_000_000 * 10**9 - 10**9)
    c = Conversation()
    c.herald(b"")
    c.data(IMG)
    c.kdh(dumplength, compression=1)
    c.finished()
    items = sorted(other.items + c.items, key=lambda d: d.ts)
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", items),
                          "--max-dump-size", "1M")
    assert p.returncode in (EXIT_OK, EXIT_INCOMPLETE), p.stderr
    by_client = {s["client"]: s for s in rep["sessions"]}
    assert by_client["192.0.2.8"]["status"] == "complete"
    assert by_client["192.0.2.8"]["vmcore"]["sha256"] == sha(other_img)
    assert "offset-out-of-range" in kinds(by_client[CLIENT])
    for f in os.listdir(out):
        _small_on_disk(out / f, 1 << 20)


def test_anomalies_per_dump_are_bounded_and_the_rest_counted(tmp_path):
    c, img = clean_dump(size=3000, path=b"")
    junk = Conversation()
    runts = [junk.raw(b"\x00" * (i % 24)) for i in range(1500)]  # from the dump's client
    items = c.items[:2] + runts + c.items[2:]
    items = [d._replace(ts=1_700_000_000 * 10**9 + i * 1000) for i, d in enumerate(items)]
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", items))
    (s,) = rep["sessions"]
    assert len(s["anomalies"]) == 1000
    assert s["anomalies_dropped"] == 500
    assert s["status"] == "complete" and s["vmcore"]["sha256"] == sha(img)
    assert p.returncode == EXIT_OK


def _flood_pcap(path: Path, n: int, seed: int = 5) -> None:
    """n random datagrams to the netdump ports from n different addresses."""
    from analyzer.simulate import CaptureWriter
    rng = random.Random(seed)
    server = socket.inet_aton(SERVER)
    t = 1_700_000_000 * 10**9
    with CaptureWriter(str(path)) as w:
        for i in range(n):
            src = struct.pack(">I", 0x0A000000 + i + 1)
            k = i % 5
            if i < 1000:  # first fill the session table with dumps that carry data
                body = rng.randbytes(rng.randrange(1, 1400))
                pl = build_message(MsgType.VMCORE, 2, rng.randrange(1 << 16), body)
                w.write((t + i, 0, src, server, 20024, 40000, pl, None))
            elif k == 0:  # runt
                w.write((t + i, 0, src, server, 20024, 20023, rng.randbytes(rng.randrange(24)), None))
            elif k == 4:  # an ACK, any size
                w.write((t + i, 1, server, src, 40000 + rng.randrange(9), 20024,
                         rng.randbytes(rng.choice([4, 4, 0, 7, 100])), None))
            else:  # a message of any type but KDH, at a small offset
                body = rng.randbytes(rng.randrange(0, 1400))
                mtype = rng.choice([1, 2, 3, 3, 3, 5, 6, 0xFFFFFFFF])
                length = rng.choice([len(body)] * 5 + [len(body) + 1, 2**32 - 1])
                pl = struct.pack(">IIQII", mtype, rng.randrange(1 << 32), rng.randrange(1 << 16),
                                 length, 0) + body
                w.write((t + i, 0, src, server, 20024, rng.choice([20023, 40000]), pl, None))


_RSS = """
import resource, subprocess, sys
p = subprocess.run([sys.executable, "-m", "analyzer", *sys.argv[1:]], capture_output=True)
sys.stdout.write("%d %d\\n" % (p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.stderr.write(p.stderr.decode(errors="replace"))
"""


def _peak_rss_kib(*args) -> tuple[int, int, str]:
    p = subprocess.run([sys.executable, "-c", _RSS, *map(str, args)], capture_output=True,
                       text=True, timeout=300)
    code, rss = map(int, p.stdout.split())
    return code, rss, p.stderr


def test_a_flood_of_random_datagrams_costs_bounded_memory_and_is_reported(tmp_path):
    c, img = clean_dump(size=3000)
    base = write_pcap(tmp_path / "base.pcap", c.items)
    flood = tmp_path / "flood.pcap"
    _flood_pcap(flood, 20000)
    code0, rss0, _ = _peak_rss_kib("extract", base, "-o", tmp_path / "o0", "-q")
    code, rss, err = _peak_rss_kib("extract", flood, "-o", tmp_path / "o1", "-q",
                                   "--json", tmp_path / "flood.json")
    assert code0 == EXIT_OK
    assert code == EXIT_INCOMPLETE, err
    assert "Traceback" not in err and "internal error" not in err
    assert rss - rss0 < 60 * 1024, (rss0, rss)
    rep = json.loads((tmp_path / "flood.json").read_text())
    limit = [a for a in rep["anomalies"] if a["kind"] == "session-limit"]
    assert limit and "dropped" in limit[-1]["detail"]
    dropped = int(limit[-1]["detail"].split()[0])
    assert dropped > 10000
    assert len(rep["sessions"]) <= 512 + 100
    assert len(rep["anomalies"]) <= 1001
    assert len(os.listdir(tmp_path / "o1")) <= 2 * len(rep["sessions"]) + 10


def test_far_offset_sessions_do_not_cost_a_gigabyte_of_hashing_each(tmp_path):
    server = socket.inet_aton(SERVER)
    records = []
    t = 1_700_000_000 * 10**9
    for i in range(24):
        src = struct.pack(">I", 0x0A000000 + i + 1)
        pl = build_message(MsgType.VMCORE, 2, (1 << 30) - 2048 - i * 4096, b"z" * 1024)
        seg = udp(20024, 40000, pl, src, server)
        records.append((t + i * 1000, ether(ipv4(seg, src, server))))
    cap = write_pcap(tmp_path / "x.pcap", records)
    try:
        p = cli("extract", cap, "-o", tmp_path / "out", "-q", timeout=6)
    except subprocess.TimeoutExpired:
        pytest.fail("24 datagrams took more than 6 s")
    assert p.returncode == EXIT_INCOMPLETE


# ==========================================================================================
# Malformed input
# ==========================================================================================

def test_malformed_datagrams_are_reported_and_the_dump_survives(tmp_path):
    c, img = clean_dump(size=6000, path=b"")
    junk = Conversation(t=c.items[3].ts + 1)
    junk.raw(b"")  # empty
    junk.raw(b"\x00\x00\x00\x03abc")  # runt
    junk.raw(build_message(MsgType.VMCORE, 999, 0, b"x" * 100)[:-1])  # mh_len says 100, 99 sent
    junk.raw(build_message(MsgType.VMCORE, 998, 0, b"x" * 100) + b"tail")  # 4 bytes extra
    junk.raw(struct.pack(">IIQII", 3, 997, 0, 2**32 - 1, 0) + b"x" * 10)
    junk.raw(build_message(0, 996, 0, b"q" * 8))  # unknown types
    junk.raw(build_message(6, 995, 0, b"q" * 8))
    junk.raw(build_message(0xFFFFFFFF, 994, 0, b""))
    junk.ack(1)
    ack_sizes = [b"", b"\x00", b"\x00\x00\x00\x01\x00", b"\x00" * 100]
    for body in ack_sizes:  # replies to the client port that are not 4-byte ACKs
        junk._next(SERVER, CLIENT, 40001, 20024, body)
    items = sorted(c.items + junk.items[:-len(ack_sizes) - 1] + junk.items[-len(ack_sizes):],
                   key=lambda d: d.ts)
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", items))
    assert p.returncode == EXIT_OK, p.stderr
    (s,) = rep["sessions"]
    k = kinds(s)
    assert k.count("runt") == 2
    assert k.count("bad-length") == 3 + len(ack_sizes)
    assert k.count("unknown-type") == 3
    assert s["status"] == "complete"
    assert (out / "vmcore.192.0.2.7.0").read_bytes() == img


@pytest.mark.parametrize("how", ["udp", "ip"])
def test_bad_checksums_are_reported_and_their_data_not_trusted(tmp_path, how):
    img = image(4 * 1448)
    c = Conversation()
    c.herald(b"")
    sent = c.data(img, ack=False)
    forged = [c.send(MsgType.VMCORE, seqno=int.from_bytes(d.payload[4:8], "big"),
                     offset=int.from_bytes(d.payload[8:16], "big"),
                     payload=b"\xee" * (len(d.payload) - 24)) for d in sent[:2]]
    lost = c.send(MsgType.VMCORE, seqno=99, offset=len(img), payload=b"\xdd" * 1000)
    bad_ack = c.ack(int.from_bytes(sent[3].payload[4:8], "big"))
    c.kdh(len(img) + 1000)
    c.finished()
    bad = {id(d) for d in forged + [lost, bad_ack]}
    records = []
    for d in c.items:
        if id(d) in bad:
            records.append((d.ts, frame(d, udp_checksum="bad" if how == "udp" else "auto",
                                        bad_ip=how == "ip")))
        else:
            records.append(d)
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", records))
    (s,) = rep["sessions"]
    assert kinds(s).count("bad-checksum") == 4
    assert "conflicting-retransmit" not in kinds(s)
    data = (out / "vmcore.192.0.2.7.0").read_bytes()
    assert data[:len(img)] == img  # the forged copies came later and did not win
    assert data[len(img):] == bytes(1000)  # the only copy was bad: a hole, not its bytes
    assert s["vmcore"]["missing"] == [[len(img), len(img) + 1000]]
    assert s["status"] == "incomplete" and p.returncode == EXIT_INCOMPLETE


def test_zero_udp_checksum_and_offload_looking_checksums_are_trusted(tmp_path):
    c, img = clean_dump(size=3000, path=b"")
    records = [(d.ts, frame(d, udp_checksum=0 if i % 2 else "offload"))
               for i, d in enumerate(c.items)]
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", records))
    assert p.returncode == EXIT_OK and "bad-checksum" not in kinds(rep["sessions"][0])
    assert (out / "vmcore.192.0.2.7.0").read_bytes() == img


def _two_dumps(t_gap=10**9):
    """Client A's complete dump, then client B's; returns (items, imgA, imgB, first B index)."""
    a, img_a = clean_dump(size=8000, path=b"")
    b, img_b = second_client(t0=a.t + t_gap)
    return a.items + b.items, img_a, img_b, len(a.items)


def _pcap_records(items):
    return [(d.ts, frame(d)) for d in items]


def _record_offsets(data: bytes) -> list[int]:
    pos, out = 24, []
    while pos + 16 <= len(data):
        out.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    return out


@pytest.mark.parametrize("caplen", [70000, 256 * 1024 + 1, 0xFFFFFFFF],
                         ids=["over-snaplen", "over-256k", "4g"])
def test_record_longer_than_the_snap_length_stops_reading_and_keeps_what_came_before(
        tmp_path, caplen):
    items, img_a, img_b, nb = _two_dumps()
    snap = 65535 if caplen == 70000 else 1 << 30
    data = bytearray(pcap(_pcap_records(items), snaplen=snap))
    offs = _record_offsets(bytes(data))
    cut = offs[nb + 4]  # in the middle of client B's data
    struct.pack_into("<I", data, cut + 8, caplen)
    cap = tmp_path / "x.pcap"
    cap.write_bytes(bytes(data))
    p, rep, out = extract(tmp_path, cap)
    by = _first_whole_second_cut(p, rep, out, img_a)
    allk = kinds(by["192.0.2.8"]) + [a["kind"] for a in rep["anomalies"]]
    assert "truncated-capture" in allk
    assert rep["captures"][0]["truncated"] is True


@pytest.mark.parametrize("blen", [7, 13, 8, 0, 0x7FFFFFFC, 0xFFFFFFFF],
                         ids=["tiny", "unaligned", "under-12", "zero", "huge", "4g"])
def test_pcapng_block_with_a_bad_length_stops_reading_and_keeps_what_came_before(tmp_path, blen):
    items, img_a, img_b, nb = _two_dumps()
    blocks = [shb(), idb("<", 1, tsresol=9)]
    blocks += [epb("<", 0, d.ts, frame(d)) for d in items]
    corrupt = 2 + nb + 4
    b = bytearray(blocks[corrupt])
    struct.pack_into("<I", b, 4, blen)
    blocks[corrupt] = bytes(b)
    cap = tmp_path / "x.pcapng"
    cap.write_bytes(b"".join(blocks))
    p, rep, out = extract(tmp_path, cap)
    _first_whole_second_cut(p, rep, out, img_a)
    assert rep["captures"][0]["truncated"] is True


def test_pcapng_section_header_with_a_bad_length_is_a_one_line_error(tmp_path):
    data = bytearray(shb() + idb())
    struct.pack_into("<I", data, 4, 30)
    (tmp_path / "x.pcapng").write_bytes(bytes(data))
    p = cli("extract", tmp_path / "x.pcapng", "-o", tmp_path / "out")
    assert p.returncode == EXIT_UNREADABLE
    assert "bad length" in one_line_error(p)


@pytest.mark.parametrize("content", [
    b"", b"\x00", b"hello, this is not a capture at all\n" * 10, b"\xd4\xc3\xb2\xa1\x02\x00",
    b"\x1f\x8b", gzip.compress(b""), gzip.compress(b"not a capture either"),
    b"\x1f\x8b\x08\x00garbage", struct.pack("<IHHiIII", 0xA1B2C3D4, 3, 0, 0, 0, 65535, 1),
], ids=["empty", "one-byte", "text", "short-pcap-header", "gzip-magic-only", "empty-gzip",
        "gzip-text", "corrupt-gzip", "pcap-version-3"])
@pytest.mark.parametrize("command", ["extract", "summary", "audit"])
def test_files_that_are_not_captures_are_a_one_line_error(tmp_path, content, command):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    args = [command, bad] + (["-o", tmp_path / "out"] if command == "extract" else [])
    p = cli(*args)
    assert p.returncode == EXIT_UNREADABLE, (p.returncode, p.stderr)
    assert str(bad) in one_line_error(p)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_a_missing_capture_and_a_directory_are_clear_errors(tmp_path):
    p = cli("extract", tmp_path / "nope.pcap", "-o", tmp_path / "out")
    assert p.returncode == EXIT_UNREADABLE and "no such file" in one_line_error(p)
    p = cli("summary", tmp_path)  # a directory is an unusable capture, as a missing file
    assert p.returncode == EXIT_UNREADABLE and "is a directory" in one_line_error(p)


def test_a_bad_file_among_several_is_refused_before_anything_is_written(tmp_path):
    c, _ = clean_dump(size=2000)
    good = write_pcap(tmp_path / "good.pcap", c.items)
    (tmp_path / "bad.pcap").write_bytes(b"junk junk junk")
    p = cli("extract", good, tmp_path / "bad.pcap", "-o", tmp_path / "out")
    assert p.returncode == EXIT_UNREADABLE and "bad.pcap" in one_line_error(p)


def _cut_points(data: bytes, nb: int) -> dict[str, int]:
    offs = _record_offsets(data)
    r = offs[nb + 5]
    return {"record-header": r + 7, "frame-header": r + 16 + 20, "payload": r + 16 + 200,
            "after-record-header": r + 16}


@pytest.mark.parametrize("where", ["record-header", "frame-header", "payload",
                                   "after-record-header"])
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_file_cut_mid_record_keeps_every_session_before_the_cut(tmp_path, where, compressed):
    items, img_a, img_b, nb = _two_dumps()
    data = pcap(_pcap_records(items), snaplen=262144)
    cut = data[:_cut_points(data, nb)[where]]
    cap = tmp_path / "x.pcap"
    if compressed:
        whole = gzip.compress(data)
        cap.write_bytes(whole[:len(gzip.compress(cut))])  # cut the compressed stream too
    else:
        cap.write_bytes(cut)
    p, rep, out = extract(tmp_path, cap)
    assert p.returncode == EXIT_INCOMPLETE, p.stderr
    by = {s["client"]: s for s in rep["sessions"]}
    assert by[CLIENT]["status"] == "complete"
    assert (out / "vmcore.192.0.2.7.0").read_bytes() == img_a
    b = by["192.0.2.8"]
    assert b["status"] == "incomplete"
    assert "truncated-capture" in kinds(b) + [a["kind"] for a in rep["anomalies"]]
    assert rep["captures"][0]["truncated"] is True
    got = (out / b["files"][1]).read_bytes()
    received = sum(e - s for s, e in [(0, b["vmcore"]["length"])]) - sum(
        e - s for s, e in b["vmcore"]["missing"])
    assert received == b["vmcore"]["received"]
    for s_, e_ in b["vmcore"]["missing"]:
        assert got[s_:e_] == bytes(e_ - s_)
    kept = bytearray(got)
    for s_, e_ in b["vmcore"]["missing"]:
        kept[s_:e_] = img_b[s_:e_]
    assert bytes(kept) == img_b[:len(kept)]


def test_garbage_after_a_valid_pcap_header_is_no_crash(tmp_path):
    rng = random.Random(3)
    for i in range(20):
        c, _ = clean_dump(size=2000, path=b"")
        data = bytearray(pcap(_pcap_records(c.items)))
        for _ in range(8):
            pos = rng.randrange(24, len(data))
            data[pos] = rng.randrange(256)
        cap = tmp_path / f"g{i}.pcap"
        cap.write_bytes(bytes(data[:rng.randrange(24, len(data) + 1)]))
        p = cli("summary", cap, "-q")
        assert p.returncode in (EXIT_OK, EXIT_INCOMPLETE), p.stderr
        assert "Traceback" not in p.stderr and "internal error" not in p.stderr


# ==========================================================================================
# Conflicts: nothing merged
# ==========================================================================================

def _interleave(*convs):
    items = sorted((d for c in convs for d in c.items), key=lambda d: d.ts)
    return items


def _two_dumps_from_one_address(path: bytes, *sizes_and_seeds):
    """Two complete dumps from one client address, 50 ms apart, on data ports 40001/40002."""
    a = Conversation()
    b = Conversation(data_port=40002, t=a.t + 50_000)
    out = []
    for c, (size, seed) in zip((a, b), sizes_and_seeds):
        img = image(size, seed=seed)
        c.herald(path)
        c.data(img)
        c.kdh(len(img))
        c.finished()
        out.append((c, img))
    return out


def test_two_hosts_claiming_one_address_with_different_macs_are_kept_apart(tmp_path):
    (a, img_a), (b, img_b) = _two_dumps_from_one_address(b"", (9000, 11), (7000, 12))
    macs = {id(d): CLIENT_MAC for d in a.items} | {id(d): OTHER_MAC for d in b.items}
    records = [(d.ts, frame(d, mac=macs[id(d)] if d.sport == 20024 else None))
               for d in _interleave(a, b)]
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", records))
    assert p.returncode == EXIT_OK, p.stderr
    assert len(rep["sessions"]) == 2
    assert any("ip-conflict" in kinds(s) for s in rep["sessions"])
    got = {s["vmcore"]["sha256"] for s in rep["sessions"]}
    assert got == {sha(img_a), sha(img_b)}
    files = sorted(f for s in rep["sessions"] for f in s["files"] if "vmcore" in f)
    assert files == ["vmcore.192.0.2.7.0", "vmcore.192.0.2.7.1"]
    assert {(out / f).read_bytes() for f in files} == {img_a, img_b}
    for s in rep["sessions"]:
        assert s["retransmits"] == 0 and "conflicting-retransmit" not in kinds(s)


def test_one_address_on_two_vlans_is_two_dumps(tmp_path):
    (a, img_a), (b, img_b) = _two_dumps_from_one_address(b"crash", (9000, 13), (9000, 14))
    vlan = {id(d): [(0x8100, 10)] for d in a.items} | {id(d): [(0x8100, 20)] for d in b.items}
    records = [(d.ts, frame(d, vlans=vlan[id(d)])) for d in _interleave(a, b)]
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", records))
    assert p.returncode == EXIT_OK, p.stderr
    assert len(rep["sessions"]) == 2
    assert {s["vmcore"]["sha256"] for s in rep["sessions"]} == {sha(img_a), sha(img_b)}
    for s in rep["sessions"]:
        assert "conflicting-retransmit" not in kinds(s) and "dump-restarted" not in kinds(s)
    assert {(out / "crash" / f"vmcore.192.0.2.7.{i}").read_bytes() for i in (0, 1)} == \
        {img_a, img_b}


def test_a_server_answering_from_two_ports_is_reported(tmp_path):
    img = image(6 * 1448)
    c = Conversation()
    c.herald(b"")
    sent = c.data(img, ack=False)
    for i, d in enumerate(sent):
        c.ack(int.from_bytes(d.payload[4:8], "big"), sport=40001 if i % 2 else 40999)
    c.send(MsgType.VMCORE, seqno=int.from_bytes(sent[0].payload[4:8], "big"), offset=0,
           payload=img[:1448], dport=40777)  # and the client sends to a third port
    c.kdh(len(img))
    c.finished()
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", c.items))
    (s,) = rep["sessions"]
    assert kinds(s).count("server-port-changed") >= 2
    assert s["status"] == "complete" and p.returncode == EXIT_OK
    assert (out / "vmcore.192.0.2.7.0").read_bytes() == img


def test_a_dump_that_restarts_after_data_is_two_dumps_never_merged(tmp_path):
    first, second = image(6000, seed=21), image(9000, seed=22)
    c = Conversation()
    c.herald(b"")
    c.data(first[:4000])
    c.herald(b"")
    c.data(second)
    c.kdh(len(second))
    c.finished()
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", c.items))
    assert p.returncode == EXIT_INCOMPLETE, p.stderr
    s0, s1 = rep["sessions"]
    assert "dump-restarted" in kinds(s0) + kinds(s1)
    assert s0["status"] == "incomplete" and s1["status"] == "complete"
    assert (out / "vmcore.192.0.2.7.0").read_bytes() == first[:4000]
    assert (out / "vmcore.192.0.2.7.1").read_bytes() == second
    info0 = (out / "info.192.0.2.7.0").read_bytes().splitlines()
    assert info0[-1].startswith(b"Dump incomplete")


# ==========================================================================================
# Fuzzer findings (fuzz/fuzz_core.py, fuzz/fuzz_capture.py): regressions
# ==========================================================================================

def test_rewrite_of_received_bytes_under_a_new_seqno_keeps_report_and_file_in_agreement(
        tmp_path):
    c = Conversation()
    c.herald(b"")
    c.send(MsgType.VMCORE, offset=0, payload=b"A" * 100)
    c.send(MsgType.VMCORE, offset=0, payload=b"B" * 100)  # seqno 3, same offset, other bytes
    c.kdh(100)
    c.finished()
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", c.items))
    (s,) = rep["sessions"]
    data = (out / "vmcore.192.0.2.7.0").read_bytes()
    assert data == b"B" * 100
    assert s["vmcore"]["sha256"] == sha(data)


def test_report_names_the_files_written_for_a_path_that_is_not_utf8(tmp_path):
    c, img = clean_dump(size=3000, path=b"\xff\xfe/abc")
    p, rep, out = extract(tmp_path, write_pcap(tmp_path / "x.pcap", c.items))
    (s,) = rep["sessions"]
    assert p.returncode == EXIT_OK
    for f in s["files"]:
        assert os.path.isfile(os.path.join(os.fsencode(out), os.fsencode(f))), f


def test_per_dump_lines_do_not_carry_control_characters_from_the_wire(tmp_path):
    c, img = clean_dump(size=3000, path=b"a\ndump 9: 10.9.9.9 path=. complete\x07/\x1b[2Jb")
    cap = write_pcap(tmp_path / "x.pcap", c.items)
    p = subprocess.run([sys.executable, "-m", "analyzer", "extract", str(cap), "-o",
                        str(tmp_path / "out")], capture_output=True)
    assert p.returncode == EXIT_OK
    lines = p.stdout.splitlines()
    assert len(lines) == 1, lines
    assert not [b for b in p.stdout.rstrip(b"\n") if b < 0x20 or b == 0x7F], p.stdout


def test_fuzz_seed_corpus_runs_clean_without_the_fuzzer(tmp_path):
    """The committed seeds (fuzz/corpus) parse and run through the summary pipeline; the
    core seeds decode to datagrams and run through core, recovery and the file writer."""
    from analyzer.capture import CaptureReader
    from analyzer.pipeline import Analysis
    root = Path(__file__).resolve().parents[2] / "fuzz"
    sys.path.insert(0, str(root))
    try:
        import common
    finally:
        sys.path.remove(str(root))
    captures = sorted((root / "corpus" / "capture").iterdir())
    cores = sorted((root / "corpus" / "core").iterdir())
    assert captures and cores
    assert sum(f.stat().st_size for f in captures + cores) < 1 << 20
    for f in captures:
        a = Analysis(None)
        a.run(CaptureReader([str(f)]))
        a.finish()
    for i, f in enumerate(cores):
        flags, size, items = common.decode(f.read_bytes())
        assert items and common.decode(common.encode(items, flags, 0))[2] == items
        a = Analysis(str(tmp_path / f"o{i}") if flags & 1 else None, size)
        a.run(items)
        a.finish()


def test_corrupt_gzip_yields_the_same_items_whatever_the_read_size(tmp_path):
    """Fuzzer find: zlib drops the output of a call that hits a corrupt byte, so how much of
    a damaged .pcap.gz came out depended on the read size. Now everything before the corrupt
    byte comes out, the same for every buffer size."""
    from analyzer.capture import CaptureReader
    src = Path(__file__).resolve().parents[2] / "fuzz" / "regressions" / "capture-gzip-corrupt-crc"
    cap = tmp_path / "x.pcap.gz"
    cap.write_bytes(src.read_bytes())
    runs = [list(CaptureReader([str(cap)], chunk_size=size) if size else CaptureReader([str(cap)]))
            for size in (None, 4096, 65536, 1 << 20)]
    assert all(r == runs[0] for r in runs)
    notices = [i for i in runs[0] if type(i).__name__ == "Notice"]
    assert any(n.kind == "truncated-capture" and "corrupt" in n.detail for n in notices)


def _first_whole_second_cut(p, rep, out, img_a) -> dict:
    """Client A's dump, before the damage, is whole; client B's, cut by it, is incomplete."""
    assert p.returncode == EXIT_INCOMPLETE, p.stderr
    by = {s["client"]: s for s in rep["sessions"]}
    assert by[CLIENT]["status"] == "complete"
    assert (out / "vmcore.192.0.2.7.0").read_bytes() == img_a
    assert by["192.0.2.8"]["status"] == "incomplete"
    return by
