"""The audit against the simulator's ground truth: what was lost, resent, late, and why."""
import pytest

from analyzer.audit import AuditSink
from analyzer.datagram import Datagram
from analyzer.pipeline import Analysis
from analyzer.simulate import CaptureSpec, DumpSpec, NetworkSpec, simulate_frames


def run(dump: DumpSpec, network=None, point="server", seed=1, oneway=False, capture_loss=0.0,
        **kw):
    """The audit's report of one simulated dump, and its truth; ``oneway``: the capture holds
    the client's datagrams only (no ACKs); ``capture_loss``: frames only the capture lost."""
    frames, truth = simulate_frames(dump, network=network,
                                    capture=CaptureSpec(point=point, loss=capture_loss), seed=seed)
    roles = (0,) if oneway else (0, 1)  # readers yield UDP only (role 2 is ICMP)
    items = [Datagram(i + 1, f[0], f[2], f[3], f[4], f[5], f[6])
             for i, f in enumerate(frames) if f[1] in roles]
    sink = AuditSink(**kw)
    a = Analysis(sinks=[sink])
    a.run(items)
    a.finish()
    return sink.audit_json(1), truth.to_json()["dumps"][0]


GEN = {"12": "12.x", "13": "13.x", "main": "main"}


@pytest.mark.parametrize("point", ["server", "client", "mirror"])
@pytest.mark.parametrize("gen", ["12", "13", "main"])
@pytest.mark.parametrize("seed", [1, 4])
def test_retransmissions_rounds_and_bursts_match_the_truth(gen, point, seed):
    a, t = run(DumpSpec(generation=gen, size=1 << 20, encrypt=True),
               NetworkSpec(loss=0.02, ack_loss=0.02), point, seed)
    r, c = a["retransmissions"], t["capture"]
    assert r["total"] == c["retransmissions"]
    assert r["needed"] == c["retransmissions_needed"]
    assert r["spurious"] == c["retransmissions_spurious"]
    assert r["rounds"] == sum(t["rounds_per_call"].values())
    assert a["bursts"]["max_rounds"] == t["max_rounds"]
    assert a["bursts"]["count"] == t["calls"]
    assert a["generation"]["guess"] == GEN[gen]
    assert a["timeline"]["unique_bytes"] == t["image_size"]


def test_lost_acks_give_spurious_resends_at_the_server_and_needed_at_the_client():
    spec = DumpSpec(generation="13", size=256 << 10, drop_acks={5: 1, 30: 2})
    a, t = run(spec, point="server")
    r = a["retransmissions"]
    assert (r["total"], r["needed"], r["spurious"]) == (3, 0, 3)
    assert a["acks"]["duplicate"] == 3
    a, t = run(spec, point="client")
    r = a["retransmissions"]
    assert (r["total"], r["needed"], r["spurious"]) == (3, 3, 0)
    assert a["bursts"]["max_rounds"] == 2 == t["max_rounds"]


def test_lost_data_is_a_needed_resend_even_when_the_capture_never_saw_the_first_copy():
    spec = DumpSpec(generation="13", size=256 << 10, drop_seqnos={7: 1, 60: 2})
    for point, visible in (("server", 2), ("mirror", 3)):
        a, t = run(spec, point=point)
        r, c = a["retransmissions"], t["capture"]
        assert (r["total"], r["needed"], r["spurious"]) == (visible, visible, 0), point
        assert r["total"] == c["retransmissions"] and r["needed"] == c["retransmissions_needed"]
        # seqno 60 lost twice: two rounds, even where only its third copy was captured
        assert r["rounds"] == 3 and a["bursts"]["max_rounds"] == 2 == t["max_rounds"]
        assert next(c for c in a["checks"] if c["name"] == "seqno continuity from 1")["ok"]
        assert a["acks"]["never_acknowledged"] == 0


def test_rtt_without_loss_matches_the_client_measurement():
    a, t = run(DumpSpec(generation="13", size=512 << 10), point="client")
    rtt, truth = a["rtt"], t["rtt_ns"]
    # at the client the capture times exactly what the client measures
    assert rtt["count"] == truth["n"]
    assert rtt["min"] == pytest.approx(truth["min"] / 1e9, abs=1e-9)
    assert rtt["max"] == pytest.approx(truth["max"] / 1e9, abs=1e-9)
    assert rtt["median"] == pytest.approx(truth["median"] / 1e9, abs=1e-9)
    assert rtt["method"] == "exact"


def test_rtt_excludes_retransmitted_messages():
    spec = DumpSpec(generation="13", size=512 << 10, drop_seqnos={10: 1, 20: 1, 30: 1})
    a, t = run(spec, point="client")
    sent = sum(v["first"] for v in a["retransmissions"]["by_type"].values())
    assert a["rtt"]["count"] == sent - 3
    assert a["rtt"]["max"] < 0.01  # no 1 s resend delay in any sample


