"""The status says what really happened: refused data is missing data, a cut capture is
named as the cause, and leftover .part files of an interrupted run are reported."""
from __future__ import annotations

import json

from analyzer.pipeline import Analysis
from analyzer.wire import MsgType
from tests.support.datagrams import Conversation, clean_dump, image

INFO = "crash/web1/info.192.0.2.7.0"
CORE = "crash/web1/vmcore.192.0.2.7.0"


def _extract(items, out, **kw):
    a = Analysis(str(out), **kw)
    a.run(items)
    a.finish()
    return a


def test_data_past_max_dump_size_is_missing_and_the_info_file_says_why(tmp_path):
    c, img = clean_dump(size=8 * 1448)
    a = _extract(c.items, tmp_path, max_dump_size=3 * 1448)
    (rec,) = a.records
    assert not rec.complete
    assert rec.vmcore_length == len(img)
    assert rec.vmcore_missing() == [(3 * 1448, len(img))]
    info = (tmp_path / INFO).read_bytes()
    assert info.endswith(b"Dump incomplete: data beyond --max-dump-size refused\n")
    assert b"  Missing vmcore bytes: [4344, 11584) (7240 bytes)\n" in info
    assert (tmp_path / CORE).read_bytes() == img[:3 * 1448]  # nothing written past the cap


def test_max_dump_size_zero_refuses_everything(tmp_path):
    c, img = clean_dump(size=4 * 1448)
    (rec,) = _extract(c.items, tmp_path, max_dump_size=0).records
    assert not rec.complete and rec.vmcore.total == 0
    assert rec.vmcore_missing() == [(0, len(img))]


def test_refused_data_without_a_kdh_still_counts_as_missing(tmp_path):
    c = Conversation()
    c.herald()
    c.data(image(4 * 1448))
    c.finished()
    (rec,) = _extract(c.items, tmp_path, max_dump_size=1448).records
    assert rec.vmcore_missing() == [(1448, 4 * 1448)]


def test_a_capture_cut_mid_dump_is_named_in_the_status(tmp_path):
    from analyzer.datagram import Notice
    c = Conversation()
    c.herald()
    c.data(image(3 * 1448))
    cut = Notice("truncated-capture", len(c.items) + 1, "the file ends inside a record")
    (rec,) = _extract([*c.items, cut], tmp_path).records
    assert rec.cut_frame == len(c.items) + 1
    info = (tmp_path / INFO).read_bytes()
    assert info.endswith(b"Dump incomplete: the capture ends mid-dump, at frame %d\n"
                         % rec.cut_frame)
    from analyzer.report import summary_line
    assert f"capture cut at frame {rec.cut_frame}" in summary_line(rec)


def test_a_client_that_stops_still_timed_out(tmp_path):
    c = Conversation()
    c.herald()
    c.data(image(2 * 1448))
    _extract(c.items, tmp_path)
    assert (tmp_path / INFO).read_bytes().endswith(b"Dump incomplete: client timed out\n")


def test_leftover_part_files_are_named_and_left_alone(tmp_path):
    (tmp_path / "crash/web1").mkdir(parents=True)
    left = tmp_path / "crash/web1/vmcore.192.0.2.7.0.part"
    left.write_bytes(b"old")
    c, img = clean_dump(size=2 * 1448)
    a = _extract(c.items, tmp_path)
    (note,) = [x for x in a.recovery.capture_anomalies if x["kind"] == "part-files-found"]
    assert "crash/web1/vmcore.192.0.2.7.0.part" in note["detail"]
    assert left.read_bytes() == b"old"
    (rec,) = a.records
    assert rec.files == ["crash/web1/info.192.0.2.7.1", "crash/web1/vmcore.192.0.2.7.1"]
    assert (tmp_path / rec.files[1]).read_bytes() == img


def test_a_clean_output_directory_gives_no_leftover_notice(tmp_path):
    c, _img = clean_dump(size=1448)
    a = _extract(c.items, tmp_path)
    assert not a.recovery.capture_anomalies


def test_the_bytes_a_cut_frame_lost_are_missing_even_without_a_kdh(tmp_path):
    c = Conversation()
    c.herald()
    img = image(3 * 1448)
    for off in range(0, len(img), 1448):
        c.send(MsgType.VMCORE, offset=off, payload=img[off:off + 1448])
    last = c.items[-1]
    c.items[-1] = last._replace(payload=last.payload[:-83], missing=83)
    (rec,) = _extract(c.items, tmp_path).records
    assert rec.vmcore.total == len(img) - 83
    assert rec.vmcore_length == len(img)  # what the client sent, as the audit counts it
    assert rec.vmcore_missing() == [(len(img) - 83, len(img))]


def test_the_clean_sample_with_a_small_max_dump_size_is_incomplete():
    from pathlib import Path

    from analyzer.exits import EXIT_INCOMPLETE
    from analyzer.pipeline import run_analysis
    sample = Path(__file__).resolve().parents[2] / "samples/clean-13x.pcap"
    for limit in (100 << 10, 0):
        _a, report, code = run_analysis((str(sample),), None, limit)
        (s,) = report["sessions"]
        assert code == EXIT_INCOMPLETE and s["status"] == "incomplete"
        assert s["vmcore"]["length"] == 262144
        assert s["vmcore"]["missing"][-1][1] == 262144
        assert s["vmcore"]["received"] <= limit


def test_a_cut_in_the_second_of_two_files_names_that_file_and_its_own_frame(tmp_path):
    from pathlib import Path

    from analyzer.pipeline import run_analysis
    from analyzer.report import summary_line
    sample = Path(__file__).resolve().parents[2] / "samples/clean-13x.pcap"
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(sample.read_bytes()[:20000])  # the record after frame 14 is cut
    out = tmp_path / "out"
    analysis, report, _code = run_analysis((str(sample), str(cut)), str(out), 1 << 40)
    first, second = analysis.records
    assert second.cut_frame > report["captures"][0]["frames"]  # run-wide, in the second file
    assert second.frames.label(second.cut_frame) == f"15 of {cut}"
    assert summary_line(second).count(f"capture cut at frame 15 of {cut}") == 1
    info = out / second.files[0]
    assert info.read_bytes().endswith(
        b"Dump incomplete: the capture ends mid-dump, at frame 15 of %s\n" % bytes(cut))
    assert "capture cut" not in summary_line(first)
    from analyzer.jsonlines import JsonLines
    lines = JsonLines(str(tmp_path / "events.jsonl"))
    lines.dump(second)
    lines.close()
    event = json.loads((tmp_path / "events.jsonl").read_text())
    assert (event["file"], event["first_frame"]) == (str(cut), 1)  # its own file's frame 1
