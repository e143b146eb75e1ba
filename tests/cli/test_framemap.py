"""Frame numbers across files, and the frame-range parser, against brute force."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import pytest

from analyzer.audit.messages import parse_frames
from analyzer.framemap import FrameMap

counts = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6)


def _numbered(frames: list[int]) -> list[tuple[str, int]]:
    """Every run-wide frame, in order, as (file, frame in file): what Wireshark shows."""
    return [(f"f{i}.pcap", n) for i, count in enumerate(frames) for n in range(1, count + 1)]


@given(counts)
def test_every_run_wide_frame_maps_to_its_file_and_wireshark_number(frames):
    caps = [{"path": f"f{i}.pcap", "frames": n, "truncated": False}
            for i, n in enumerate(frames)]
    fm = FrameMap(caps)
    assert [fm.locate(k) for k in range(1, sum(frames) + 1)] == _numbered(frames)
    assert fm.locate(0) == (None, 0)
    assert fm.several == (len(frames) > 1)


@given(counts)
def test_unreadable_files_take_no_frame_numbers(frames):
    caps = []
    for i, n in enumerate(frames):
        caps.append({"path": f"bad{i}", "frames": 0, "truncated": False, "error": "junk"})
        caps.append({"path": f"f{i}.pcap", "frames": n, "truncated": False})
    fm = FrameMap(caps)
    assert [fm.locate(k) for k in range(1, sum(frames) + 1)] == _numbered(frames)


def test_while_a_run_goes_the_last_file_takes_every_later_frame():
    class Reader:
        captures = [{"path": "a", "frames": 10}, {"path": "b", "frames": 0}]
        paths = ["a", "b"]

    fm = FrameMap(Reader)
    assert fm.locate(10) == ("a", 10) and fm.locate(11) == ("b", 1)
    assert fm.locate(500) == ("b", 490)  # b's count is not final yet
    Reader.captures = Reader.captures + [{"path": "c", "frames": 0}]
    Reader.captures[1] = {"path": "b", "frames": 7}
    assert fm.locate(18) == ("c", 1) and fm.label(18) == "1 of c"


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**9))
def test_a_frame_range_is_both_ends_inclusive_or_refused(a, b):
    if b < a:
        with pytest.raises(ValueError, match="ends before it starts"):
            parse_frames(f"{a}-{b}")
    else:
        assert parse_frames(f"{a}-{b}") == (a, b)
    assert parse_frames(f"{a}-") == (a, None)
    assert parse_frames(f"-{b}") == (1, b)
    assert parse_frames(str(a)) == (a, a)


@given(st.text(max_size=12))
def test_any_text_is_a_frame_range_or_a_value_error(text):
    try:
        lo, hi = parse_frames(text)
    except ValueError as exc:
        assert repr(text) in str(exc)
        return
    assert lo >= 1 and (hi is None or hi >= lo)


def test_renumber_names_the_file_of_every_frame_reference_in_a_json_object():
    fm = FrameMap([{"path": "a", "frames": 10}, {"path": "b", "frames": 10}])
    audit = {"herald": {"frame": 12, "time": 1.5}, "worst": [{"start_frame": 3, "rounds": 2}],
             "acks": {"for_unseen_messages_frames": [9, 11], "total": 4},
             "finished": None, "ok": True, "last_ack_frame": None}
    assert fm.renumber(audit) == {
        "herald": {"frame": 2, "file": "b", "time": 1.5},
        "worst": [{"start_frame": 3, "start_frame_file": "a", "rounds": 2}],
        "acks": {"for_unseen_messages_frames": [9, 1],
                 "for_unseen_messages_frames_files": ["a", "b"], "total": 4},
        "finished": None, "ok": True, "last_ack_frame": None}
    assert audit["herald"] == {"frame": 12, "time": 1.5}  # a copy: the input is unchanged


def test_text_names_each_frame_with_its_file_when_several_files_are_read():
    fm = FrameMap([{"path": "a", "frames": 10}, {"path": "b", "frames": 10}])
    assert fm.retext("retransmission of frame 12") == "retransmission of frame 2 of b"
    assert fm.retext("e.g. frames 3, 12, 20 ...") == "e.g. frames 3 of a, 2 of b, 10 of b ..."
    assert fm.retext("VMCORE seq 4 (frame 11), ACK in frame 9") == \
        "VMCORE seq 4 (frame 1 of b), ACK in frame 9 of a"
    assert fm.retext("capture cut at frame 15, mid-dump") == "capture cut at frame 5 of b, mid-dump"
    assert fm.retext("record 12 claims 9 bytes, after frame 11") == \
        "record 2 of b claims 9 bytes, after frame 1 of b"
    for text in ("42-byte frame headers", "frame", "recorded 15", "frameset 3", "frames x"):
        assert fm.retext(text) == text
    assert fm.renumber({"checks": [{"detail": "frame 11"}]}) == \
        {"checks": [{"detail": "frame 1 of b"}]}


@given(st.text(max_size=40), counts)
def test_text_of_a_one_file_run_is_never_changed(text, frames):
    fm = FrameMap([{"path": "only.pcap", "frames": frames[0]}])
    assert fm.retext(text) == text
    assert fm.retext(f"{text} frame 3 {text}") == f"{text} frame 3 {text}"


def test_report_anomaly_details_name_the_file_of_each_frame(tmp_path):
    import json
    import struct
    from pathlib import Path

    from click.testing import CliRunner

    from analyzer.cli import cli
    samples = Path(__file__).resolve().parents[2] / "samples"
    data = bytearray((samples / "clean-13x.pcap").read_bytes())
    pos = 24
    for _ in range(10):  # the 11th record claims more bytes than any capture holds
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    struct.pack_into("<I", data, pos + 8, 0x7FFFFFFF)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    out = tmp_path / "r.json"
    CliRunner().invoke(cli, ["summary", str(samples / "multi-client.pcapng"), str(bad),
                             "--json", str(out), "-q"])
    report = json.loads(out.read_text())
    (detail,) = [a["detail"] for s in report["sessions"] for a in s["anomalies"]
                 if a["kind"] == "truncated-capture"]
    assert detail.startswith(f"record 11 of {bad} claims 2147483647 captured bytes")
    assert f"after frame 10 of {bad};" in detail
