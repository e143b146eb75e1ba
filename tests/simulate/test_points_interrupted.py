"""simulate --capture-points: an interrupted run leaves no half-written capture behind."""
from __future__ import annotations

import pytest

from analyzer.simulate import DumpSpec
from analyzer.simulate.pcapwriter import CaptureWriter
from analyzer.simulate.vantage import TapSpec, simulate_vantage


def _taps():
    return [TapSpec("client", 0.0), TapSpec("server", 1.0)]


def test_interrupted_capture_points_leave_no_capture_under_its_name(tmp_path, monkeypatch):
    write = CaptureWriter.write
    written = []

    def interrupted(self, frame):
        written.append(frame)
        if len(written) == 200:
            raise KeyboardInterrupt
        return write(self, frame)

    monkeypatch.setattr(CaptureWriter, "write", interrupted)
    outputs = {t.name: str(tmp_path / f"{t.name}.pcap") for t in _taps()}
    with pytest.raises(KeyboardInterrupt):
        simulate_vantage(outputs, _taps(), DumpSpec(generation="12", size=256 << 10))
    assert len(written) == 200  # it was stopped mid-capture
    assert list(tmp_path.iterdir()) == []  # no capture under its name, no temporary left


def test_finished_capture_points_are_under_their_names_only(tmp_path):
    outputs = {t.name: str(tmp_path / f"{t.name}.pcap") for t in _taps()}
    paths, _truth = simulate_vantage(outputs, _taps(), DumpSpec(generation="12", size=64 << 10))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.pcap", "server.pcap"]
    assert all(p.stat().st_size > 24 for p in paths.values())
