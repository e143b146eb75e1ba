"""Recovery across client generations, link types, capture formats and impairments.

Each case is simulated with a known ground truth, read back through the whole pipeline,
and checked: byte-identical files for complete dumps, exact missing ranges otherwise,
and the anomalies the impairment must raise.
"""
import pytest

from analyzer.pipeline import run_analysis
from analyzer.simulate import CaptureSpec, DumpSpec, NetworkSpec, simulate

from tests.support.truth_check import check

IMPAIRMENTS = {
    "clean": ({}, {}, {}, set()),
    "lossy": ({}, dict(loss=0.04, ack_loss=0.04), {}, set()),
    "reorder-dup": ({}, dict(reorder=0.1, dup=0.03, ack_dup=0.03), {}, set()),
    "capture-loss": ({}, {}, dict(loss=0.03), set()),
    "snaplen": ({}, {}, dict(snaplen=600), {"snaplen-truncated"}),
    "fragmented": ({}, {}, dict(fragment=576), {"ip-fragments"}),
    "late-start": ({}, {}, dict(start_after=3), {"herald-missing"}),
    "gzip": (dict(compress="gzip"), dict(loss=0.02), {}, set()),
    "zstd": (dict(compress="zstd"), {}, {}, set()),
    "encrypted": (dict(encrypt=True), dict(loss=0.02), {}, set()),
}


def recover(tmp_path, dump, network=None, capture=None, seed=7):
    cap, truth = simulate(tmp_path / "cap", dump, network=network, capture=capture, seed=seed)
    out = tmp_path / "out"
    _analysis, report, code = run_analysis((str(cap),), str(out), 1 << 40)
    return report, truth.to_json(), out, code


@pytest.mark.parametrize("generation", ["12", "13", "main"])
@pytest.mark.parametrize("name", list(IMPAIRMENTS))
def test_generation_by_impairment(tmp_path, generation, name):
    dump_kw, net_kw, cap_kw, kinds = IMPAIRMENTS[name]
    dump = DumpSpec(generation=generation, size=96 << 10, path="crash/host", **dump_kw)
    report, truth, out, code = recover(tmp_path, dump, NetworkSpec(**net_kw), CaptureSpec(**cap_kw))
    check(report, truth, out)
    (session,) = report["sessions"]
    assert kinds <= {a["kind"] for a in session["anomalies"]}
    assert code == (0 if session["status"] == "complete" else 3)


LINKS = [
    dict(format="pcap", link="ethernet", tsres="ns", byteorder=">"),
    dict(format="pcap", link="vlan"),
    dict(format="pcapng", link="qinq"),
    dict(format="pcap", link="sll"),
    dict(format="pcapng", link="sll2", tsres="ns"),
    dict(format="pcap", link="raw"),
    dict(format="pcap", link="null"),
    dict(format="pcapng", link="ethernet", gzip=True),
    dict(format="pcapng", interfaces=[("ethernet", "us"), ("sll2", "ns"), ("raw", "us")]),
]


@pytest.mark.parametrize("fmt", LINKS, ids=lambda f: "-".join(
    str(v) if not isinstance(v, list) else "multi-idb" for v in f.values()))
def test_link_types_and_formats(tmp_path, fmt):
    dumps = [DumpSpec(generation="13", size=64 << 10, client_ip="10.1.0.1"),
             DumpSpec(generation="main", size=48 << 10, client_ip="10.1.0.2", encrypt=True)]
    report, truth, out, code = recover(tmp_path, dumps, NetworkSpec(loss=0.02, ack_loss=0.02),
                                       CaptureSpec(**fmt))
    check(report, truth, out)
    assert len(report["sessions"]) == 2


def test_restart_and_several_clients_are_kept_apart(tmp_path):
    dumps = [DumpSpec(generation="13", size=64 << 10, client_ip="10.2.0.1", restart_after=20),
             DumpSpec(generation="12", size=64 << 10, client_ip="10.2.0.2"),
             DumpSpec(generation="main", size=32 << 10, client_ip="10.2.0.3", compress="zstd")]
    report, truth, out, code = recover(tmp_path, dumps, NetworkSpec(loss=0.01))
    check(report, truth, out)
    assert [s["client"] for s in report["sessions"]].count("10.2.0.1") == 2


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_icmp_port_unreachable_after_finished_is_reported(tmp_path, fmt):
    """A lost FINISHED ACK: the client resends FINISHED to the port netdumpd has closed, and
    the server host answers each with ICMP port-unreachable (11 resends)."""
    from analyzer.simulate import simulate_frames
    from analyzer.wire import MSG_HDR, MsgType
    spec = DumpSpec(size=32 << 10)
    frames, _ = simulate_frames(spec, seed=17)
    fin = next(MSG_HDR.parse(f[6]).seqno for f in frames
               if f[1] == 0 and MSG_HDR.parse(f[6]).type == MsgType.FINISHED)
    spec.drop_acks = {fin: 1}
    cap, truth = simulate(tmp_path / "cap", spec, capture=CaptureSpec(point="mirror", format=fmt),
                          seed=17)
    from analyzer.audit.sink import AuditSink
    sink = AuditSink()
    _analysis, report, _code = run_analysis((str(cap),), None, 1 << 40, sinks=(sink,))
    (session,) = report["sessions"]
    icmp = [a for a in session["anomalies"] if a["kind"] == "icmp-unreachable"]
    assert len(icmp) == truth.to_json()["dumps"][0]["capture"]["icmp_frames"] == 11
    assert "after FINISHED" in icmp[0]["detail"]
    (check,) = [c for c in sink.audit_json(session["id"])["checks"]
                if c["name"] == "no icmp port-unreachable"]
    assert not check["ok"] and "FINISHED ACK was lost" in check["detail"]
