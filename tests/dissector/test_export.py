"""``tshark -q -z fbsd_netdump,export,DIR`` writes what ``netdump-analyzer extract`` writes.

Every sample and every simulated capture of the agreement test is exported by the dissector
and extracted by the analyzer: the two folders hold the same files (names, directories) with
the same sha256, with and without tshark's second pass. Holes stay holes, existing files are
never overwritten, and unsafe HERALD paths fall back to the top folder as in extract.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.wire import build_message
from tests.dissector.test_dissector import (  # noqa: F401  (tshark is a fixture)
    CLIENT, KDH, SERVER, VMCORE, Capture, assert_no_lua_errors, data, herald_and_ack, kdh, tshark,
    tshark_env,
)
from tests.dissector.test_dissector_agreement import SIMULATED, simulated

REPO = Path(__file__).resolve().parents[2]
LUA = REPO / "dissectors" / "netdump.lua"
SAMPLES = sorted(p for p in (REPO / "samples").glob("*.pcap*") if p.is_file())


def tree_hashes(top: Path) -> dict[str, str]:
    return {str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(top.rglob("*")) if p.is_file()}


def export(tshark: str, capture: Path, out: Path, tmp: Path, two_pass: bool = False) -> str:
    cmd = [tshark, "-n", "-r", str(capture), "-X", f"lua_script:{LUA}", "-q",
           "-z", f"fbsd_netdump,export,{out}"]
    if two_pass:
        cmd.insert(2, "-2")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=tshark_env(tmp), timeout=600)
    assert_no_lua_errors(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def extract(capture: Path, out: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "analyzer", "extract", str(capture), "-o", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode in (0, 3), proc.stderr


@pytest.fixture(scope="module")
def simulated_captures(tmp_path_factory) -> dict[str, Path]:
    return {name: simulated(name, tmp_path_factory) for name in sorted(SIMULATED)}


@pytest.mark.parametrize("two_pass", [False, True], ids=["one-pass", "two-pass"])
@pytest.mark.parametrize("capture", SAMPLES, ids=[p.name for p in SAMPLES])
def test_export_equals_extract_on_samples(tshark, tmp_path, capture, two_pass):
    export(tshark, capture, tmp_path / "export", tmp_path, two_pass)
    extract(capture, tmp_path / "extract")
    ours = tree_hashes(tmp_path / "export")
    assert ours and any(name.rsplit("/", 1)[-1].startswith("vmcore") for name in ours)
    assert ours == tree_hashes(tmp_path / "extract")


@pytest.mark.parametrize("name", sorted(SIMULATED))
def test_export_equals_extract_on_simulated_captures(tshark, tmp_path, simulated_captures, name):
    capture = simulated_captures[name]
    export(tshark, capture, tmp_path / "export", tmp_path, two_pass=True)
    extract(capture, tmp_path / "extract")
    assert tree_hashes(tmp_path / "export") == tree_hashes(tmp_path / "extract")


def test_export_never_overwrites(tshark, tmp_path):
    """Twice into one folder: the second run takes the next free index, as extract does."""
    capture = REPO / "samples" / "restart.pcap"
    for _ in range(2):
        export(tshark, capture, tmp_path / "export", tmp_path)
        extract(capture, tmp_path / "extract")
    ours = tree_hashes(tmp_path / "export")
    assert sorted(ours) == [f"{kind}.10.0.0.26.{n}" for kind in ("info", "vmcore") for n in range(4)]
    assert ours == tree_hashes(tmp_path / "extract")


def test_export_keeps_holes_and_lists_missing_ranges(tshark, tmp_path):
    """A dump with 8 MiB never captured: the file has its full length but no blocks there."""
    cap = Capture()
    herald_and_ack(cap)
    cap.msg(VMCORE, 2, 0, data(4096))
    big = 8 << 20
    cap.msg(VMCORE, 3, big, data(4096, 1))
    cap.msg(KDH, 4, 0, kdh(dumplength=big + 4096))
    pcap = cap.write(tmp_path / "holes.pcap")
    export(tshark, pcap, tmp_path / "export", tmp_path)
    extract(pcap, tmp_path / "extract")
    assert tree_hashes(tmp_path / "export") == tree_hashes(tmp_path / "extract")
    vmcore = tmp_path / "export" / "crash" / "web1" / f"vmcore.{CLIENT}.0"
    st = os.stat(vmcore)
    assert st.st_size == big + 4096
    assert st.st_blocks * 512 < 1 << 20  # the hole takes no space
    info = (tmp_path / "export" / "crash" / "web1" / f"info.{CLIENT}.0").read_text()
    assert f"  Missing vmcore bytes: [4096, {big}) ({big - 4096} bytes)\n" in info
    assert info.endswith("Dump incomplete: client timed out\n")


@pytest.mark.parametrize("path", [b"/etc/cron.d\0", b"a/../../b\0", b"no-nul"])
def test_unsafe_herald_path_writes_to_the_top_folder(tshark, tmp_path, path):
    cap = Capture()
    cap.raw(CLIENT, SERVER, 20024, 20023, build_message(1, 1, 0, path))
    cap.ack(1)
    cap.msg(VMCORE, 2, 0, data(1448))
    pcap = cap.write(tmp_path / "unsafe.pcap")
    export(tshark, pcap, tmp_path / "export", tmp_path)
    extract(pcap, tmp_path / "extract")
    ours = tree_hashes(tmp_path / "export")
    assert sorted(ours) == [f"info.{CLIENT}.0", f"vmcore.{CLIENT}.0"]
    assert ours == tree_hashes(tmp_path / "extract")
