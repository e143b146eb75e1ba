"""Seqnos the capture never showed: remembered one by one up to a bound, then only counted,
so a capture that misses millions of packets costs no more memory than one that misses a few."""
from __future__ import annotations

KEEP_HOLES = 4096  # seqnos not (yet) captured, remembered one by one


class SeqnoHoles:
    """Seqnos skipped by the highest one captured, until a late copy fills them."""

    __slots__ = ("holes", "lost")

    def __init__(self) -> None:
        self.holes: dict[int, int] = {}  # seqno never captured -> frame after the jump
        self.lost = 0  # not remembered one by one (too many)

    def jump(self, first: int, stop: int, frame: int) -> None:
        """Seqnos first..stop-1 were skipped (at ``frame``)."""
        holes = self.holes
        if stop - first > KEEP_HOLES:
            self.lost += stop - first
            return
        for s in range(first, stop):
            if len(holes) >= KEEP_HOLES:
                holes.pop(next(iter(holes)))
                self.lost += 1
            holes[s] = frame

    def fill(self, seq: int) -> None:
        """A late first copy of ``seq``: one hole fewer."""
        if self.holes.pop(seq, None) is None and self.lost:
            self.lost -= 1

    @property
    def count(self) -> int:
        return len(self.holes) + self.lost

    def ranges(self, limit: int) -> list[tuple[int, int]]:
        """Seqno ranges never captured (of those remembered one by one), lowest first."""
        out: list[list[int]] = []
        for s in sorted(self.holes):
            if out and out[-1][1] == s - 1:
                out[-1][1] = s
            elif len(out) < limit:
                out.append([s, s])
            else:
                break
        return [(a, b) for a, b in out]
