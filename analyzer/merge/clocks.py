"""Each view's clock offset from the reference view, and the views' order along the path.

The first copies of the same messages are paired across views (key, then the order of the
copies of that key; equal bytes confirm the pair). A client message reaches a view nearer
the server later, an ACK earlier, so with ``m_data`` and ``m_ack`` the medians of the time
differences of each kind, the clock offset is their mean (the path delay cancels, as in
NTP) and half their difference is the one-way delay between the two points: positive when
the view is further toward the server. Only a bounded prefix of each view is read.
"""
from __future__ import annotations

from itertools import islice
from statistics import median

from analyzer.merge.views import View, match_key

PREFIX = 20_000  # items read from the start of each view for the estimate
MIN_PAIRS = 3


def _prefix(view: View) -> dict:
    """(key, n-th copy) -> (time, payload hash) of the view's first PREFIX items."""
    seen: dict = {}
    count: dict = {}
    items = iter(view.reader)
    try:
        for d in islice(items, PREFIX):
            key = match_key(d)
            if key is None:
                continue
            n = count.get(key, 0)
            count[key] = n + 1
            seen[(key, n)] = (d.ts, hash(getattr(d, "payload", b"")))
    finally:
        close = getattr(items, "close", None)
        if close:
            close()
    return seen


def _medians(ref: dict, other: dict) -> tuple[float | None, float | None, int]:
    data, acks = [], []
    for k, (ts, h) in other.items():
        mine = ref.get(k)
        if mine is None or mine[1] != h:
            continue
        (data if k[0][0] == 0 else acks).append(ts - mine[0])
    m_data = median(data) if len(data) >= MIN_PAIRS else None
    m_ack = median(acks) if len(acks) >= MIN_PAIRS else None
    return m_data, m_ack, len(data) + len(acks)


def estimate(views: list[View]) -> list[str]:
    """Set ``offset_ns`` and ``delay_ns`` of every view (the first is the reference).
    Returns the problems, one line each (a view with too few messages in common)."""
    prefixes = [_prefix(v) for v in views]
    problems = []
    for v, pre in zip(views[1:], prefixes[1:]):
        best = None
        for ref_view, ref in zip(views, prefixes):  # the reference first, then any placed view
            if ref_view.index >= v.index:
                break
            m_data, m_ack, pairs = _medians(ref, pre)
            if pairs >= MIN_PAIRS and (m_data is not None or m_ack is not None):
                best = (ref_view, m_data, m_ack)
                break
        if best is None:
            problems.append(f"{v.name}: no messages in common with the other views in its "
                            f"first {PREFIX} datagrams; its clock is taken as the reference's")
            continue
        ref_view, m_data, m_ack = best
        if m_data is not None and m_ack is not None:
            offset, delay = (m_data + m_ack) / 2, (m_data - m_ack) / 2
        else:
            offset, delay = (m_data if m_data is not None else m_ack), 0.0
        v.offset_ns = ref_view.offset_ns + int(round(offset))
        v.delay_ns = ref_view.delay_ns + int(round(delay))
    return problems


def path_order(views: list[View]) -> list[View]:
    """The views from the client's side to the server's side."""
    return sorted(views, key=lambda v: (v.delay_ns, v.index))
