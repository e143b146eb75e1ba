"""What an analysis filter costs in tshark with dissectors/netdump.lua (issue #15).

Applies ``fbsd_netdump.analysis.retransmission`` and ``fbsd_netdump.analysis.flags`` and, for
comparison, the plain UDP field filter ``udp.length == 1456`` (with the plugin loaded, and
``data.len == 1448`` without it), each in one pass and with ``-2``, and prints wall time and
the ratio to the plain filter. The capture is simulated once into benchmarks/.cache/.
The target: an analysis filter costs no more than 3x the plain UDP filter.

usage: python benchmarks/dissector.py [--size 64m] [--repeat N] [CAPTURE]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LUA = REPO / "dissectors" / "netdump.lua"
CACHE = REPO / "benchmarks" / ".cache"

CASES = [  # (label, filter, with the plugin)
    ("plain UDP filter, no plugin", "data.len == 1448", False),
    ("plain UDP filter", "udp.length == 1456", True),
    ("analysis.retransmission", "fbsd_netdump.analysis.retransmission", True),
    ("analysis.flags", "fbsd_netdump.analysis.flags", True),
]


def capture(size: str) -> Path:
    path = CACHE / f"dissector-13-{size}-loss0.01.pcap"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "analyzer", "simulate", "--generation", "13", "--size", size,
                        "--loss", "0.01", "-o", str(path)], check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL)
    return path


def run(cap: Path, flt: str, plugin: bool, two_pass: bool, env: dict) -> float:
    cmd = ["tshark", "-n", "-r", str(cap), "-Y", flt, "-T", "fields", "-e", "frame.number"]
    if two_pass:
        cmd.insert(2, "-2")
    if plugin:
        cmd += ["-X", f"lua_script:{LUA}"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("capture", nargs="?", type=Path)
    ap.add_argument("--size", default="64m")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest counts")
    args = ap.parse_args()
    cap = args.capture or capture(args.size)
    with tempfile.TemporaryDirectory() as home:  # no personal plugins or preferences
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home, WIRESHARK_CONFIG_DIR=home)
        print(f"capture: {cap} ({cap.stat().st_size / 1e6:.1f} MB)")
        print(f"{'filter':<30} {'pass':>6} {'seconds':>8} {'x plain':>8}")
        for two_pass in (False, True):
            base = None
            for label, flt, plugin in CASES:
                secs = min(run(cap, flt, plugin, two_pass, env) for _ in range(args.repeat))
                if label == "plain UDP filter":
                    base = secs
                ratio = f"{secs / base:8.2f}" if base else f"{'':>8}"
                print(f"{label:<30} {'-2' if two_pass else 'one':>6} {secs:8.2f} {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
