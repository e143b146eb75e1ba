"""Each view's clock against the reference view's, and the views' order along the path.

Copies of the same messages are paired across views: same key, as many copies of it in
both (so the n-th copy is the n-th, whichever resends a view missed), equal bytes. A client
message reaches a view nearer the server later, an ACK earlier, so with ``m_data`` and
``m_ack`` the medians of the time differences of each kind, the clock offset is their mean
(the path delay cancels, as in NTP) and half their difference is the one-way delay between
the two points: positive when the view is further toward the server.

The pairs come from the whole of each view, read once before the union: a sample of keys
chosen by their hash (the same in every view), halved whenever it outgrows ``SAMPLE``, so
memory stays bounded and the pairs spread over the whole capture. Over time bins of pairs,
a straight line fitted through the bins' offsets follows clocks that drift apart.
"""
from __future__ import annotations

from statistics import median

from analyzer.merge.views import View, match_key

SAMPLE = 20_000  # keys kept per view
MIN_PAIRS = 3
BIN_PAIRS = 200  # pairs per time bin at most
BIN_NS = 10_000_000_000  # and at most this wide, once it has BIN_MIN
BIN_MIN = 50
IDLE_NS = 60_000_000_000  # a bin ends at a pause this long (clocks drift meanwhile)
OUTLIER_NS = 250_000_000  # a pair this far from its bin's median is a mismatched copy
MIN_SPAN_NS = 60_000_000_000  # pairs this far apart before a drift is fitted


class Clock:
    """A view's clock minus the reference's: ``a + b * (t - tz)`` ns at reference time t."""

    def __init__(self, a: float = 0.0, b: float = 0.0, tz: int = 0):
        self.a, self.b, self.tz = float(a), float(b), tz

    def offset_at(self, t_ref: int) -> float:
        return self.a + self.b * (t_ref - self.tz)

    def to_ref(self, ts: int) -> int:
        """A time of this view's clock on the reference's."""
        return int((ts - self.a + self.b * self.tz) / (1 + self.b))


def _sample(view: View) -> dict:
    """key -> [(time, payload hash) of each copy] for the view's sampled keys."""
    seen: dict = {}
    level = 0  # keys kept: hash(key) divisible by 2**level
    mask = 0
    for d in view.reader:
        key = match_key(d)
        if key is None or hash(key) & mask:
            continue
        copies = seen.get(key)
        if copies is None:
            copies = seen[key] = []
            if len(seen) > SAMPLE:
                level += 1
                mask = (1 << level) - 1
                seen = {k: v for k, v in seen.items() if not hash(k) & mask}
        copies.append((d.ts, hash(getattr(d, "payload", b""))))
    return seen


def _pairs(ref: dict, other: dict) -> list[tuple[int, int, bool]]:
    """(reference time, other's time minus it, is an ACK) of the copies both hold alike."""
    out = []
    for key, copies in other.items():
        mine = ref.get(key)
        if mine is None or len(mine) != len(copies):
            continue
        ack = key[0] == 1
        for (ts, h), (t0, h0) in zip(copies, mine):
            if h == h0:
                out.append((t0, ts - t0, ack))
    return out


def _medians(pairs: list) -> tuple[float | None, float | None]:
    """The medians of the differences of client messages and of ACKs (None: too few)."""
    data = [d for _t, d, ack in pairs if not ack]
    acks = [d for _t, d, ack in pairs if ack]
    return (median(data) if len(data) >= MIN_PAIRS else None,
            median(acks) if len(acks) >= MIN_PAIRS else None)


def _bins(pairs: list):
    """Runs of time-sorted pairs: BIN_PAIRS long, or BIN_NS wide once BIN_MIN long, never
    across a pause of IDLE_NS; each without its outliers (a copy paired with another copy
    of its seqno a poll timeout away, where the views missed different ones)."""
    start = 0
    for i, (t, _d, _a) in enumerate(pairs):
        n = i - start
        if n and (n >= BIN_PAIRS or t - pairs[i - 1][0] > IDLE_NS
                  or (t - pairs[start][0] > BIN_NS and n >= BIN_MIN)):
            yield _inliers(pairs[start:i])
            start = i
    if start < len(pairs):
        yield _inliers(pairs[start:])


