"""Does a long follow run keep memory flat? Resident memory of `extract --follow` fed a ring
buffer directory that receives many successive simulated dumps.

    python benchmarks/follow_memory.py [--dumps 50] [--size 8m]

One dump is simulated (pcap) and written into the ring once per round under the next
`cap_NNNNN_...` name, as `dumpcap -b` names its files; the ring keeps its last 3 files and
each saved vmcore is removed once seen, so the disk stays small. After each dump's JSON line
appears, the analyzer's VmRSS is read from /proc. Prints RSS after the first and last dumps.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def dumps_logged(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(json.loads(x).get("event") == "dump" for x in path.read_text().splitlines() if x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dumps", type=int, default=50)
    ap.add_argument("--size", default="8m")
    args = ap.parse_args()
    analyzer = [sys.executable, "-m", "analyzer"]
    with tempfile.TemporaryDirectory(prefix="follow-mem-") as tmp:
        tmp = Path(tmp)
        one = tmp / "one.pcap"
        subprocess.run([*analyzer, "simulate", "--size", args.size, "-o", str(one)], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
        data = one.read_bytes()
        ring, out, events = tmp / "ring", tmp / "out", tmp / "events.jsonl"
        ring.mkdir()
        proc = subprocess.Popen([*analyzer, "extract", "--follow", str(ring), "-o", str(out),
                                 "--json-lines", str(events)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples = []
        t0 = time.perf_counter()
        try:
            for n in range(1, args.dumps + 1):
                name = ring / f"cap_{n:05d}_20260101{n:06d}.pcap"
                name.with_suffix(".tmp").write_bytes(data)
                os.rename(name.with_suffix(".tmp"), name)
                deadline = time.monotonic() + 120
                while dumps_logged(events) < n:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        sys.exit(f"analyzer stopped after {n - 1} dumps: "
                                 f"{proc.stderr.read().decode(errors='replace')[-500:]}")
                    time.sleep(0.05)
                samples.append(rss_mib(proc.pid))
                for core in out.rglob("vmcore.*"):
                    if not core.name.endswith(".part"):
                        core.unlink()
                for old in sorted(ring.iterdir())[:-3]:
                    old.unlink()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        wall = time.perf_counter() - t0
    print(f"{args.dumps} dumps of {args.size} ({len(data) / 2**20:.1f} MiB of capture each) "
          f"followed in {wall:.1f} s; exit status {proc.returncode}")
    print(f"RSS after dump 1: {samples[0]:.1f} MiB; after dump {len(samples)}: "
          f"{samples[-1]:.1f} MiB; highest: {max(samples):.1f} MiB")
    print("RSS by dump (MiB): " + " ".join(f"{x:.0f}" for x in samples))


if __name__ == "__main__":
    main()
