"""The compiled build and the plain ``.py`` files are the same program: run in child
processes with and without NETDUMP_ANALYZER_PURE=1, they give the same items, events and
dump records (tests/support/run_digest.py) on samples, simulated captures and frames at
every border of the fast path, and ``extract``/``audit`` write the same JSON and the same
files, byte for byte. Skipped, with the reason, where nothing is compiled."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import speedups
from tests.support.capture_builders import (
    SERVER_MAC, ack, epb, ether, fragments, idb, ipv4, msg, null, pcap, shb, sll, sll2, spb, udp,
    udp_ip,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p for p in (ROOT / "samples").iterdir() if p.suffix in (".pcap", ".pcapng"))
DIGEST = ROOT / "tests" / "support" / "run_digest.py"
T0 = 1_700_000_000 * 10**9 + 123_456_789

BUILT = speedups.built()
needs_build = pytest.mark.skipif(
    not BUILT, reason="no compiled modules beside the sources (built by `pip install -e .` "
                      "where Cython and a C compiler are; `make test` builds them)")


def test_make_test_runs_the_compiled_build():
    """`make test` sets NETDUMP_ANALYZER_EXPECT_COMPILED=1: there, a build that silently
    fell back to pure Python must fail the suite rather than skip the comparisons."""
    if os.environ.get("NETDUMP_ANALYZER_EXPECT_COMPILED") != "1":
        pytest.skip("NETDUMP_ANALYZER_EXPECT_COMPILED is not set (only `make test` sets it)")
    assert BUILT == list(speedups.MODULES)


def test_the_pure_switch_loads_every_module_from_its_source():
    code = ("import analyzer.pipeline, analyzer.capture.reader; from analyzer import speedups; "
            "import sys; print(sorted(m for m in speedups.MODULES if m in sys.modules)); "
            "print(speedups.loaded_compiled())")
    out = _run([sys.executable, "-c", code], pure=True).splitlines()
    assert out[0] == repr(sorted(speedups.MODULES))  # all imported...
    assert out[1] == "[]"  # ... none of them compiled


def test_a_source_edited_after_the_build_is_run_itself_but_not_one_installed_with_it(tmp_path):
    src, ext = tmp_path / "m.py", tmp_path / "m.so"
    src.write_text("")
    ext.write_bytes(b"")
    built = ext.stat().st_mtime
    os.utime(src, (built + 1, built + 1))  # written by the installer just after the .so
    assert not speedups.newer_than_build(str(src), str(ext))
    os.utime(src, (built + 3600, built + 3600))  # edited an hour after the build
    assert speedups.newer_than_build(str(src), str(ext))
    assert not speedups.newer_than_build(str(src), str(tmp_path / "none.so"))


@needs_build
def test_without_the_switch_the_built_modules_are_the_ones_run():
    code = ("import analyzer.pipeline, analyzer.capture.reader; from analyzer import speedups; "
            "print(speedups.loaded_compiled())")
    assert _run([sys.executable, "-c", code], pure=False).split("\n")[:2] == [repr(BUILT), ""]


def _run(cmd: list, pure: bool, cwd: Path = ROOT) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NETDUMP_ANALYZER_PURE"}
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "200"
    if pure:
        env["NETDUMP_ANALYZER_PURE"] = "1"
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=600)
    return p.stdout.decode() + f"\nexit {p.returncode}\n" + p.stderr.decode()[-2000:]


def _digests(paths: list) -> tuple[str, str]:
    cmd = [sys.executable, str(DIGEST), *map(str, paths)]
    compiled, pure = _run(cmd, pure=False), _run(cmd, pure=True)
    assert compiled.startswith("compiled: analyzer.") and pure.startswith("compiled: none")
    return compiled.split("\n", 1)[1], pure.split("\n", 1)[1]


def _frames() -> list[bytes]:
    """Frames the fast path takes, and frames at each of its borders."""
    body = bytes(range(256)) * 6
    out = []
    for ck, ip in [("auto", {}), ("bad", {}), ("offload", {}), (0, {}),
                   ("auto", {"bad_checksum": True}), ("auto", {"zero_checksum": True}),
                   ("bad", {"zero_checksum": True}), (0, {"bad_checksum": True})]:
        for size in (1472, 1449, 28, 24, 4):  # full-size, odd, small, header only, ACK
            sport, dport = (40001, 20024) if size == 4 else (20024, 40001)
            out.append(ether(udp_ip(sport, dport, body[:size], checksum=ck, **ip)))
    for tags in ([(0x8100, 10)], [(0x88A8, 100), (0x8100, 20)],
                 [(0x8100, i) for i in range(1, 6)]):
        out.append(ether(udp_ip(20024, 40001, msg(3, 7, 0, body[:1000])), vlans=tags))
        out.append(ether(udp_ip(40001, 20024, ack(7), checksum="bad"), vlans=tags))
    dgram = udp_ip(20024, 40001, msg(3, 8, 0, body[:1400]))
    out += [ether(f) for f in fragments(dgram, 512)]
    out += [
        ether(udp_ip(20024, 40001, msg(3, 9), options=b"\x01\x01\x01\x01")),  # IP options
        ether(ipv4(b"\x03\x03\x00\x00" + b"\x00" * 4 + dgram[:28], proto=1)),  # ICMP
        ether(ipv4(b"x" * 40, proto=6)),  # TCP
        ether(udp_ip(53, 53, b"dns")),  # other ports
        ether(b"\x00" * 28, ethertype=0x0806),  # ARP
        ether(udp_ip(20024, 40001, msg(3, 10), total_length=200)),  # IP longer than the frame
        ether(ipv4(udp(20024, 40001, msg(3, 11), length=30))),  # UDP length disagrees
        ether(udp_ip(20024, 40001, msg(3, 12)), src=SERVER_MAC),  # another link identity
        ether(udp_ip(20024, 40001, msg(3, 13)))[:41],  # too short for the fast path
        ether(udp_ip(20024, 40001, msg(3, 14)), vlans=[(0x8100, 5)])[:20],  # cut in the tags
    ]
    return out


def _border_captures(tmp: Path) -> list[Path]:
    frames = _frames()
    ips = [f[14:] for f in frames if f[12:14] == b"\x08\x00"]
    files = {
        "le.pcap": pcap([(T0 + i * 1000, f) for i, f in enumerate(frames * 2)]),
        "be-ns.pcap": pcap([(T0 + i, f) for i, f in enumerate(frames)], endian=">", nano=True),
        "raw.pcap": pcap([(T0 + i, f) for i, f in enumerate(ips)], linktype=101),
        "sll.pcap": pcap([(T0 + i, sll(f)) for i, f in enumerate(ips)], linktype=113),
        "sll2.pcap": pcap([(T0 + i, sll2(f)) for i, f in enumerate(ips)], linktype=276),
        "null.pcap": pcap([(T0 + i, null(f, "big" if i % 2 else "little"))
                           for i, f in enumerate(ips)], linktype=0),
        "mixed.pcapng": b"".join(
            [shb(), idb(), idb(tsresol=9, tsoffset=-5), idb(linktype=101)]
            + [epb("<", i % 3, T0 // 1000 + i, f[14:] if i % 3 == 2 else f)
               for i, f in enumerate(frames)] + [spb("<", frames[0])]),
        "be.pcapng": b"".join([shb(">"), idb(">")] + [epb(">", 0, T0 // 1000 + i, f)
                                                     for i, f in enumerate(frames)]),
    }
    out = []
    for name, data in files.items():
        (tmp / name).write_bytes(data)
        (tmp / ("cut-" + name)).write_bytes(data[:len(data) * 2 // 3])  # a cut final record
        out += [tmp / name, tmp / ("cut-" + name)]
    return out


def _simulated(tmp: Path) -> list[Path]:
    runs = {
        "lossy.pcap": ["--size", "2m", "--loss", "0.05", "--ack-loss", "0.05", "--dup", "0.02",
                       "--reorder", "0.02", "--seed", "3"],
        "two.pcapng": ["--size", "1m", "--clients", "2", "--format", "pcapng", "--link", "vlan",
                       "--seed", "4"],
        "restart.pcap": ["--size", "1m", "--restart-after", "200", "--capture-loss", "0.01",
                         "--link", "sll2", "--seed", "5"],
    }
    out = []
    for name, opts in runs.items():
        path = tmp / name
        subprocess.run([sys.executable, "-m", "analyzer", "simulate", *opts, "-o", str(path)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=300)
        out.append(path)
    return out


@needs_build
def test_compiled_and_pure_runs_give_the_same_items_events_and_records(tmp_path):
    paths = SAMPLES + _border_captures(tmp_path) + _simulated(tmp_path)
    compiled, pure = _digests(paths)
    assert compiled == pure
    assert compiled.count("\n") > len(paths)  # a digest line per capture, and the exit line


def _files(out: Path) -> dict:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


@needs_build
@pytest.mark.parametrize("sample", [p for p in SAMPLES if p.stem in
                                    ("clean-13x", "lossy-12x", "multi-client", "restart")],
                         ids=lambda p: p.name)
def test_compiled_and_pure_extract_write_the_same_report_and_files(tmp_path, sample):
    results = []
    for pure in (False, True):
        out = tmp_path / ("pure" if pure else "compiled")
        text = _run([sys.executable, "-m", "analyzer", "extract", "-q", str(sample),
                     "-o", str(out), "--json", "-"], pure=pure, cwd=tmp_path)
        results.append((text.replace(str(out), "OUT"), _files(out)))
    assert results[0] == results[1]
    assert results[0][1] and '"sessions"' in results[0][0]


@needs_build
def test_compiled_and_pure_audit_report_the_same(tmp_path):
    sample = next(p for p in SAMPLES if p.stem == "lossy-12x")
    texts = [_run([sys.executable, "-m", "analyzer", "audit", "--json", "-", str(sample)],
                  pure=pure, cwd=tmp_path) for pure in (False, True)]
    assert texts[0] == texts[1] and "retransmit" in texts[0]
