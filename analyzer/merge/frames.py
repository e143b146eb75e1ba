"""Frame references of a ``--merge`` run: each union frame is the file and frame (as
Wireshark numbers them) of the copy the union kept, in every part of the report (session
frames, anomalies and their details, the audit object and its texts).

The union numbers its datagrams on from 1 for the core. It mostly keeps the copies of one
view (the one nearest the server), whose frames then follow the union's one for one; so the
map is kept as runs (union frame where a run starts, its view, view frame minus union
frame), which grow with the places the views differ, not with the dump, and are capped.
"""
from __future__ import annotations

import re
from array import array
from bisect import bisect_right

from analyzer.framemap import FRAME_REFERENCE, FrameMap, frame_label

MAX_RUNS = 1 << 20  # 17 bytes each; past them a union frame is no longer placed

# a reference already naming its file ("frame 17 of a.pcap", as view-level texts write them)
_PLACED = re.compile(r" of ")


class UnionFrames(FrameMap):
    """Union frame -> (file, frame in that file), filled as the union hands frames out."""

    def __init__(self, views):
        super().__init__([])
        self.views = views
        self._starts = array("q")
        self._view = array("B")
        self._delta = array("q")
        self._next = 1  # the union frame a run's next frame would be
        self.placed_to = 0  # the last union frame placed

    def add(self, frame: int, view: int, view_frame: int) -> None:
        delta = view_frame - frame
        if frame == self._next and self._view and self._view[-1] == view \
                and self._delta[-1] == delta:
            self._next = frame + 1
            self.placed_to = frame
            return
        if len(self._starts) >= MAX_RUNS:
            return
        self._starts.append(frame)
        self._view.append(view)
        self._delta.append(delta)
        self._next = frame + 1
        self.placed_to = frame

    @property
    def several(self) -> bool:
        return True  # several captures: text always names the file

    def locate(self, frame: int) -> tuple[str | None, int | None]:
        """``(path, frame in it)``; ``(None, 0)`` for no frame, ``(None, None)`` for a union
        frame past the capped map (never a union number posing as a file's frame)."""
        if frame is None or frame <= 0:
            return None, frame
        i = bisect_right(self._starts, frame) - 1
        if i < 0 or frame > self.placed_to:
            return None, None
        return self.views[self._view[i]].locate(frame + self._delta[i])

    def label(self, frame: int) -> str:
        path, n = self.locate(frame)
        return frame_label(n, path, True) if n is not None else f"{frame} of the union"

    def retext(self, text: str) -> str:
        """Union frames named in free text given as file and frame; references already
        placed in a file (a view's own, ``frame 17 of a.pcap``) are left as they are."""
        def one(m):
            if _PLACED.match(text, m.end()):
                return m[0]
            return m[1] + ", ".join(self.label(int(n)) for n in m[2].split(", "))
        return FRAME_REFERENCE.sub(one, text)
