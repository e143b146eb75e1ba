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
