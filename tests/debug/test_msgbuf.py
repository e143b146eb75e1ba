"""The message buffer ring as text: the write position from the "Dumping" line, wrapped and
unwrapped, missing bytes marked and never taken for text or NULs."""
from __future__ import annotations

from hypothesis import example, given, settings, strategies as st

from analyzer.debug.msgbuf import LOST, read_msgbuf, unroll
from tests.support.dump_builders import console_ring

SIZE = 4096


def test_an_unwrapped_ring_is_its_text_from_offset_0():
    ring, text = console_ring(SIZE, wrapped=False)
    mb = read_msgbuf(ring, [])
    assert mb["text"] == text and mb["missing"] == [] and mb["_problems"] == []
    assert mb["panic"] == "page fault"
    assert mb["version_line"].startswith("FreeBSD 14.1-RELEASE")


def test_a_wrapped_ring_starts_right_after_the_write_position():
    ring, text = console_ring(SIZE, wrapped=True, filler_lines=80)
    assert not ring.startswith(text[:40].encode())  # it really is rotated
    mb = read_msgbuf(ring, [])
    assert mb["text"] == text and mb["text"].endswith("Dumping 812 out of 16335 MB:")
    assert mb["panic"] == "page fault"
    assert mb["version_line"] is None  # overwritten by newer lines: never guessed


def test_a_dumping_line_across_the_end_of_the_ring_is_found():
    ring, text = console_ring(SIZE, wrapped=True, filler_lines=80)
    shift = text.encode().index(b"Dumping") + 5 - len(text)  # end of ring inside the line
    raw = text.encode()
    rotated = raw[shift:] + raw[:shift]
    assert read_msgbuf(rotated, [])["text"] == text


def _expected(ring: bytes, wrapped_at: int | None, hole: tuple[int, int]) -> str:
    """The text with the hole's bytes as LOST, in the builder's own order."""
    chars = [LOST if hole[0] <= i < hole[1] else chr(c) for i, c in enumerate(ring)]
    if wrapped_at is None:
        used = len(ring.rstrip(b"\0"))
        end = max(used, hole[1] if hole[0] <= used else 0)
        return "".join(chars[:end])
    return "".join(chars[wrapped_at:] + chars[:wrapped_at])


@settings(max_examples=80, deadline=None)
@given(st.booleans(), st.integers(0, SIZE - 1), st.integers(1, 600))
@example(False, 530, 1)  # a hole starting right at the write position of an unwrapped ring
def test_missing_bytes_are_marked_and_everything_else_is_the_text(wrapped, start, n):
    ring, text = console_ring(SIZE, wrapped=wrapped, filler_lines=80 if wrapped else 0)
    hole = (start, min(SIZE, start + n))
    holed = ring[:hole[0]] + bytes(hole[1] - hole[0]) + ring[hole[1]:]
    got, lost, problems = unroll(holed, [hole])
    for a, b in lost:
        assert got[a:b] == LOST * (b - a)
    assert sum(b - a for a, b in lost) == got.count(LOST)
    if wrapped and "Dumping 812 out of 16335 MB:" not in got:
        assert problems  # the write position is not guessed
        return
    pos = SIZE // 3 if wrapped else None
    if not wrapped and hole[0] >= len(text):
        # the intact "Dumping" line ends the text: only never-written NULs were lost
        assert got == text
    else:
        assert got == _expected(ring, pos, hole)


def test_a_lost_panic_line_is_not_reported():
    ring, text = console_ring(SIZE, wrapped=False)
    at = text.index("panic: ")
    mb = read_msgbuf(ring[:at + 3] + bytes(5) + ring[at + 8:], [(at + 3, at + 8)])
    assert mb["panic"] is None and mb["missing"] == [[at + 3, at + 8]]


def test_an_unwrapped_ring_with_a_lost_tail_is_not_taken_for_nuls():
    ring, text = console_ring(SIZE, wrapped=False)
    end = len(text)
    mb = read_msgbuf(ring, [(end + 10, SIZE)])  # captured NULs then a hole: still unwrapped
    assert mb["text"] == text
    lost_dumping = ring[:end - 10] + bytes(SIZE - end + 10)
    mb = read_msgbuf(lost_dumping, [(end - 10, SIZE)])
    assert "write position not found" in mb["_problems"][0]
    assert mb["text"].startswith(text[:end - 10]) and mb["missing"] == [[end - 10, SIZE]]
