"""The union of simultaneous views: the bytes any view has, each view's own gaps, clocks."""
from __future__ import annotations

import pytest

from analyzer.simulate import DumpSpec
from analyzer.simulate.vantage import TapSpec

from .conftest import LOSSY, three_taps


def _two_taps(drop):
    return [TapSpec("mirror", 0.5, drop=drop, clock_offset_s=12.5),
            TapSpec("server", 1.0, drop=drop, clock_offset_s=-3 * 3600)]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("taps", [_two_taps, three_taps], ids=["two-point", "three-point"])
def test_union_misses_only_what_no_view_has(captured, taps, seed):
    run = captured(taps(0.05), network=LOSSY, seed=seed)
    report, _code = run.merge()
    (session,) = report["sessions"]
    assert session["vmcore"]["missing"] == run.truth.union_missing[0]


@pytest.mark.parametrize("taps", [_two_taps, three_taps], ids=["two-point", "three-point"])
def test_each_view_reports_its_own_gaps(captured, taps):
    run = captured(taps(0.05), network=LOSSY, seed=4)
    report, _code = run.merge()
    (session,) = report["sessions"]
    assert [v["capture"] for v in session["views"]] == list(run.views())
    for view, tap in zip(session["views"], run.taps):
        assert view["missing"] == run.truth.tap_missing[tap.name][0], tap.name
        assert view["frames"] > 0
    # the views' gaps differ, and together they hold more than any one of them
    own = [sum(b - a for a, b in v["missing"]) for v in session["views"]]
    union = sum(b - a for a, b in session["vmcore"]["missing"])
    assert union < min(own)


@pytest.mark.parametrize("taps", [_two_taps, three_taps], ids=["two-point", "three-point"])
def test_clock_offsets_within_a_millisecond(captured, taps):
    run = captured(taps(0.05), network=LOSSY, seed=5)
    report, _code = run.merge()
    for view, tap in zip(report["sessions"][0]["views"], run.taps):
        assert view["clock_offset_s"] == pytest.approx(run.offset(tap.name), abs=1e-3)
    assert [v["clock_offset_s"] for v in report["views"]] == \
        [v["clock_offset_s"] for v in report["sessions"][0]["views"]]


def test_extracted_union_is_the_dump_wherever_a_view_has_it(captured, tmp_path):
    run = captured(_two_taps(0.2), network=LOSSY, seed=6)
    report, code = run.merge(outdir=str(tmp_path / "out"))
    (session,) = report["sessions"]
    att = run.truth.dumps[0]
    dump = b"".join(piece for _off, piece in att.stream_source(0, att.material.stream.dumplength))
    vmcore = next(f for f in session["files"] if "vmcore" in f)
    got = (tmp_path / "out" / vmcore).read_bytes()
    assert len(got) == len(dump)
    holes = session["vmcore"]["missing"]
    assert holes == run.truth.union_missing[0] != [], "holes no view covers, as the truth has"
    assert code == 3
    pos = 0
    for a, b in [*holes, (len(dump), len(dump))]:
        assert got[pos:a] == dump[pos:a]
        assert got[a:b] == bytes(b - a)
        pos = b


def test_a_complete_union_from_incomplete_views(captured):
    taps = [TapSpec("mirror", 0.5, miss_packets=(5, 9, 20), clock_offset_s=40.0),
            TapSpec("server", 1.0, miss_packets=(7, 12, 33))]
    run = captured(taps, dump=DumpSpec(generation="13", size=128 << 10), seed=8)
    report, code = run.merge()
    (session,) = report["sessions"]
    assert all(v["missing"] for v in session["views"])
    assert session["vmcore"]["missing"] == run.truth.union_missing[0] == []
    assert session["status"] == "complete" and code == 0


