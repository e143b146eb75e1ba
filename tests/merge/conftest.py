"""Builders for the merge tests: simulated captures at several points of one path."""
from __future__ import annotations

import pytest

from analyzer.merge.run import run_merge
from analyzer.simulate import DumpSpec, NetworkSpec
from analyzer.simulate.vantage import TapSpec, simulate_vantage


class Captured:
    """The captures of one simulated transfer, their truth, and the merged analysis."""

    def __init__(self, tmp_path, taps, dump=None, network=None, seed=0, **kw):
        self.taps = taps
        self.paths = {t.name: str(tmp_path / f"{t.name}.{t.format}") for t in taps}
        dump = dump or DumpSpec(generation="12", size=256 << 10)
        _p, self.truth = simulate_vantage(self.paths, taps, dump, network, seed=seed, **kw)

    def views(self, names=None) -> tuple[str, ...]:
        return tuple(self.paths[n] for n in (names or [t.name for t in self.taps]))

    def merge(self, names=None, outdir=None, vantage=True):
        analysis, report, code = run_merge(self.views(names), outdir, 1 << 40, vantage=vantage)
        if vantage:
            analysis.vantage.add_to_report(report)
        return report, code

    def offset(self, name: str, at: float | None = None) -> float:
        """The tap's clock minus the first tap's, as the truth set them: at the first tap's
        time ``at`` (seconds) when the clocks drift."""
        by = {t.name: t for t in self.taps}
        ref, tap = self.taps[0], by[name]
        true = 0.0
        if at is not None:  # the true time the reference's clock shows as ``at``
            origin = self.truth.clock_origin / 1e9
            true = (at - ref.clock_offset_s - origin) / (1 + ref.clock_drift_ppm / 1e6)
        return tap.clock_offset_s - ref.clock_offset_s + \
            (tap.clock_drift_ppm - ref.clock_drift_ppm) / 1e6 * true


@pytest.fixture
def captured(tmp_path):
    return lambda taps, **kw: Captured(tmp_path, taps, **kw)


def three_taps(drop=0.03):
    return [TapSpec("client", 0.0, drop=drop, clock_offset_s=0.0),
            TapSpec("mirror", 0.5, drop=drop, clock_offset_s=-0.75, format="pcapng",
                    link="vlan"),
            TapSpec("server", 1.0, drop=drop, clock_offset_s=3600 * 2 + 0.123456, tsres="ns")]


LOSSY = NetworkSpec(loss=0.04, ack_loss=0.04)
