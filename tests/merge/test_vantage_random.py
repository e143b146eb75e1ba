"""audit --merge against the simulator over many seeded random runs: two and three capture
points, each with its own drops and clock, network loss before, between and after them.

The table is held to what the captures can decide (``truth.vantage``: a copy nobody saw and
nobody ACKed after the last one a tap saw leaves no trace; a packet a tap further on saw, or
whose ACK was seen, is that tap's drop; one seen upstream and never ACKed was lost after the
furthest tap that saw it), exactly, in every run; the simulation's own account
(``truth.vantage_physical``) differs from it only by what no capture shows.
"""
from __future__ import annotations

import random

import pytest

from analyzer.simulate import DumpSpec, NetworkSpec
from analyzer.simulate.vantage import TapSpec

RUNS = 64
POINTS = ([("mirror", 0.5), ("server", 1.0)], [("client", 0.0), ("server", 1.0)],
          [("client", 0.0), ("mirror", 0.5), ("server", 1.0)])


def _scenario(seed: int) -> dict:
    rng = random.Random(seed)
    points = POINTS[seed % len(POINTS)]
    taps = [TapSpec(name, pos, drop=rng.uniform(0.01, 0.06),
                    clock_offset_s=rng.uniform(-3600, 3600)) for name, pos in points]
    cuts = tuple((a.position + b.position) / 2 for a, b in zip(taps, taps[1:]))
    return {"taps": taps, "seed": seed, "loss_at": (0.0001, *cuts),
            "network": NetworkSpec(loss=rng.uniform(0.01, 0.05),
                                   ack_loss=rng.uniform(0.01, 0.05)),
            "dump": DumpSpec(generation=rng.choice(["12", "13", "main"]),
                             size=rng.choice([128, 256]) << 10)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from .conftest import Captured
    out = []
    for seed in range(RUNS):
        run = Captured(tmp_path_factory.mktemp(f"r{seed}"), **_scenario(seed))
        vantage = run.merge()[0]["sessions"][0]["audit"]["vantage"]
        out.append((run, vantage))
    return out


def test_every_run_counts_and_places_each_transmission_as_the_captures_show(runs):
    wrong = [seed for seed, (run, got) in enumerate(runs) if got != run.truth.vantage[0]]
    assert wrong == []


def test_the_runs_have_drops_at_every_point_and_losses_between_them(runs):
    segments, dropped, unseen = set(), set(), 0
    for run, got in runs:
        names = {p: n for n, p in run.paths.items()}
        segments |= {(names[x["from"]], names[x["to"]]) for x in got["lost_between"]}
        dropped |= {names[p] for p, n in got["tap_drops"].items() if n}
        unseen += got["transmissions"]["seen_by_none"]
    assert segments == {("client", "mirror"), ("mirror", "server"), ("client", "server")}
    assert dropped == {"client", "mirror", "server"}
    assert unseen > RUNS // 2  # losses before the first point, told by resends and ACKs


def test_what_is_left_out_is_only_what_no_capture_shows(runs):
    """The simulation's own totals are never below the table's, and above it only by
    copies nobody saw that no later copy or ACK tells of."""
    for run, got in runs:
        physical = run.truth.vantage_physical[0]["transmissions"]
        told = got["transmissions"]
        assert physical["total"] - told["total"] == \
            physical["seen_by_none"] - told["seen_by_none"] >= 0
        assert physical["seen_by"] == told["seen_by"]
