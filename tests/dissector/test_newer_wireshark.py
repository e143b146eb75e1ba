"""The dissector on a newer Wireshark (4.2 and later, Lua 5.4 from 4.4) than the machine's own.

Debian bookworm ships 4.0 only. When ``NETDUMP_TSHARK_NEWER`` names a newer tshark (for
example ``dissectors/tools/tshark-trixie.sh``, Debian trixie's 4.4 in a chroot, built by
``make tshark-newer``), that tshark loads the dissector without a Lua error, gives every
field of every scenario and sample the values the machine's tshark gives, prints the same
stats table, and exports files sha-identical to ``extract``'s. Skipped otherwise.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.dissector.test_dissector import (  # noqa: F401  (tshark is a fixture)
    FIELDS, SCENARIOS, Capture, fields_rows, run_tshark, tshark, tshark_version,
)
from tests.dissector.test_export import SAMPLES, export, extract, tree_hashes

REPO = Path(__file__).resolve().parents[2]
ANALYSIS = ["fbsd_netdump.analysis.flags", "fbsd_netdump.analysis.retransmission",
            "fbsd_netdump.analysis.needed_retransmission", "fbsd_netdump.analysis.spurious_retransmission",
            "fbsd_netdump.analysis.hidden_retransmission", "fbsd_netdump.analysis.network_duplicate",
            "fbsd_netdump.analysis.out_of_order", "fbsd_netdump.analysis.acked_in",
            "fbsd_netdump.analysis.first_copy", "fbsd_netdump.kdh.hostname"]


@pytest.fixture(scope="module")
def newer() -> str:
    path = os.environ.get("NETDUMP_TSHARK_NEWER", "")
    if not path:
        pytest.skip("NETDUMP_TSHARK_NEWER is not set (a tshark 4.2 or later to test against, e.g. "
                    "dissectors/tools/tshark-trixie.sh after 'make tshark-newer')")
    assert os.access(path, os.X_OK), f"NETDUMP_TSHARK_NEWER={path} is not an executable"
    return path


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def test_it_is_newer_and_runs_lua(newer):
    out = subprocess.run([newer, "-v"], capture_output=True, text=True, timeout=120).stdout
    assert version_tuple(tshark_version(newer)) >= (4, 2), out.splitlines()[:1]
    assert re.search(r"with Lua 5\.[24]", out), "this tshark was built without Lua"


def rows(tshark_path: str, cap: Path, tmp: Path) -> list[dict[str, str]]:
    return fields_rows(tshark_path, cap, tmp, FIELDS + ANALYSIS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_field_as_on_the_machines_tshark_scenarios(newer, tshark, tmp_path, name):
    cap = Capture()
    SCENARIOS[name](cap)
    pcap = cap.write(tmp_path / f"{name}.pcap")
    ours = rows(newer, pcap, tmp_path)
    assert ours and ours == rows(tshark, pcap, tmp_path)


@pytest.mark.parametrize("capture", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_field_as_on_the_machines_tshark_samples(newer, tshark, tmp_path, capture):
    ours = rows(newer, capture, tmp_path)
    assert ours and ours == rows(tshark, capture, tmp_path)


def test_stats_table_as_on_the_machines_tshark(newer, tshark, tmp_path):
    capture = REPO / "samples" / "restart.pcap"
    args = ["-q", "-z", "fbsd_netdump,stats"]
    assert run_tshark(newer, capture, args, tmp_path) == run_tshark(tshark, capture, args, tmp_path)


@pytest.mark.parametrize("capture", SAMPLES, ids=[p.name for p in SAMPLES])
def test_export_equals_extract(newer, tmp_path, capture):
    export(newer, capture, tmp_path / "export", tmp_path, two_pass=True)
    extract(capture, tmp_path / "extract")
    ours = tree_hashes(tmp_path / "export")
    assert ours and ours == tree_hashes(tmp_path / "extract")
