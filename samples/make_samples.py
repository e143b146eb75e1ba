#!/usr/bin/env python3
"""Regenerate the sample captures and their expected netdumpd output (deterministic).

    .venv/bin/python samples/make_samples.py

Each ``<name>`` capture gets ``<name>.expected/`` holding the files netdumpd would have
saved (at their relative paths), ``truth.json`` (the simulator's ground truth) and
``SHA256SUMS``. An encrypted sample also gets ``<name>.private-key.pem``: the simulated
operator's RSA private key (a test fixture, never a real key) that unwraps its dump key.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from analyzer.simulate import CaptureSpec, DumpSpec, NetworkSpec, simulate  # noqa: E402

K = 1024


def dump(**kw) -> DumpSpec:
    """A client whose dump is a consistent minidump (dump_avail, bitmap, pmap, pages and
    msgbuf agree), so ``inspect`` of a recovered sample reads as a real dump would."""
    return DumpSpec(image="minidump", **kw)


SAMPLES = {
    # 13.x, one clean dump into the "crash/web1" directory
    "clean-13x.pcap": dict(
        dumps=dump(generation="13", size=256 * K, path="crash/web1", hostname="web1",
                   client_ip="10.0.0.21", server_ip="10.0.0.2"),
        capture=CaptureSpec(), seed=1),
    # 12.x over a bad network: 3% loss each way, reordering, duplicates
    "lossy-12x.pcapng": dict(
        dumps=dump(generation="12", size=192 * K, hostname="db3",
                   client_ip="10.0.0.23", server_ip="10.0.0.2"),
        network=NetworkSpec(loss=0.03, ack_loss=0.03, reorder=0.05, dup=0.01, ack_dup=0.01),
        capture=CaptureSpec(format="pcapng"), seed=2),
    # current main with EKCD: the key goes right after the HERALD
    "encrypted-main.pcap": dict(
        dumps=dump(generation="main", size=128 * K, encrypt=True, hostname="vault",
                   client_ip="10.0.0.24", server_ip="10.0.0.2", path="secure"),
        capture=CaptureSpec(tsres="ns"), seed=3),
    # 13.x with zstd compression: vmcore.<ip>.0.zst truncated to dumplength
    "zstd-13x.pcap": dict(
        dumps=dump(generation="13", size=256 * K, compress="zstd", hostname="build7",
                   client_ip="10.0.0.25", server_ip="10.0.0.2"),
        capture=CaptureSpec(link="sll2"), seed=4),
    # three clients at once; the capture misses some of the third one's frames, all in its
    # data pages (seed 6): inspect names the 3 lost pages, its kgdb verdict is "degraded"
    "multi-client.pcapng": dict(
        dumps=[dump(generation="12", size=96 * K, client_ip="10.0.1.1", hostname="a",
                    server_ip="10.0.0.2"),
               dump(generation="13", size=96 * K, client_ip="10.0.1.2", hostname="b",
                    server_ip="10.0.0.2", start_ms=0.7, compress="gzip"),
               dump(generation="main", size=96 * K, client_ip="10.0.1.3", hostname="c",
                    server_ip="10.0.0.2", start_ms=1.9, capture_loss=0.04)],
        capture=CaptureSpec(format="pcapng", link="vlan"), seed=6),
    # the client starts over with a new HERALD once 64 KiB are sent (at the end of that
    # dumper write, 94208 bytes in): indexes 0 (timed out, no KDH) and 1
    "restart.pcap": dict(
        dumps=dump(generation="13", size=128 * K, restart_after=64 * K, hostname="flaky",
                   client_ip="10.0.0.26", server_ip="10.0.0.2"),
        capture=CaptureSpec(), seed=6),
}


def main() -> None:
    for name, kw in SAMPLES.items():
        out = HERE / name
        exp = HERE / f"{name.rsplit('.', 1)[0]}.expected"
        if exp.exists():
            shutil.rmtree(exp)
        _path, truth = simulate(out, expected=exp, **kw)
        keys = {a.material.stream.key.private_key_pem() for a in truth.dumps
                if a.material.stream.key is not None} - {None}
        for pem in keys:
            (HERE / f"{name.rsplit('.', 1)[0]}.private-key.pem").write_bytes(pem)
        print(f"{name}: {truth.capture['file_frames']} frames, "
              + ", ".join(f"{a.client_ip} {a.outcome}" for a in truth.dumps))


if __name__ == "__main__":
    main()
