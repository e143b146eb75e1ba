"""The --merge command line: views, ring-buffer views, conflicts between views, bad views."""
from __future__ import annotations

import hashlib
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.capture import open_captures
from analyzer.datagram import Datagram
from analyzer.merge.views import parse_views
from analyzer.simulate import NetworkSpec
from analyzer.simulate.vantage import TapSpec
from analyzer.wire import MSG_HDR
from tests.cli.test_hostile import cli, one_line_error


def _taps(**server):
    return [TapSpec("mirror", 0.5, miss_packets=(6, 17), clock_offset_s=-30.0),
            TapSpec("server", 1.0, miss_packets=(9,), clock_offset_s=600.0, **server)]


def split_pcap(path: str, first: int) -> tuple[str, str]:
    """A classic pcap cut into two ring-buffer files, ``first`` records in the first."""
    data = open(path, "rb").read()
    head, pos, cuts = data[:24], 24, []
    while pos < len(data):
        cuts.append(pos)
        (incl,) = struct.unpack_from("<I", data, pos + 8)
        pos += 16 + incl
    a, b = path + ".1", path + ".2"
    open(a, "wb").write(data[:cuts[first]])
    open(b, "wb").write(head + data[cuts[first]:])
    return a, b


def _copy_of(path: str, seqno: int) -> Datagram:
    """The file's copy of the client message with this seqno (its one copy)."""
    for d in open_captures([path]):
        if type(d) is Datagram and len(d.payload) >= 24 and d.sport == 20024 \
                and MSG_HDR.struct.unpack_from(d.payload)[1] == seqno:
            return d
    raise AssertionError(seqno)


def _frame_of(path: str, seqno: int) -> int:
    return _copy_of(path, seqno).frame


def test_extract_merge_writes_the_union(captured, tmp_path):
    run = captured(_taps())
    out = tmp_path / "out"
    p = cli("extract", "--merge", *run.views(), "-o", out, "--json", tmp_path / "r.json")
    assert p.returncode == 0, p.stderr
    (session,) = json.loads((tmp_path / "r.json").read_text())["sessions"]
    assert session["status"] == "complete"
    vmcore = next(f for f in session["files"] if "vmcore" in f)
    assert (out / vmcore).read_bytes() == run.truth.file_bytes(
        run.truth.dumps[0].session.core_name)
    assert [sorted(v) for v in session["views"]] == [
        ["capture", "clock_offset_s", "frames", "missing"]] * 2


def test_without_merge_the_files_are_one_capture_in_sequence(captured, tmp_path):
    run = captured(_taps())
    p = cli("summary", *run.views(), "--json", "-")
    sessions = json.loads(p.stdout)["sessions"]
    assert len(sessions) == 2  # the same dump twice, read one after the other
    assert all("views" not in s for s in sessions)


def test_a_ring_buffer_view_is_written_with_commas(captured):
    run = captured(_taps())
    a, b = split_pcap(run.paths["mirror"], 150)
    whole = cli("summary", "--merge", run.paths["mirror"], run.paths["server"], "--json", "-")
    ring = cli("summary", "--merge", f"{a},{b}", run.paths["server"], "--json", "-")
    w, r = json.loads(whole.stdout), json.loads(ring.stdout)
    assert [c["path"] for c in r["captures"]] == [a, b, run.paths["server"]]
    (ws,), (rs,) = w["sessions"], r["sessions"]
    assert rs["views"][0]["capture"] == f"{a},{b}"
    assert rs["views"][0]["missing"] == ws["views"][0]["missing"] != []
    assert rs["views"][0]["clock_offset_s"] == ws["views"][0]["clock_offset_s"]
    assert rs["vmcore"] == ws["vmcore"]