def test_stall_from_client_work_is_nothing_on_the_wire():
    spec = DumpSpec(generation="13", size=256 << 10, work_us=700_000)
    a, t = run(spec, point="server", stall_threshold=0.5)
    s = a["stalls"]
    assert s["count"] == t["calls"] - 1
    assert all(x["cause"].startswith("nothing on the wire") for x in s["first"])
    assert a["retransmissions"]["total"] == 0


def test_stall_from_a_blackout_is_waiting_for_acks():
    spec = DumpSpec(generation="13", size=512 << 10, blackout_ms=((5, 2500),))
    a, t = run(spec, point="mirror", stall_threshold=0.5)
    s = a["stalls"]
    assert s["count"] >= 2
    assert all("waiting for ACKs" in x["cause"] or "poll timeout" in x["cause"]
               for x in s["first"])
    assert a["bursts"]["max_rounds"] == t["max_rounds"] >= 2


def test_jumbo_mtu_13_is_refused_by_netdumpd_and_flagged():
    a, t = run(DumpSpec(generation="13", size=128 << 10, mtu=9000), point="server")
    assert "12.x" not in a["generation"]["candidates"]
    assert any(p["kind"] == "payload at most 4096" and p["severity"] == "error"
               for p in a["problems"])


def test_jumbo_mtu_12_payloads_cap_at_4096():
    a, t = run(DumpSpec(generation="12", size=256 << 10, mtu=9000), point="server")
    assert a["generation"]["guess"] == "12.x"
    assert next(c for c in a["checks"] if c["name"] == "payload at most 4096")["ok"]
    assert a["retransmissions"]["total"] == 0


@pytest.mark.parametrize("seed", [2, 3])
def test_network_duplicates_are_not_retransmissions(seed):
    point = "server"  # a tap before the network (mirror) never sees the duplicates
    a, t = run(DumpSpec(generation="13", size=512 << 10),
               NetworkSpec(loss=0.01, ack_loss=0.01, dup=0.05, ack_dup=0.05), point, seed=seed)
    r, c = a["retransmissions"], t["capture"]
    assert c["network_duplicates"] > 5
    assert r["network_duplicates"] == c["network_duplicates"]
    assert (r["total"], r["needed"], r["spurious"]) == (
        c["retransmissions"], c["retransmissions_needed"], c["retransmissions_spurious"])
    assert r["rounds"] == sum(t["rounds_per_call"].values())
    assert r["timeout"]["min"] > 0.9


@pytest.mark.parametrize("gen", ["12", "13"])
@pytest.mark.parametrize("lost", [3, 6, 11])
def test_every_round_of_a_seqno_lost_again_and_again_counts_at_the_server(gen, lost):
    """Only the last copy reaches the server, a whole number of poll timeouts late: that
    number is the rounds, even with no other resend in the dump to learn the timeout from."""
    a, t = run(DumpSpec(generation=gen, size=256 << 10, drop_seqnos={50: lost}), point="server")
    r = a["retransmissions"]
    assert t["max_rounds"] == lost
    assert (r["rounds"], r["hidden_rounds"], a["bursts"]["max_rounds"]) == (lost, lost - 1, lost)
    assert (r["total"], r["needed"], r["hidden"]) == (1, 1, 1)


def test_a_resend_whose_first_copy_the_capture_missed_but_whose_ack_it_has_is_spurious():
    """The server got seqno 30 and ACKed it, the ACK was lost on the way to the client, and
    the capture (at the server) missed the first copy: the resend is the first copy the
    capture shows, after an ACK of it, so it is a resend, and a spurious one."""
    spec = DumpSpec(generation="13", size=256 << 10, drop_acks={30: 1})
    frames, _ = simulate_frames(spec, capture=CaptureSpec(point="server"), seed=1)
    first = next(i for i, f in enumerate(frames) if f[1] == 0 and f[7][2] == 30) + 1
    frames, truth = simulate_frames(spec, capture=CaptureSpec(point="server",
                                                              drop_frames=(first,)), seed=1)
    items = [Datagram(i + 1, f[0], f[2], f[3], f[4], f[5], f[6])
             for i, f in enumerate(frames) if f[1] != 2]
    sink = AuditSink()
    a = Analysis(sinks=[sink])
    a.run(items)
    a.finish()
    r, c = sink.audit_json(1)["retransmissions"], truth.to_json()["dumps"][0]["capture"]
    assert (c["retransmissions"], c["retransmissions_spurious"]) == (1, 1)
    assert (r["total"], r["needed"], r["spurious"], r["hidden"]) == (1, 0, 1, 1)
