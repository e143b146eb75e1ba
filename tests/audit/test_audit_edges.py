"""The audit at the edges: a cut capture, one number for one thing, duplicates against the
poll timeout, send calls on slow links and one-way captures, and what to do."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from analyzer.audit.stats import Sample
from analyzer.cli import cli
from analyzer.simulate import DumpSpec, NetworkSpec
from tests.audit.test_audit_sim import run

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def report(capture, tmp_path, *extra):
    out = tmp_path / "a.json"
    r = CliRunner().invoke(cli, ["audit", str(capture), "--json", str(out), *extra])
    assert "Traceback" not in r.output
    return r, json.loads(out.read_text())


def test_a_cut_capture_is_reported_as_cut_and_its_bytes_agree_with_extract(tmp_path):
    cut = tmp_path / "t.pcap"
    cut.write_bytes((SAMPLES / "clean-13x.pcap").read_bytes()[:20000])
    r, rep = report(cut, tmp_path)
    (s,) = rep["sessions"]
    a = s["audit"]
    assert a["outcome"] == "capture cut at frame 15, mid-dump"
    assert a["timeline"]["capture_cut"]["frame"] == 15
    assert a["problems"][0]["kind"] == "capture cut"
    assert "capture cut" in r.output
    # the cut record's lost bytes are not counted as received by either
    assert a["timeline"]["unique_bytes"] == s["vmcore"]["received"] == 18741


def test_retransmissions_captured_is_the_reports_retransmits_and_both_are_shown(tmp_path):
    r, rep = report(SAMPLES / "lossy-12x.pcapng", tmp_path)
    (s,) = rep["sessions"]
    x = s["audit"]["retransmissions"]
    assert x["captured"] == s["retransmits"] == 4
    assert x["captured"] == x["total"] - x["hidden"] + x["network_duplicates"]
    assert (f"Retransmissions: {x['total']} " in r.output
            and f"captured copies of sent seqnos: {x['captured']}" in r.output)


def test_bursts_count_every_send_call_of_the_sample_with_vmcore_apart():
    truth = json.loads((SAMPLES / "lossy-12x.expected" / "truth.json").read_text())["dumps"][0]
    rep = json.loads(CliRunner().invoke(cli, ["audit", str(SAMPLES / "lossy-12x.pcapng"),
                                              "--json", "-", "-q"]).output)
    b = rep["sessions"][0]["audit"]["bursts"]
    assert (b["count"], b["vmcore"]) == (truth["calls_captured"], truth["vmcore_calls_captured"])


def test_a_copy_within_the_same_send_is_a_duplicate_however_slow_the_link():
    # 100 Mb/s, host stalls, duplicates delayed by up to 60 us: all still inside one send
    net = NetworkSpec(link_mbps=100, host_jitter=0.05, dup=0.05, ack_dup=0.05, loss=0.01)
    a, t = run(DumpSpec(generation="13", size=512 << 10), net, "server", seed=5)
    r, c = a["retransmissions"], t["capture"]
    assert c["network_duplicates"] > 5
    assert (r["network_duplicates"], r["total"]) == (c["network_duplicates"],
                                                     c["retransmissions"])


def test_a_resend_after_a_short_poll_timeout_is_not_a_duplicate():
    # the old fixed 50 ms rule would be right here too; what matters: a copy is a resend
    # when it comes a poll timeout later, the duplicate window is half of it
    a, t = run(DumpSpec(generation="13", size=256 << 10, drop_acks={5: 1, 30: 1}),
               point="server")
    r = a["retransmissions"]
    assert (r["total"], r["network_duplicates"]) == (2, 0)
    assert r["timeout"]["min"] > 0.9


@pytest.mark.parametrize("gen", ["13", "main"])
def test_13_and_later_on_a_100_mbit_link_are_never_called_12(gen):
    a, t = run(DumpSpec(generation=gen, size=512 << 10), NetworkSpec(link_mbps=100),
               "server", seed=1)
    assert "12.x" not in a["generation"]["candidates"]
    assert a["bursts"]["count"] == t["calls_captured"]


def test_12x_on_a_jumbo_mtu_is_not_called_13():
    a, t = run(DumpSpec(generation="12", size=512 << 10, mtu=9000), point="server", seed=1)
    assert a["generation"]["guess"] == "12.x", a["generation"]
    assert a["bursts"]["count"] == t["calls_captured"]


def test_a_one_way_capture_finds_the_calls_by_timing():
    # the server's ACKs filtered out: only the client's datagrams
    from analyzer.audit import AuditSink
    from analyzer.datagram import Datagram
    from analyzer.pipeline import Analysis
    from analyzer.simulate import CaptureSpec, simulate_frames
    frames, truth = simulate_frames(DumpSpec(generation="12", size=256 << 10, mtu=9000),
                                    NetworkSpec(link_mbps=100), CaptureSpec(point="client"),
                                    seed=2)
    items = [Datagram(i + 1, f[0], f[2], f[3], f[4], f[5], f[6])
             for i, f in enumerate(f for f in frames if f[1] == 0)]
    sink = AuditSink()
    an = Analysis(sinks=[sink])
    an.run(items)
    an.finish()
    assert sink.audit_json(1)["bursts"]["count"] == truth.to_json()["dumps"][0]["calls"]


def test_advice_raise_the_retries_when_the_worst_burst_came_close_to_the_limit():
    drop = {10: 8}  # 8 rounds: 3 to spare (a mirror port sees every resend)
    a, _t = run(DumpSpec(generation="13", size=256 << 10, drop_seqnos=drop), point="mirror")
    kinds = {x["kind"]: x["text"] for x in a["advice"]}
    assert "debug.debugnet.nretries" in kinds["raise retries"]
    a, _t = run(DumpSpec(generation="12", size=256 << 10, drop_seqnos=drop), point="mirror")
    assert "net.netdump.retries" in {x["kind"]: x["text"] for x in a["advice"]}["raise retries"]
    a, _t = run(DumpSpec(generation="13", size=256 << 10, drop_seqnos={10: 7}), point="mirror")
    assert "raise retries" not in {x["kind"] for x in a["advice"]}


def test_advice_a_jumbo_mtu_client_must_use_a_1500_mtu_interface():
    a, _t = run(DumpSpec(generation="13", size=128 << 10, mtu=9000), point="server")
    text = {x["kind"]: x["text"] for x in a["advice"]}["use a 1500 MTU"]
    assert "1500-byte MTU" in text and "8948" in text


def test_advice_where_to_capture_when_acks_were_lost_after_the_server():
    a, _t = run(DumpSpec(generation="13", size=256 << 10, drop_acks={5: 1}), point="server")
    text = {x["kind"]: x["text"] for x in a["advice"]}["find the lost acks"]
    assert "client's side" in text
    a, _t = run(DumpSpec(generation="13", size=256 << 10), point="server")
    assert a["advice"] == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(), max_size=60), st.integers(min_value=0, max_value=30))
def test_a_sample_counts_everything_and_keeps_the_first_examples(items, keep):
    s = Sample(keep)
    for x in items:
        s.add(x)
    assert s.count == len(items)
    assert s.items == items[:keep]
