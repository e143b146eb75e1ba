"""Run-wide frame numbers as Wireshark numbers them: the file, and the frame within it.

The readers number frames on across the files of a run (a ring buffer read as one capture);
Wireshark numbers them from 1 in each file. Every output that names a frame goes through
this one mapping, so a frame reference can always be found in Wireshark.
"""
from __future__ import annotations

import re
from bisect import bisect_left

# The one way free text names frames: "frame N", "frames N, M, ..." or "record N" (a capture
# reader's record: a frame, or the cut one after the last), all with run-wide numbers, as the
# core, the audit and the readers write their details.
FRAME_REFERENCE = re.compile(r"\b((?:frame|record)s? )(\d+(?:, \d+)*)\b")


def frame_label(frame: int, path: str | None, several: bool) -> str:
    """How text names a frame: ``"27"``, or ``"27 of b.pcapng"`` when the run read several
    files (a one-file run's text stays as it always was)."""
    return f"{frame} of {path}" if several and path is not None else str(frame)


class FrameMap:
    """Maps a run-wide frame number to ``(file, frame in that file)``.

    ``captures`` is the reader's per-file list (``{"path", "frames"}`` dicts), or an object
    whose ``captures`` attribute is that list, read at each call: while a run is going, the
    last file read so far takes every frame past the files before it.
    """

    def __init__(self, captures):
        self._source = captures
        self._key = None  # (number of files, frames of all but the last) the cache is for
        self._ends: list[int] = []  # run-wide number of each file's last frame
        self._paths: list[str] = []

    def _captures(self) -> list[dict]:
        caps = getattr(self._source, "captures", self._source)
        return [c for c in caps if c.get("frames") or "error" not in c]

    def _refresh(self) -> None:
        caps = self._captures()
        key = (len(caps), sum(c["frames"] for c in caps[:-1]))
        if key == self._key:
            return
        self._key = key
        self._ends, self._paths, end = [], [], 0
        for c in caps:
            end += c["frames"]
            self._ends.append(end)
            self._paths.append(c["path"])

    @property
    def several(self) -> bool:
        """True when the run read more than one file (frame references then name it)."""
        self._refresh()
        return len(self._paths) > 1

    def locate(self, frame: int) -> tuple[str | None, int]:
        """``(path, frame within that file)``; frame 0 (no frame) gives ``(None, 0)``."""
        self._refresh()
        if frame <= 0 or not self._paths:
            return None, frame
        i = min(bisect_left(self._ends, frame), len(self._ends) - 1)
        start = self._ends[i - 1] if i else 0
        return self._paths[i], frame - start

    def label(self, frame: int) -> str:
        """``"27"`` in a one-file run, ``"27 of b.pcapng"`` when several files were read."""
        path, n = self.locate(frame)
        return frame_label(n, path, self.several)

    def retext(self, text: str) -> str:
        """Free text with each frame it names (see ``FRAME_REFERENCE``) given as
        :meth:`label` gives it: unchanged in a one-file run. Apply it once to a text."""
        if not self.several:
            return text
        return FRAME_REFERENCE.sub(
            lambda m: m[1] + ", ".join(self.label(int(n)) for n in m[2].split(", ")), text)

    def renumber(self, obj):
        """A copy of a JSON object whose frame references (``frame``, ``*_frame``,
        ``*_frames``) are numbered within their file, with that file beside each one
        (``file``, ``*_frame_file``, ``*_frame_files``); frames its texts name are
        rewritten by :meth:`retext`."""
        if isinstance(obj, str):
            return self.retext(obj)
        if isinstance(obj, list):
            return [self.renumber(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        out = {}
        for key, value in obj.items():
            if (key == "frame" or key.endswith("_frame")) and type(value) is int:
                path, out[key] = self.locate(value)
                out.setdefault("file" if key == "frame" else f"{key}_file", path)
            elif key.endswith("_frames") and isinstance(value, list) and \
                    all(type(v) is int for v in value):
                where = [self.locate(v) for v in value]
                out[key] = [n for _, n in where]
                out[f"{key}_files"] = [p for p, _ in where]
            else:
                out[key] = self.renumber(value)
        return out
