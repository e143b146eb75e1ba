"""The clock fit of --merge on pairs made by hand: offsets, drift, and copies paired with
the wrong copy of their seqno (views that missed different resends)."""
from __future__ import annotations

import random

import pytest

from analyzer.merge.clocks import fit

T0 = 1_700_000_000 * 10**9
OFFSET = 105_498_719_620  # ns
DELAY = 51_500  # ns, one way, toward the server


def _pairs(n, start, spacing, drift_ppm=0.0, seed=1):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = start + i * spacing
        offset = OFFSET + drift_ppm * 1e-6 * (t - T0)
        ack = i % 2 == 1
        out.append((t, int(offset + (-DELAY if ack else DELAY) + rng.randrange(-3000, 3000)),
                    ack))
    return out


def test_offset_and_delay_from_messages_and_acks():
    clock, delay = fit(_pairs(160, T0, 50_000_000))
    assert clock.offset_at(T0) == pytest.approx(OFFSET, abs=5_000)
    assert delay == pytest.approx(DELAY, abs=5_000)
    assert clock.b == 0.0


def test_a_few_copies_paired_with_the_resend_a_timeout_away_do_not_move_the_offset():
    good = _pairs(160, T0, 50_000_000)
    # three copies 3 s later, each view holding a different resend of its seqno
    wrong = [(T0 + 11 * 10**9 + i, OFFSET + DELAY - 1_001_000_000, False) for i in range(3)]
    clock, _delay = fit(good + wrong)
    assert clock.offset_at(T0) == pytest.approx(OFFSET, abs=5_000)


def test_drift_over_an_hour_with_a_pause_between_two_dumps():
    pairs = _pairs(400, T0, 20_000_000, drift_ppm=120) + \
        _pairs(400, T0 + 3600 * 10**9, 20_000_000, drift_ppm=120, seed=2)
    clock, _delay = fit(pairs)
    assert clock.b * 1e6 == pytest.approx(120, abs=0.01)
    for t in (T0, T0 + 3600 * 10**9):
        assert clock.offset_at(t) == pytest.approx(OFFSET + 120e-6 * (t - T0), abs=10_000)


def test_too_few_pairs_give_no_clock():
    assert fit(_pairs(2, T0, 10**9)) is None