def test_views_that_disagree_on_bytes_name_both_frames(captured):
    # the server's capture shows transmission 20 with another last byte
    run = captured(_taps(alter_packets=(20,)))
    report, code = run.merge(vantage=False)
    (session,) = report["sessions"]
    (conflict,) = [a for a in session["anomalies"] if a["kind"] == "vantage-conflict"]
    seqno = 20  # no loss, no resend: transmission n carries seqno n
    mirror, server = run.paths["mirror"], run.paths["server"]
    assert f"frame {_frame_of(mirror, seqno)} of {mirror}" in conflict["detail"]
    assert f"frame {_frame_of(server, seqno)} of {server}" in conflict["detail"]
    assert conflict["file"] == server and conflict["frame"] == _frame_of(server, seqno)
    # the copy nearest the server is the one kept, as netdumpd got it
    kept = _copy_of(server, seqno).payload
    _t, _s, offset, length, _a = MSG_HDR.struct.unpack_from(kept)
    dump = bytearray(run.truth.file_bytes(run.truth.dumps[0].session.core_name))
    assert dump[offset + length - 1] != kept[-1]
    dump[offset + length - 1] = kept[-1]
    assert session["vmcore"]["missing"] == []
    assert session["vmcore"]["sha256"] == hashlib.sha256(dump).hexdigest()


def test_an_unreadable_view_is_one_line_and_the_others_still_count(captured, tmp_path):
    run = captured(_taps())
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    p = cli("summary", "--merge", *run.views(), bad, "--json", tmp_path / "r.json")
    assert p.returncode == 1
    assert str(bad) in one_line_error(p)
    report = json.loads((tmp_path / "r.json").read_text())
    (session,) = report["sessions"]
    assert session["status"] == "complete" and len(session["views"]) == 2
    assert report["captures"][-1]["error"]


def test_audit_merge_adds_the_vantage_object(captured, tmp_path):
    run = captured(_taps())
    p = cli("audit", "--merge", *run.views(), "--json", tmp_path / "r.json")
    assert p.returncode == 0, p.stderr
    assert "Capture points of dump 1" in p.stdout
    (session,) = json.loads((tmp_path / "r.json").read_text())["sessions"]
    vantage = session["audit"]["vantage"]
    assert sorted(vantage) == ["lost_between", "order", "tap_drops", "transmissions"]
    assert sorted(vantage["transmissions"]) == ["seen_by", "seen_by_all", "seen_by_none",
                                                "total"]
    assert vantage == run.truth.vantage[0]


names = st.text(st.characters(blacklist_characters=",", blacklist_categories=("Cs",)),
                min_size=1, max_size=8)


@given(st.lists(st.lists(names, min_size=1, max_size=3), min_size=1, max_size=4))
def test_each_argument_is_one_view_and_commas_join_its_files(views):
    parsed = parse_views([",".join(files) for files in views])
    assert [v.paths for v in parsed] == views
    assert [v.name for v in parsed] == [",".join(files) for files in views]


def test_a_view_sharing_nothing_with_the_others_says_so(tmp_path):
    from analyzer.merge.run import run_merge
    from analyzer.simulate import DumpSpec, simulate
    a, _ = simulate(tmp_path / "a.pcap", DumpSpec(size=64 << 10), seed=1)
    b, _ = simulate(tmp_path / "b.pcap", DumpSpec(size=64 << 10, client_ip="192.0.2.99"), seed=2)
    _analysis, report, _code = run_merge((str(a), str(b)), None, 1 << 40)
    problem = report["views"][1]["problem"]
    assert problem.startswith(f"{b}: no messages in common")
    assert report["views"][0]["problem"] is None
    assert sorted(s["client"] for s in report["sessions"]) == ["192.0.2.10", "192.0.2.99"]