def test_clocks_drifting_apart_are_followed_over_a_long_capture(captured):
    # two dumps 45 minutes apart; the clocks drift 120 and -80 ppm from the client's: by
    # the second dump the mirror is 0.3 s and the server 0.2 s further off than at the first
    taps = [TapSpec("client", 0.0, drop=0.03),
            TapSpec("mirror", 0.5, drop=0.03, clock_offset_s=-0.75, clock_drift_ppm=120,
                    format="pcapng"),
            TapSpec("server", 1.0, drop=0.03, clock_offset_s=7200.123456,
                    clock_drift_ppm=-80, tsres="ns")]
    dumps = [DumpSpec(generation="12", size=256 << 10),
             DumpSpec(generation="12", size=256 << 10, client_ip="192.0.2.11",
                      start_ms=45 * 60 * 1000)]
    run = captured(taps, dump=dumps, network=LOSSY, seed=9)
    report, _code = run.merge()
    assert len(report["sessions"]) == 2
    for k, session in enumerate(report["sessions"]):
        for view, tap in zip(session["views"], run.taps):
            want = run.offset(tap.name, at=session["start_time"])
            assert view["clock_offset_s"] == pytest.approx(want, abs=1e-3), (k, tap.name)
        assert session["vmcore"]["missing"] == run.truth.union_missing[k]
        assert session["audit"]["vantage"] == run.truth.vantage[k]
    drift = {v["capture"]: v["clock_drift_ppm"] for v in report["views"]}
    assert drift[run.paths["mirror"]] == pytest.approx(120, abs=1)
    assert drift[run.paths["server"]] == pytest.approx(-80, abs=1)


def _tagged(items, vlans, drop=()):
    """A classic pcap of (host, datagram) on Ethernet, host h's frames (and the ACKs to it)
    tagged ``vlans[h]``, from and to its own MAC; the frames numbered in ``drop`` left out."""
    from tests.support.capture_builders import ether, pcap, udp_ip
    server_mac = bytes.fromhex("0200000000fe")
    records = []
    for n, (h, d) in enumerate(items, 1):
        if n in drop:
            continue
        host = bytes.fromhex("0200000000") + bytes([h + 1])
        src, dst = (host, server_mac) if d.sport == 20024 else (server_mac, host)
        frame = ether(udp_ip(d.sport, d.dport, d.payload, d.src, d.dst), src=src, dst=dst,
                      vlans=vlans[h])
        records.append((d.ts, frame))
    return pcap(records)


def test_one_address_on_two_vlans_is_two_dumps_in_the_union(tmp_path):
    # two hosts with one address on VLANs 10 and 20 dump at once; the mirror adds an outer
    # tag; each view misses frames the other has
    from analyzer.merge.run import run_merge
    from tests.support.datagrams import Conversation, image
    items = []
    for h, port in enumerate((40001, 40002)):
        c = Conversation(data_port=port)
        c.t += 50_000 * h
        c.herald()
        c.data(image(40_000, seed=h + 1))
        c.kdh(40_000)
        c.finished()
        items += [(h, d) for d in c.items]
    items.sort(key=lambda hd: hd[1].ts)
    server_tags = [[(0x8100, 10)], [(0x8100, 20)]]
    mirror_tags = [[(0x88A8, 100), *tags] for tags in server_tags]
    server, mirror = tmp_path / "server.pcap", tmp_path / "mirror.pcap"
    server.write_bytes(_tagged(items, server_tags, drop=set(range(5, 200, 7))))
    mirror.write_bytes(_tagged(items, mirror_tags, drop=set(range(9, 200, 14))))
    alone = run_merge((str(server),), None, 1 << 40)[1]
    _analysis, report, _code = run_merge((str(mirror), str(server)), None, 1 << 40)
    assert len(alone["sessions"]) == 2
    assert sorted(s["server_port"] for s in report["sessions"]) == [40001, 40002]
    for s in report["sessions"]:
        assert s["status"] == "complete" and s["vmcore"]["missing"] == [], s["anomalies"]
        assert not [x for x in s["anomalies"] if x["kind"] in ("ip-conflict", "dump-restarted")]


def test_two_dumps_from_one_client_stay_two_in_the_union_and_in_each_view(captured):
    dumps = [DumpSpec(generation="12", size=256 << 10),
             DumpSpec(generation="13", size=128 << 10, start_ms=30_000)]
    run = captured(three_taps(0.03), dump=dumps, network=LOSSY, seed=3)
    report, _code = run.merge()
    sessions = report["sessions"]
    assert [s["client"] for s in sessions] == ["192.0.2.10"] * 2
    for k, session in enumerate(sessions):
        assert session["vmcore"]["missing"] == run.truth.union_missing[k]
        for view, tap in zip(session["views"], run.taps):
            assert view["missing"] == run.truth.tap_missing[tap.name][k], (k, tap.name)
        assert session["audit"]["vantage"] == run.truth.vantage[k]
