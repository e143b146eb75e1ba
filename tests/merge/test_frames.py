"""The merged run's frame map: every union frame back to its view's file and frame."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analyzer.merge import frames as union_frames
from analyzer.merge.frames import UnionFrames


class _View:
    def __init__(self, name):
        self.name = name

    def locate(self, frame):
        return self.name, frame


# each union frame taken from view 0 or 1, at that view's next frame or some frames on
steps = st.lists(st.tuples(st.integers(0, 1), st.integers(1, 3)), max_size=300)


def _fill(runs, picks):
    want, at = {}, [0, 0]
    for u, (view, step) in enumerate(picks, 1):
        at[view] += step
        runs.add(u, view, at[view])
        want[u] = (f"v{view}", at[view])
    return want


@given(steps)
def test_each_union_frame_is_the_frame_of_the_view_it_came_from(picks):
    runs = UnionFrames([_View("v0"), _View("v1")])
    want = _fill(runs, picks)
    assert {u: runs.locate(u) for u in want} == want
    assert runs.locate(0) == (None, 0)
    assert runs.locate(len(picks) + 1) == (None, None)


def test_past_the_capped_map_a_frame_is_not_placed_rather_than_misplaced(monkeypatch):
    monkeypatch.setattr(union_frames, "MAX_RUNS", 2)
    runs = UnionFrames([_View("v0"), _View("v1")])
    _fill(runs, [(0, 1), (0, 1), (1, 1), (0, 5), (0, 1)])
    assert [runs.locate(u) for u in (1, 2, 3, 4)] == [
        ("v0", 1), ("v0", 2), ("v1", 1), (None, None)]
    assert runs.label(4) == "4 of the union"


def test_text_names_union_frames_by_file_and_leaves_placed_ones():
    runs = UnionFrames([_View("a.pcap"), _View("b.pcap")])
    _fill(runs, [(0, 1), (1, 1), (0, 1)])
    assert runs.retext("ACK (frame 2) after frames 1, 3; frame 7 of c.pcap differs") == \
        "ACK (frame 1 of b.pcap) after frames 1 of a.pcap, 2 of a.pcap; " \
        "frame 7 of c.pcap differs"