def _inliers(chunk: list) -> list:
    mid = median(d for _t, d, _a in chunk)
    return [p for p in chunk if abs(p[1] - mid) < OUTLIER_NS]


def fit(pairs: list) -> tuple[Clock, float] | None:
    """The clock (offset, and drift over a long enough span) and the one-way delay; None
    with too few pairs."""
    if len(pairs) < MIN_PAIRS:
        return None
    pairs = sorted(pairs)
    bins = [(chunk[len(chunk) // 2][0], len(chunk), *_medians(chunk))
            for chunk in _bins(pairs) if chunk]
    delays = [(d - a) / 2 for _t, _n, d, a in bins if d is not None and a is not None]
    if not delays:
        d, a = _medians(pairs)
        delays = [(d - a) / 2] if d is not None and a is not None else [0.0]
    delay = median(delays)
    pts = [(t, (d + a) / 2 if d is not None and a is not None else
            d - delay if d is not None else a + delay, n)
           for t, n, d, a in bins if d is not None or a is not None]
    if not pts:  # too few of either kind: the delay stays unknown
        return Clock(median(x for _t, x, _k in pairs), 0.0, pairs[0][0]), 0.0
    clock = _line(pts)
    # a bin of copies mismatched with other copies of their seqnos is off by a timeout
    kept = [p for p in pts if abs(p[1] - clock.offset_at(p[0])) < OUTLIER_NS / 2]
    return (_line(kept) if kept and len(kept) < len(pts) else clock), delay


def _line(pts: list) -> Clock:
    """The bins' offsets (time, offset, pairs) weighted by their pairs: a straight line
    when they span MIN_SPAN_NS, else their weighted median."""
    tz = pts[0][0]
    total = sum(w for _t, _o, w in pts)
    if pts[-1][0] - tz >= MIN_SPAN_NS:
        xs = [((t - tz) / 1e9, o, w) for t, o, w in pts]
        mx = sum(x * w for x, _o, w in xs) / total
        my = sum(o * w for _x, o, w in xs) / total
        sxx = sum(w * (x - mx) ** 2 for x, _o, w in xs)
        slope = sum(w * (x - mx) * (o - my) for x, o, w in xs) / sxx  # ns per s
        return Clock(my - slope * mx, slope / 1e9, tz)
    half, acc = total / 2, 0
    for _t, o, w in sorted(pts, key=lambda p: p[1]):
        acc += w
        if acc >= half:
            return Clock(o, 0.0, tz)
    return Clock(pts[-1][1], 0.0, tz)


def estimate(views: list[View]) -> list[str]:
    """Set ``clock`` and ``delay_ns`` of every view (the first is the reference). Returns
    the problems, one line each (a view with too few messages in common)."""
    samples = [_sample(v) for v in views]
    views[0].clock = Clock()
    problems = []
    for v, mine in zip(views[1:], samples[1:]):
        v.clock = None
        for ref_view, ref in zip(views, samples):  # the reference first, then any placed view
            if ref_view.index >= v.index:
                break
            got = fit(_pairs(ref, mine))
            if got is not None:
                clock, delay = got
                base = ref_view.clock
                v.clock = Clock(clock.a + base.offset_at(clock.tz), clock.b + base.b, clock.tz)
                v.delay_ns = ref_view.delay_ns + int(round(delay))
                break
        if v.clock is None:
            v.clock = Clock()
            problems.append(f"{v.name}: no messages in common with the other views; its "
                            f"clock is taken as the reference's")
    return problems


def path_order(views: list[View]) -> list[View]:
    """The views from the client's side to the server's side."""
    return sorted(views, key=lambda v: (v.delay_ns, v.index))
