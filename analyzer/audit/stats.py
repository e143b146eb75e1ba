"""Bounded-memory statistics: percentiles, top-N lists, decimated point series.

Everything here keeps a fixed amount of state however long the dump is, so the audit of a
100 GB capture needs no more memory than the audit of a 3-packet one.
"""
from __future__ import annotations

import heapq
import math
from bisect import bisect_left

EXACT_SAMPLES = 4096  # below this many samples, percentiles are exact
SUB_BITS = 6  # log histogram: 2**6 = 64 bins per octave
_SMALL = 1 << (SUB_BITS + 1)  # values below this have a bin of their own
_SUB_MASK = (1 << SUB_BITS) - 1
_FOLD_EVERY = 1024  # samples gathered before they are folded into the statistics


def _bin(v: int) -> int:
    """Bin of a positive integer: its octave and the next 6 bits (bins <= 1.6 % wide)."""
    if v < _SMALL:
        return v
    bl = v.bit_length()
    return (bl << SUB_BITS) | ((v >> (bl - SUB_BITS - 1)) & ((1 << SUB_BITS) - 1))


def _bin_centre(k: int) -> float:
    if k < _SMALL:
        return float(k)
    bl, sub = k >> SUB_BITS, k & ((1 << SUB_BITS) - 1)
    shift = bl - SUB_BITS - 1
    return (((1 << SUB_BITS) | sub) << shift) + (1 << shift) / 2


def _folded(name: str) -> property:
    """A statistic read after the waiting samples are folded in."""
    def get(self):
        self._fold()
        return getattr(self, name)
    return property(get)


class Distribution:
    """Samples in integer nanoseconds (or any positive integers).

    Exact percentiles while fewer than :data:`EXACT_SAMPLES` samples were seen; after that
    they come from a fixed-resolution log histogram (64 bins per octave, so a reported
    percentile is within 0.8 % of the true one). Min, max, count and sum are exact.
    Samples wait in a short list and are folded in a thousand at a time (one per ACK of a
    dump arrives: per-sample arithmetic cost more than the rest of the ACK's audit).
    """

    __slots__ = ("_count", "_total", "_min", "_max", "_exact", "bins", "pending")

    def __init__(self) -> None:
        self._count = 0
        self._total = 0
        self._min = 0
        self._max = 0
        self._exact: list[int] | None = []
        self.bins: dict[int, int] = {}
        self.pending: list[int] = []

    def add(self, v: int) -> None:
        pending = self.pending
        pending.append(v)
        if len(pending) >= _FOLD_EVERY:
            self._fold()

    def tidy(self) -> None:
        """Fold the waiting samples if there are many: for an owner that appends to
        ``pending`` itself (the list object never changes), now and then."""
        if len(self.pending) >= _FOLD_EVERY:
            self._fold()

    def _fold(self) -> None:
        vs = self.pending
        if not vs:
            return
        vs.sort()  # then each bin is one run, counted with a bisection
        if self._count == 0 or vs[0] < self._min:
            self._min = vs[0]
        if vs[-1] > self._max:
            self._max = vs[-1]
        self._count += len(vs)
        self._total += sum(vs)
        exact = self._exact
        if exact is not None:
            if len(exact) + len(vs) <= EXACT_SAMPLES:
                exact.extend(vs)
            else:
                self._exact = None
        bins = self.bins
        i, n = 0, len(vs)
        while i < n:
            v = vs[i]
            if v >= _SMALL:  # _bin(v), and where its bin ends
                bl = v.bit_length()
                shift = bl - SUB_BITS - 1
                top = v >> shift
                k, upper = (bl << SUB_BITS) | (top & _SUB_MASK), (top + 1) << shift
            elif v > 0:
                k, upper = v, v + 1
            else:
                k, upper = -1, 1
            j = bisect_left(vs, upper, i)
            bins[k] = bins.get(k, 0) + j - i
            i = j
        vs.clear()

    count = _folded("_count")
    total = _folded("_total")
    min = _folded("_min")
    max = _folded("_max")
    exact = _folded("_exact")  # every sample (list), or None past EXACT_SAMPLES

    @property
    def is_exact(self) -> bool:
        return self.exact is not None

    def percentile(self, p: float) -> int | None:
        """The p-th percentile (nearest rank), p in 0..100."""
        if not self.count:
            return None
        rank = max(1, math.ceil(p / 100 * self.count))
        if self.exact is not None:
            return sorted(self.exact)[rank - 1]
        seen = 0
        for k in sorted(self.bins):
            seen += self.bins[k]
            if seen >= rank:
                if k < 0:
                    return 0
                return min(max(int(_bin_centre(k)), self.min), self.max)
        return self.max

    def summary(self) -> dict:
        """min/median/p95/p99/max in seconds, plus how they were computed."""
        if not self.count:
            return {"count": 0}
        out = {"count": self.count, "min": self.min / 1e9}
        for name, p in (("median", 50), ("p95", 95), ("p99", 99)):
            out[name] = self.percentile(p) / 1e9
        out["max"] = self.max / 1e9
        out["mean"] = self.total / self.count / 1e9
        out["method"] = ("exact" if self.is_exact else
                         "log histogram, 64 bins per octave (within 0.8 %)")
        return out

    def histogram(self, edges_ns: list[int]) -> list[dict]:
        """Counts between the given edges (seconds in the output), from the fine bins."""
        self._fold()
        counts = [0] * (len(edges_ns) + 1)
        for k, n in self.bins.items():
            v = 0 if k < 0 else _bin_centre(k)
            i = 0
            while i < len(edges_ns) and v > edges_ns[i]:
                i += 1
            counts[i] += n
        out = []
        lo = 0.0
        for i, n in enumerate(counts):
            hi = edges_ns[i] / 1e9 if i < len(edges_ns) else None
            if n:
                out.append({"from": lo, "to": hi, "count": n})
            lo = hi if hi is not None else lo
        return out


