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
from typing import Callable

import pytest

from analyzer.wire import build_message
from tests.dissector.test_dissector import (  # noqa: F401  (tshark is a fixture)
    CLIENT, CLIENT2, FINISHED, HERALD, KDH, SERVER, VMCORE, Capture, assert_no_lua_errors, data, herald_and_ack,
    kdh, tshark,
    tshark_env,
)
from tests.dissector.test_dissector_agreement import (  # noqa: F401  (isolated_wireshark is a fixture)
    SIMULATED, analyzer_sessions, dissector_sessions, isolated_wireshark, simulated,
)

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


# --------------------------------------------------------------------------------------
# Where a dump begins and ends: netdumpd's 600 s idle end, captures started late
# --------------------------------------------------------------------------------------

MINUTE = 60_000_000  # microseconds


def rest_of_dump(cap: Capture, seq: int, off: int = 4096) -> None:
    """More data, the KDH and FINISHED, each ACKed."""
    cap.msg(VMCORE, seq, off, data(4096, 1))
    cap.ack(seq)
    cap.msg(KDH, seq + 1, 0, kdh(dumplength=off + 4096))
    cap.ack(seq + 1)
    cap.msg(FINISHED, seq + 2)
    cap.ack(seq + 2)


def silent_for(us: int, then_herald: bool = False) -> Callable[[Capture], None]:
    """A dump whose client goes quiet for ``us`` after its first data."""
    def build(cap: Capture) -> None:
        herald_and_ack(cap)
        cap.msg(VMCORE, 2, 0, data(4096))
        cap.ack(2)
        cap.tick(us)
        if then_herald:
            herald_and_ack(cap)
        rest_of_dump(cap, 3)
    return build


def swept_late(cap: Capture) -> None:
    """601 s of silence, but netdumpd looks every 10 s and another client's traffic set its
    last look 8 s before this client speaks again: the session is still open then."""
    herald_and_ack(cap)
    cap.msg(VMCORE, 2, 0, data(4096))
    cap.ack(2)
    cap.tick(593_000_000)
    herald_and_ack(cap, path=b"", client=CLIENT2)  # a look at 593 s; the next at 603 s
    cap.tick(8_000_000)
    rest_of_dump(cap, 3)  # at 601 s: not looked at yet


def starts_with_an_ack(then_herald: bool) -> Callable[[Capture], None]:
    """The capture starts with the ACK of a message it never saw; then (maybe) a HERALD:
    netdumpd's session is the one the ACK opened, so the HERALD's folder is not used."""
    def build(cap: Capture) -> None:
        cap.ack(39)
        if then_herald:
            herald_and_ack(cap)
        cap.msg(VMCORE, 40, 0, data(4096))
        cap.ack(40)
        rest_of_dump(cap, 41)
    return build


def starts_mid_dump(cap: Capture) -> None:
    """The first packet is data at 64 KiB; a HERALD after the dump's FINISHED starts the next."""
    cap.msg(VMCORE, 40, 65536, data(4096))
    cap.ack(40)
    rest_of_dump(cap, 41, off=69632)
    cap.tick(1_000_000)
    herald_and_ack(cap)
    rest_of_dump(cap, 2, off=0)


def finished_then_herald(cap: Capture) -> None:
    """Only a FINISHED was seen (no data) when a HERALD comes: that HERALD starts a new dump."""
    cap.msg(FINISHED, 9)
    cap.ack(9)
    herald_and_ack(cap)
    rest_of_dump(cap, 2, off=0)


def late_copy_after_the_end(cap: Capture) -> None:
    """A whole dump, FINISHED ACKed, then a late copy with other bytes: it is not taken."""
    herald_and_ack(cap)
    cap.msg(VMCORE, 2, 0, data(4096))
    cap.ack(2)
    cap.msg(KDH, 3, 0, kdh(dumplength=4096))
    cap.ack(3)
    cap.msg(FINISHED, 4)
    cap.ack(4)
    cap.tick(1_000_000)
    cap.msg(VMCORE, 2, 0, data(4096, 7))


def bad_length(mtype: int, seq: int, payload: bytes) -> bytes:
    """A message whose mh_len says 100 bytes more than it carries."""
    raw = bytearray(build_message(mtype, seq, 0, payload))
    raw[16:20] = (len(payload) + 100).to_bytes(4, "big")
    return bytes(raw)


