"""An exact set of half-open integer intervals [start, end).

Used for byte coverage of dump files and for sets of sequence numbers. Dumps arrive almost
in order, so adding at or past the end is O(1); anything else is a bisect and a splice.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Iterator


class IntervalSet:
    __slots__ = ("_starts", "_ends", "total")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.total = 0  # number of integers covered

    def add(self, start: int, end: int) -> int:
        """Cover [start, end); returns how many integers were newly covered."""
        if end <= start:
            return 0
        starts, ends = self._starts, self._ends
        if not ends or start > ends[-1]:
            starts.append(start)
            ends.append(end)
            self.total += end - start
            return end - start
        if start == ends[-1]:
            ends[-1] = end
            self.total += end - start
            return end - start
        # General case: merge every interval touching [start, end].
        lo = bisect_left(ends, start)
        hi = bisect_right(starts, end)
        if lo == hi:
            starts.insert(lo, start)
            ends.insert(lo, end)
            self.total += end - start
            return end - start
        new_start = min(start, starts[lo])
        new_end = max(end, ends[hi - 1])
        before = sum(ends[lo:hi]) - sum(starts[lo:hi])
        starts[lo:hi] = [new_start]
        ends[lo:hi] = [new_end]
        added = (new_end - new_start) - before
        self.total += added
        return added

    def append_point(self, value: int) -> None:
        """Add one integer at or past the end (the caller checked ``value >= self.max``)."""
        ends = self._ends
        if ends and value == ends[-1]:
            ends[-1] = value + 1
        else:
            self._starts.append(value)
            ends.append(value + 1)
        self.total += 1

    def add_past(self, value: int) -> bool:
        """Add one integer at or past the end of a non-empty set; False (and nothing
        added) when the set is empty or ``value`` is below its end."""
        ends = self._ends
        if not ends:
            return False
        top = ends[-1]
        if value == top:
            ends[-1] = value + 1
        elif value > top:
            self._starts.append(value)
            ends.append(value + 1)
        else:
            return False
        self.total += 1
        return True

    def contains(self, value: int) -> bool:
        i = bisect_right(self._starts, value) - 1
        return i >= 0 and value < self._ends[i]

    def covers(self, start: int, end: int) -> bool:
        """True when every integer of [start, end) is in the set."""
        if end <= start:
            return True
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and end <= self._ends[i]

    def overlap(self, start: int, end: int) -> int:
        """How many integers of [start, end) are already in the set."""
        starts, ends = self._starts, self._ends
        i = max(0, bisect_right(starts, start) - 1)
        n = 0
        while i < len(starts) and starts[i] < end:
            n += max(0, min(end, ends[i]) - max(start, starts[i]))
            i += 1
        return n

    def gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The sub-ranges of [start, end) not in the set, in order."""
        out: list[tuple[int, int]] = []
        pos = start
        i = max(0, bisect_right(self._starts, start) - 1)
        starts, ends = self._starts, self._ends
        while pos < end and i < len(starts):
            if ends[i] <= pos:
                i += 1
                continue
            if starts[i] >= end:
                break
            if starts[i] > pos:
                out.append((pos, starts[i]))
            pos = max(pos, ends[i])
            i += 1
        if pos < end:
            out.append((pos, end))
        return out

    @property
    def max(self) -> int:
        """One past the highest covered integer (0 when empty)."""
        return self._ends[-1] if self._ends else 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends)

    def __len__(self) -> int:
        return len(self._starts)

    def __repr__(self) -> str:
        return f"IntervalSet({list(self)})"
