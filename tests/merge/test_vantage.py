"""audit --merge: which capture points saw each transmission, and where it was lost."""
from __future__ import annotations

import pytest

from analyzer.simulate import DumpSpec, NetworkSpec
from analyzer.simulate.vantage import TapSpec

from .conftest import three_taps

# network losses at chosen places: transmission number -> position on the path
LOSSES = {10: 0.25, 25: 0.75, 40: 0.75, 41: 0.25, 77: 0.75}


def _dump(**kw):
    return DumpSpec(generation="12", size=256 << 10, drop_packets=tuple(LOSSES),
                    drop_acks={30: 1, 55: 1}, **kw)


def _taps_missing():
    return [TapSpec("client", 0.0, miss_packets=(15, 61), clock_offset_s=0.0),
            TapSpec("mirror", 0.5, miss_packets=(30, 50, 90), clock_offset_s=-20.0),
            TapSpec("server", 1.0, miss_packets=(60, 70), miss_acks=(45,),
                    clock_offset_s=1800.0)]


def test_three_points_count_and_place_every_loss_as_the_truth(captured):
    run = captured(_taps_missing(), dump=_dump(), loss_where=LOSSES)
    report, _code = run.merge()
    (session,) = report["sessions"]
    vantage = session["audit"]["vantage"]
    truth = run.truth.vantage[0]
    assert vantage == truth
    # the scenario is what it says: losses on both segments, drops at every point
    assert {(x["from"], x["to"]) for x in vantage["lost_between"]} == {
        (run.paths["client"], run.paths["mirror"]), (run.paths["mirror"], run.paths["server"])}
    assert all(vantage["tap_drops"].values())
    assert vantage["order"] == list(run.views())


def test_order_is_inferred_not_taken_from_the_command_line(captured):
    run = captured(_taps_missing(), dump=_dump(), loss_where=LOSSES)
    report, _code = run.merge(names=["server", "client", "mirror"])
    vantage = report["sessions"][0]["audit"]["vantage"]
    assert vantage["order"] == [run.paths["client"], run.paths["mirror"], run.paths["server"]]
    assert vantage == run.truth.vantage[0]


def test_losses_before_the_first_point_are_inferred_from_resends(captured):
    taps = [TapSpec("mirror", 0.5, miss_packets=(33,), clock_offset_s=0.002),
            TapSpec("server", 1.0, miss_packets=(12,))]
    losses = {8: 0.25, 20: 0.25, 21: 0.75}
    dump = DumpSpec(generation="12", size=256 << 10, drop_packets=tuple(losses))
    run = captured(taps, dump=dump, loss_where=losses)
    vantage = run.merge()[0]["sessions"][0]["audit"]["vantage"]
    assert vantage["transmissions"]["seen_by_none"] == 2
    assert vantage == run.truth.vantage[0]


def test_a_copy_no_point_saw_is_told_by_its_ack(captured):
    # transmission 14 reaches the server, but both points miss it; its ACK is seen
    taps = [TapSpec("client", 0.0, miss_packets=(14,)), TapSpec("server", 1.0, miss_packets=(14,))]
    run = captured(taps)
    vantage = run.merge()[0]["sessions"][0]["audit"]["vantage"]
    assert vantage["transmissions"]["seen_by_none"] == 1
    assert vantage == run.truth.vantage[0]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_drops_and_loss_match_the_truth(captured, seed):
    net = NetworkSpec(loss=0.03, ack_loss=0.03)
    run = captured(three_taps(0.02), network=net, seed=seed, loss_at=(0.25, 0.75))
    vantage = run.merge()[0]["sessions"][0]["audit"]["vantage"]
    assert vantage == run.truth.vantage[0]


def test_extract_and_summary_carry_no_vantage(captured):
    run = captured(three_taps(0.02), seed=3)
    report, _code = run.merge(vantage=False)
    assert "audit" not in report["sessions"][0]
    assert len(report["sessions"][0]["views"]) == 3


def test_the_vantage_plot_marks_each_transmission_by_the_points_that_saw_it(captured):
    from analyzer.merge.run import run_merge
    from analyzer.wire import MsgType
    run = captured(three_taps(0.05), network=NetworkSpec(loss=0.03), seed=21,
                   loss_at=(0.25, 0.75))
    analysis, _report, _code = run_merge(run.views(), None, 1 << 40, vantage=True,
                                         vantage_plot=True)
    (s,) = analysis.vantage.sessions.values()
    names = [t.name for t in run.taps]
    want: dict[int, int] = {}
    for r in run.truth.transmission_records:
        if r["type"] == MsgType.VMCORE and r["seen"]:
            ranks = sum(1 << names.index(n) for n in r["seen"])
            want[ranks] = want.get(ranks, 0) + 1
    got = {ranks: len(pts.points) for ranks, pts in s.plot_some.items()}
    assert got == {k: n for k, n in want.items() if k != 0b111}
    assert s.plot_all.count == want[0b111]


def test_audit_merge_plot_writes_the_vantage_png(captured, tmp_path):
    pytest.importorskip("matplotlib")
    from tests.cli.test_hostile import cli
    run = captured(three_taps(0.05), seed=22)
    p = cli("audit", "-q", "--merge", *run.views(), "--plot", tmp_path / "plots")
    assert p.returncode in (0, 3), p.stderr
    png = tmp_path / "plots" / "dump-1-192.0.2.10-vantage.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