def malformed_herald_after_data(cap: Capture) -> None:
    """A HERALD with a wrong length after data still starts the next dump, in the top folder."""
    herald_and_ack(cap)
    cap.msg(VMCORE, 2, 0, data(4096))
    cap.ack(2)
    cap.raw(CLIENT, SERVER, 20024, 20023, bad_length(HERALD, 1, b"crash/web1\0"))
    rest_of_dump(cap, 3)


def unknown_type_first(cap: Capture) -> None:
    """A message of type 9 opens the client's session: the HERALD after it names no folder."""
    cap.msg(9, 1, 0, b"")
    herald_and_ack(cap)
    cap.msg(VMCORE, 2, 0, data(4096))
    cap.ack(2)
    rest_of_dump(cap, 3)


SESSION_CASES: dict[str, tuple[Callable[[Capture], None], list[str]]] = {
    # name: (builder, the files both write)
    "silent 599 s: one dump": (silent_for(599 * 1_000_000), ["crash/web1/info.{c}.0", "crash/web1/vmcore.{c}.0"]),
    "silent 601 s: the dump ends, the rest is a new one": (
        silent_for(601 * 1_000_000),
        ["crash/web1/info.{c}.0", "crash/web1/vmcore.{c}.0", "info.{c}.0", "vmcore.{c}.0"]),
    "silent 11 minutes, then a HERALD": (
        silent_for(11 * MINUTE, then_herald=True),
        ["crash/web1/info.{c}.0", "crash/web1/info.{c}.1", "crash/web1/vmcore.{c}.0",
         "crash/web1/vmcore.{c}.1"]),
    "silent 601 s, not yet looked at": (
        swept_late, ["crash/web1/info.{c}.0", "crash/web1/vmcore.{c}.0", "info.{c2}.0", "vmcore.{c2}.0"]),
    "starts with an ACK": (starts_with_an_ack(False), ["info.{c}.0", "vmcore.{c}.0"]),
    "starts with an ACK, then a HERALD": (starts_with_an_ack(True), ["info.{c}.0", "vmcore.{c}.0"]),
    "starts mid-dump": (starts_mid_dump, ["crash/web1/info.{c}.0", "crash/web1/vmcore.{c}.0",
                                          "info.{c}.0", "vmcore.{c}.0"]),
    "a late copy after the end": (late_copy_after_the_end, ["crash/web1/info.{c}.0", "crash/web1/vmcore.{c}.0"]),
    "a malformed HERALD after data": (malformed_herald_after_data, [
        "crash/web1/info.{c}.0", "crash/web1/vmcore.{c}.0", "info.{c}.0", "vmcore.{c}.0"]),
    "an unknown type first": (unknown_type_first, ["info.{c}.0", "vmcore.{c}.0"]),
    "a FINISHED, then a HERALD": (finished_then_herald, ["crash/web1/info.{c}.0", "crash/web1/vmcore.{c}.0",
                                                         "info.{c}.0", "vmcore.{c}.0"]),
}


@pytest.mark.parametrize("two_pass", [False, True], ids=["one-pass", "two-pass"])
@pytest.mark.parametrize("case", sorted(SESSION_CASES))
def test_dumps_begin_and_end_where_extract_says(tshark, tmp_path, case, two_pass):
    build, expected = SESSION_CASES[case]
    cap = Capture()
    build(cap)
    pcap = cap.write(tmp_path / "case.pcap")
    export(tshark, pcap, tmp_path / "export", tmp_path, two_pass)
    extract(pcap, tmp_path / "extract")
    ours = tree_hashes(tmp_path / "export")
    assert sorted(ours) == sorted(e.format(c=CLIENT, c2=CLIENT2) for e in expected)
    assert ours == tree_hashes(tmp_path / "extract")


@pytest.mark.parametrize("case", sorted(SESSION_CASES))
def test_dissector_dumps_are_the_analyzers(tshark, isolated_wireshark, tmp_path, case):
    """The packet view splits the same dumps as summary and audit, with the same counts."""
    cap = Capture()
    SESSION_CASES[case][0](cap)
    pcap = cap.write(tmp_path / "case.pcap")
    ours, theirs = dissector_sessions(pcap), analyzer_sessions(pcap)
    if ours != theirs:  # read once more: pyshark has been seen to lose its tshark under load
        ours = dissector_sessions(pcap)
    assert len(ours) == sum("info." in name for name in SESSION_CASES[case][1])  # one per dump
    assert ours == theirs
