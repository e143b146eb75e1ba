"""The audit on simulated captures of every generation x MTU x link speed x host jitter x
compression x encryption: the generation verdict, the send calls and the resend and duplicate
counts against the simulator's ground truth (issue 13).

Each case is a small dump (256 KiB) with 1 % loss each way, captured at the server, the
client or a mirror port in turn, with network duplicates in every other case, and the
simulator's legacy image or its consistent minidump (§9.3 write pattern) in turn.
"""
import itertools

import pytest

from analyzer.simulate import DumpSpec, NetworkSpec
from tests.audit.test_audit_sim import run

GEN = {"12": "12.x", "13": "13.x", "main": "main"}
POINTS = ("server", "client", "mirror")


def _cases():
    n = 0
    for gen, mtu, mbps, jitter, comp, enc in itertools.product(
            ("12", "13", "main"), (1500, 9000), (100, 1000, 10000), (0.0, 0.05),
            ("none", "gzip", "zstd"), (False, True)):
        if gen == "12" and comp != "none" and enc:
            continue  # 12.x has AES-256-CBC only, which dumpon refuses with compression
        point = POINTS[n % 3]
        yield pytest.param(gen, mtu, mbps, jitter, comp, enc, point, n,
                           id=f"{gen}-{mtu}-{mbps}M-j{jitter}-{comp}-{'enc' if enc else 'plain'}"
                              f"-{point}")
        n += 1


def singled_out(gen: str, comp: str, t: dict) -> bool:
    """Does the capture hold the evidence that names the generation alone (§4.2, §9.3)?"""
    counts = t["capture"]["counts"]
    key = counts.get("EKCD_KEY", 0) > 0
    if gen == "main":
        return key  # the key right after the HERALD
    if gen == "13":
        # key after the KDH (not main), and a payload above 4096 or a merged first burst
        return key and counts.get("KDH", 0) > 0 and (t["max_payload"] > 4096 or comp == "none")
    # 12.x: the minidump's single-page writes go out one burst each (uncompressed only)
    return comp == "none" and t["capture"]["complete"]


def unknowable_resends(t: dict) -> int:
    """Captured resends that no capture can tell from a first copy: the attempt's first
    captured frame, with nothing before it to time it against."""
    first = min((p for p in t["packets"] if p["captured"]), key=lambda p: p["t_sent_ns"])
    return 1 if first["attempt"] > 1 else 0


def _run(gen, mtu, mbps, jitter, comp, enc, point, seed, oneway=False):
    dup = 0.03 if seed % 2 else 0.0
    image = ("legacy", "minidump")[seed // 3 % 2]
    return run(DumpSpec(generation=gen, size=256 << 10, mtu=mtu, compress=comp, encrypt=enc,
                        image=image),
               NetworkSpec(link_mbps=mbps, host_jitter=jitter, loss=0.01, ack_loss=0.01,
                           dup=dup, ack_dup=dup), point, seed=seed, oneway=oneway)


def generation_and_calls_match(a: dict, t: dict, gen: str, comp: str) -> None:
    """The verdict never excludes the true generation and names it alone where the evidence
    singles it out; the bursts are the client's send calls, VMCORE ones too."""
    g = a["generation"]
    assert GEN[gen] in g["candidates"], g
    if singled_out(gen, comp, t):
        assert g["guess"] == GEN[gen], g
    b = a["bursts"]
    assert b["count"] == t["calls_captured"], b
    assert b["vmcore"] == t["vmcore_calls_captured"]


@pytest.mark.parametrize("gen,mtu,mbps,jitter,comp,enc,point,seed", list(_cases()))
def test_generation_bursts_and_resends_match_the_truth(gen, mtu, mbps, jitter, comp, enc,
                                                       point, seed):
    a, t = _run(gen, mtu, mbps, jitter, comp, enc, point, seed)
    generation_and_calls_match(a, t, gen, comp)
    r, c = a["retransmissions"], t["capture"]
    assert r["total"] == c["retransmissions"] - unknowable_resends(t)
    assert r["network_duplicates"] == c["network_duplicates"]
    assert r["captured"] == r["total"] - r["hidden"] + r["network_duplicates"]


@pytest.mark.parametrize("gen,mtu,mbps,jitter,comp,enc,point,seed",
                         [p for p in _cases() if p.values[6] != "server"])
def test_one_way_captures_keep_the_generation_verdict_and_the_send_calls(
        gen, mtu, mbps, jitter, comp, enc, point, seed):
    """The client's datagrams alone, captured where the client's every transmission shows
    (at the client, or a mirror port): call boundaries that only timing tells come from the
    client's turnaround from its last packet. (At the server, without ACKs, a new call whose
    first copies were lost looks like a resend of the previous call's tail.)"""
    a, t = _run(gen, mtu, mbps, jitter, comp, enc, point, seed, oneway=True)
    assert a["acks"]["total"] == 0
    generation_and_calls_match(a, t, gen, comp)


@pytest.mark.parametrize("gen", ["12", "13", "main"])
@pytest.mark.parametrize("seed", range(1, 15))
def test_capture_only_loss_at_the_server_keeps_resends_and_send_calls(gen, seed):
    """3 % of the frames lost by the capture alone (both ways), at the server, with 2 % loss
    each way on the network: a resend whose first copy the capture missed still counts, and
    a new call after a missing ACK is still a new call."""
    a, t = run(DumpSpec(generation=gen, size=512 << 10, encrypt=seed % 2 == 0),
               NetworkSpec(loss=0.02, ack_loss=0.02), "server", seed=seed, capture_loss=0.03)
    r, c = a["retransmissions"], t["capture"]
    assert (r["total"], r["needed"], r["spurious"]) == (
        c["retransmissions"], c["retransmissions_needed"], c["retransmissions_spurious"])
    assert a["bursts"]["count"] == t["calls_captured"]