def decade_edges(lo_ns: int, hi_ns: int) -> list[int]:
    """1-2-5 edges covering lo..hi (ns), for a readable histogram."""
    if lo_ns <= 0:
        lo_ns = 1
    edges = []
    e = 10 ** int(math.floor(math.log10(lo_ns)))
    while e <= hi_ns * 10:
        for m in (1, 2, 5):
            v = m * e
            if v > lo_ns and (not edges or edges[-1] < hi_ns):
                edges.append(v)
        e *= 10
    return edges


class TopN:
    """The n largest items by key; ties keep the earliest. Items are stored as given."""

    __slots__ = ("n", "heap", "seen")

    def __init__(self, n: int):
        self.n = n
        self.heap: list = []
        self.seen = 0

    def add(self, key, item) -> None:
        self.seen += 1
        entry = (key, -self.seen, item)
        if len(self.heap) < self.n:
            heapq.heappush(self.heap, entry)
        elif entry[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, entry)

    def items(self) -> list:
        return [e[2] for e in sorted(self.heap, key=lambda e: (e[0], e[1]), reverse=True)]


class Decimator:
    """(time, value) points reduced to per-time-bucket min and max.

    Buckets start 1 µs wide and double (merging neighbours) whenever more than
    ``max_buckets`` exist, so a 3-point series keeps every point and a 2-million-point one
    keeps at most 2 × ``max_buckets``, shaped like the original.
    """

    __slots__ = ("max_buckets", "t0", "width", "buckets", "_last_idx", "_last", "count")

    def __init__(self, max_buckets: int = 1500):
        self.max_buckets = max_buckets
        self.t0: int | None = None
        self.width = 1000
        self.buckets: dict[int, list] = {}
        self._last_idx = None
        self._last: list | None = None
        self.count = 0

    def add(self, t: int, v) -> None:
        self.count += 1
        if self.t0 is None:
            self.t0 = t
        idx = (t - self.t0) // self.width
        if idx == self._last_idx:
            b = self._last
            if v < b[0]:
                b[0], b[1] = v, t
            if v > b[2]:
                b[2], b[3] = v, t
            return
        b = self.buckets.get(idx)
        if b is None:
            b = self.buckets[idx] = [v, t, v, t]
            if len(self.buckets) > self.max_buckets:
                self._coarsen()
                idx = (t - self.t0) // self.width
                b = self.buckets[idx]
        else:
            if v < b[0]:
                b[0], b[1] = v, t
            if v > b[2]:
                b[2], b[3] = v, t
        self._last_idx, self._last = idx, b

    def _coarsen(self) -> None:
        while len(self.buckets) > self.max_buckets:
            self.width *= 2
            merged: dict[int, list] = {}
            for idx, b in self.buckets.items():
                m = merged.get(idx // 2)
                if m is None:
                    merged[idx // 2] = list(b)
                else:
                    if b[0] < m[0]:
                        m[0], m[1] = b[0], b[1]
                    if b[2] > m[2]:
                        m[2], m[3] = b[2], b[3]
            self.buckets = merged
        self._last_idx = self._last = None

    def points(self) -> list[tuple[int, object]]:
        """(time, value) pairs in time order: each bucket's min and max (once if equal)."""
        out = []
        for idx in sorted(self.buckets):
            vmin, tmin, vmax, tmax = self.buckets[idx]
            if tmin == tmax and vmin == vmax:
                out.append((tmin, vmin))
            elif tmin <= tmax:
                out += [(tmin, vmin), (tmax, vmax)]
            else:
                out += [(tmax, vmax), (tmin, vmin)]
        return out


class CappedPoints:
    """Every point up to ``cap``; past it, the rest go to a :class:`Decimator`."""

    __slots__ = ("cap", "points", "overflow")

    def __init__(self, cap: int = 20000):
        self.cap = cap
        self.points: list[tuple[int, object]] = []
        self.overflow: Decimator | None = None

    def add(self, t: int, v) -> None:
        if len(self.points) < self.cap:
            self.points.append((t, v))
        else:
            if self.overflow is None:
                self.overflow = Decimator()
            self.overflow.add(t, v)

    def all(self) -> list[tuple[int, object]]:
        return self.points + (self.overflow.points() if self.overflow else [])

    @property
    def dropped(self) -> int:
        return self.overflow.count if self.overflow else 0


class Sample:
    """How many times something happened, and the first ``keep`` of them as examples."""

    __slots__ = ("count", "items", "keep")

    def __init__(self, keep: int = 20) -> None:
        self.count = 0
        self.items: list = []
        self.keep = keep

    def add(self, item) -> None:
        self.count += 1
        if len(self.items) < self.keep:
            self.items.append(item)
