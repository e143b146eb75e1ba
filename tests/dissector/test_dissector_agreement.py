"""The Lua dissector and the Python analyzer agree on every sample capture.

For each samples/*.pcap* the dissector's per-dump counts (read through pyshark from
tshark -2 with dissectors/netdump.lua) must equal ``python -m analyzer summary --json -``:
messages by type (retransmissions included, capture duplicates and malformed datagrams
excluded), retransmissions, ACKs and duplicate ACKs.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LUA = REPO / "dissectors" / "netdump.lua"
SAMPLES = sorted(p for p in (REPO / "samples").glob("*.pcap*") if p.is_file())
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TYPE_NAMES = {1: "HERALD", 2: "FINISHED", 3: "VMCORE", 4: "KDH", 5: "EKCD_KEY"}


@pytest.fixture(scope="module")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        if IN_CI:
            pytest.fail("tshark is required in CI (make test-deps installs it)")
        pytest.skip("tshark not installed")
    return path


@pytest.fixture
def isolated_wireshark(tmp_path, monkeypatch):
    """pyshark's tshark inherits the environment: point every config folder at tmp."""
    for name in ("WIRESHARK_CONFIG_DIR", "HOME", "XDG_CONFIG_HOME"):
        d = tmp_path / name.lower()
        d.mkdir()
        monkeypatch.setenv(name, str(d))


def dissector_sessions(capture: Path) -> list[dict]:
    import pyshark

    sessions: dict[int, dict] = {}
    cap = pyshark.FileCapture(str(capture), use_json=True, keep_packets=False,
                              custom_parameters=["-X", f"lua_script:{LUA}", "-2"])
    try:
        for pkt in cap:
            layer = getattr(pkt, "fbsd_netdump", None)
            if layer is None:
                continue
            session = layer.get("session")
            if session is None or layer.get("capture_duplicate") is not None:
                continue  # malformed, quoted in ICMP, ACK outside any dump, or a capture copy
            s = sessions.setdefault(int(session), {
                "client": layer.get("client"), "messages": Counter(), "retransmits": 0,
                "acks": 0, "duplicate_acks": 0})
            mtype = layer.get("type")
            if mtype is not None:
                s["messages"][TYPE_NAMES[int(mtype)]] += 1
                if layer.get("retransmission") is not None:
                    s["retransmits"] += 1
            elif layer.get("ack.seqno") is not None:
                s["acks"] += 1
                if layer.get("duplicate_ack") is not None:
                    s["duplicate_acks"] += 1
    finally:
        cap.close()
    return [dict(sessions[k], messages=dict(sessions[k]["messages"])) for k in sorted(sessions)]


def analyzer_sessions(capture: Path) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "analyzer", "summary", str(capture), "--json", "-"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode in (0, 3), proc.stderr
    report = json.loads(proc.stdout)
    return [{"client": s["client"], "messages": {k: v for k, v in s["messages"].items() if v},
             "retransmits": s["retransmits"], "acks": s["acks"], "duplicate_acks": s["duplicate_acks"]}
            for s in report["sessions"]]


@pytest.mark.skipif(not SAMPLES, reason="no sample captures in samples/")
@pytest.mark.parametrize("capture", SAMPLES, ids=[p.name for p in SAMPLES])
def test_dissector_agrees_with_analyzer(tshark, isolated_wireshark, capture):
    ours = dissector_sessions(capture)
    theirs = analyzer_sessions(capture)
    assert ours, f"the dissector found no dump in {capture.name}"
    assert ours == theirs
