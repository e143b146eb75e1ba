"""Run-wide frame numbers as Wireshark numbers them: the file, and the frame within it.

The readers number frames on across the files of a run (a ring buffer read as one capture);
Wireshark numbers them from 1 in each file. Every output that names a frame goes through
this one mapping, so a frame reference can always be found in Wireshark.
"""
from __future__ import annotations

from bisect import bisect_left


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
        return f"{n} of {path}" if path is not None and self.several else str(n)

    def renumber(self, obj):
        """A copy of a JSON object whose frame references (``frame``, ``*_frame``,
        ``*_frames``) are numbered within their file, with that file beside each one
        (``file``, ``*_frame_file``, ``*_frame_files``)."""
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