def _frame_refs(obj):
    """(file, frame) of every frame reference of a report object, its texts' ones too."""
    import re
    if isinstance(obj, list):
        for v in obj:
            yield from _frame_refs(v)
    elif isinstance(obj, str):
        for n, path in re.findall(r"\bframes? (\d+) of (\S+?)[),;:]?(?:\s|$)", obj):
            yield path, int(n)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key == "frame" and value:
                yield obj["file"], value
            elif key.endswith("_frame") and value:
                yield obj[f"{key}_file"], value
            elif key.endswith("_frames"):
                yield from zip(obj[f"{key}_files"], value)
            else:
                yield from _frame_refs(value)


def test_every_frame_a_merge_audit_names_is_that_frame_of_its_file(captured, tmp_path):
    # the server misses transmission 9 and the mirror 6 and 17: the union's numbers are
    # neither view's
    from analyzer.wire import MsgType
    run = captured(_taps(), network=NetworkSpec(loss=0.03, ack_loss=0.03), seed=2)
    p = cli("audit", "-q", "--merge", *run.views(), "--json", tmp_path / "r.json")
    assert p.returncode in (0, 3), p.stderr
    (session,) = json.loads((tmp_path / "r.json").read_text())["sessions"]
    frames = {path: {d.frame: d for d in open_captures([path])} for path in run.views()}
    refs = list(_frame_refs(session["audit"]))
    assert len(refs) > 20 and {f for f, _n in refs} <= set(run.views())
    for path, n in refs:
        assert type(frames[path].get(n)) is Datagram, (path, n)

    def msg_type(ref):
        payload = frames[ref["file"]][ref["frame"]].payload
        return MSG_HDR.struct.unpack_from(payload)[0]
    timeline = session["audit"]["timeline"]
    assert msg_type(timeline["herald"]) == MsgType.HERALD
    assert msg_type(timeline["kdh"]) == MsgType.KDH
    assert msg_type(timeline["finished"]) == MsgType.FINISHED
    assert any(list(_frame_refs(s.get("cause", ""))) for s in session["audit"]["stalls"]["first"])


@pytest.mark.parametrize("command, option", [
    ("extract", ["--json-lines", "lines.jsonl"]), ("extract", ["--exec", "true"]),
    ("extract", ["--follow"]), ("summary", ["--json-lines", "-"]), ("summary", ["--follow"]),
    ("audit", ["--follow"])])
def test_options_a_merged_run_cannot_honour_are_refused_by_name(captured, tmp_path, command,
                                                                option):
    run = captured(_taps())
    out = ["-o", tmp_path / "out"] if command == "extract" else []
    p = cli(command, "--merge", *run.views(), *out, *option, cwd=tmp_path)
    assert p.returncode == 2
    assert f"{option[0]} does not go with --merge" in one_line_error(p)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "lines.jsonl").exists()


def test_a_view_on_standard_input_is_refused_before_anything_is_read(captured, tmp_path):
    import subprocess
    import sys
    run = captured(_taps())
    with open(run.paths["mirror"], "rb") as stdin:
        p = subprocess.run([sys.executable, "-m", "analyzer", "extract", "--merge", "-",
                            run.paths["server"], "-o", str(tmp_path / "out")],
                           stdin=stdin, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "-: a --merge view is read twice" in one_line_error(p)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_simulate_capture_points_take_a_clock_drift(tmp_path):
    p = cli("simulate", "-o", tmp_path / "d.pcap", "--size", "64k", "--capture-points",
            "mirror,server", "--point-clock", "server=12.5", "--point-drift", "server=150",
            "--expected", tmp_path / "truth")
    assert p.returncode == 0, p.stderr
    points = json.loads((tmp_path / "truth" / "vantage.json").read_text())["points"]
    assert [(x["name"], x["clock_offset_s"], x["clock_drift_ppm"]) for x in points] == [
        ("mirror", 0.0, 0.0), ("server", 12.5, 150.0)]
    bad = cli("simulate", "-o", tmp_path / "e.pcap", "--capture-points", "mirror,server",
              "--point-drift", "server=fast")
    assert bad.returncode == 2 and "the clock drift must be a number" in bad.stderr
