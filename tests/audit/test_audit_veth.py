"""The audit on real captures: a current-main client of the simulator's live mode sends its
dump through a Linux veth pair between two network namespaces, a real capture tool records
it at the server's end, and the audit must find the generation, the send calls and the
resends the client made (issue 13).

Skipped where network namespaces cannot be made (not root, no ip(8), a container without
the right). Names carry this process's id; the namespaces (and with them the veth ends) are
deleted whatever happens.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live_tools import stop, wait_started

ROOT = Path(__file__).resolve().parents[2]
TAG = f"nda{os.getpid() % 100000}"  # + "c" / "s": at most 9 characters, an interface name
CLIENT_IP, SERVER_IP = "10.199.0.2", "10.199.0.1"  # inside this test's own namespaces
SKIPPED = (4, 60)  # seqnos whose first transmission the client leaves out: two real resends
DEADLINE = 30.0

SERVER = """
import time
from analyzer.simulate.live import serve
s = serve({ip!r}, time.monotonic() + {deadline})
print("ready", flush=True)
s.done.wait({deadline})
time.sleep(0.3)
s.stop = True
s.join(2)
"""

CLIENT = """
import json, time
from analyzer.simulate.live import live_material, send_dump
m = live_material(200 << 10, "main", encrypt=True, seed=5)
r = send_dump(m, "main", {cip!r}, {sip!r}, 1500, 1.0, time.monotonic() + {deadline}, {skip})
print(json.dumps(r.__dict__))
"""


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)


@pytest.fixture
def veth():
    """Two namespaces joined by a veth pair: (client namespace, server namespace), each
    namespace's end named as the namespace."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip(8) for network namespaces")
    c, s = TAG + "c", TAG + "s"
    if _ip("netns", "add", c).returncode:
        pytest.skip("network namespaces cannot be made here")
    try:
        for step in (("netns", "add", s), ("link", "add", c, "type", "veth", "peer", "name", s),
                     ("link", "set", c, "netns", c), ("link", "set", s, "netns", s),
                     ("-n", c, "addr", "add", f"{CLIENT_IP}/24", "dev", c),
                     ("-n", s, "addr", "add", f"{SERVER_IP}/24", "dev", s),
                     ("-n", c, "link", "set", "lo", "up"), ("-n", s, "link", "set", "lo", "up"),
                     ("-n", c, "link", "set", c, "up"), ("-n", s, "link", "set", s, "up")):
            r = _ip(*step)
            if r.returncode:
                pytest.skip(f"ip {' '.join(step)}: {r.stderr.strip()}")
        yield c, s
    finally:
        _ip("netns", "del", c)
        _ip("netns", "del", s)  # a namespace's deletion takes its veth end, and the pair


TOOLS = {
    # --immediate-mode: else packets wait in the kernel's ring for its 1 s block timeout,
    # and those of the last block are lost when the capture is stopped. That mode's ring has
    # one slot per snap length: 2048 bytes (frames are at most 1514) and 8 MiB of them, or
    # a busy machine overruns it
    "tcpdump": (lambda ns, out: ["tcpdump", "-i", ns, "--immediate-mode", "-U", "-s", "2048",
                                 "-B", "8192", "-w", str(out), "udp"],
                "listening on", "veth.pcap"),
    "dumpcap": (lambda ns, out: ["dumpcap", "-i", ns, "-f", "udp", "-w", str(out)],
                "Capturing on", "veth.pcapng"),
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_real_capture_over_veth_is_audited_as_the_client_sent_it(veth, tool, tmp_path):
    c, s = veth
    argv, marker, name = TOOLS[tool]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    cap = tmp_path / name
    run_in = ["ip", "netns", "exec"]
    capture = subprocess.Popen([*run_in, s, *argv(s, cap)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    server = None
    try:
        if not wait_started(capture, marker):
            pytest.fail(f"{tool} did not start: {capture.stderr.read()}")
        server = subprocess.Popen(
            [*run_in, s, sys.executable, "-c", SERVER.format(ip=SERVER_IP, deadline=DEADLINE)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready", server.stderr.read()
        client = subprocess.run(
            [*run_in, c, sys.executable, "-c",
             CLIENT.format(cip=CLIENT_IP, sip=SERVER_IP, deadline=DEADLINE, skip=set(SKIPPED))],
            cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE + 10)
        assert client.returncode == 0, client.stderr
    finally:  # the client has every ACK it needs: the server's work is done
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        stop(capture)
    truth = json.loads(client.stdout)
    assert truth["outcome"] == "finished"

    report = tmp_path / "audit.json"
    run = subprocess.run([sys.executable, "-m", "analyzer", "audit", str(cap), "--json",
                          str(report)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    (dump,) = json.loads(report.read_text())["sessions"]
    a = dump["audit"]
    assert a["generation"]["guess"] == "main", a["generation"]
    calls = truth["calls"]
    # HERALD, the key right after it (current main), 200 KiB in 64 KiB buffers, KDH, FINISHED
    assert [t for t, _, _ in calls] == [1, 5, 3, 3, 3, 3, 4, 2]
    assert a["bursts"]["count"] == len(calls)
    assert a["bursts"]["vmcore"] == sum(1 for t, _, _ in calls if t == 3)
    r = a["retransmissions"]
    # the first copies were never sent, so the capture shows each resend as a first copy
    assert truth["resends"] == len(SKIPPED)
    assert (r["total"], r["needed"], r["spurious"], r["hidden"]) == (2, 2, 0, 2), r
    assert r["rounds"] == 2 and a["bursts"]["max_rounds"] == 1
