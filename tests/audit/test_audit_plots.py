"""The Stevens plot says what the audit's table says, and shows what the dump is missing."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.audit import plots
from analyzer.cli import cli
from analyzer.simulate import CaptureSpec, DumpSpec, NetworkSpec, simulate

pytest.importorskip("matplotlib")
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture
def legends(monkeypatch):
    """The legend labels and shaded spans of every Stevens plot written."""
    seen = []
    real = plots._save

    def save(plt, fig, path):
        if path.endswith("-stevens.png"):
            ax = fig.axes[0]
            seen.append({"labels": ax.get_legend_handles_labels()[1],
                         "spans": [p for p in ax.patches]})
        return real(plt, fig, path)

    monkeypatch.setattr(plots, "_save", save)
    return seen


def audit(capture, tmp_path):
    r = CliRunner().invoke(cli, ["audit", str(capture), "--plot", str(tmp_path / "p"),
                                 "--json", str(tmp_path / "a.json"), "-q"])
    assert r.exit_code in (0, 3), r.output
    return json.loads((tmp_path / "a.json").read_text())["sessions"]


def test_the_stevens_legend_counts_what_the_table_counts(legends, tmp_path):
    # lossy-12x has resends whose first copy the server never got: first captured copies
    # that are also retransmissions
    (s,) = audit(SAMPLES / "lossy-12x.pcapng", tmp_path)
    vm = s["audit"]["retransmissions"]["by_type"]["VMCORE"]
    assert s["audit"]["retransmissions"]["hidden"] > 0
    labels = legends[0]["labels"]
    assert f"first ({vm['first']:,})" in labels
    assert f"retransmitted ({vm['retransmitted']:,})" in labels


def test_the_stevens_plot_of_an_incomplete_dump_shades_the_missing_ranges(legends, tmp_path):
    cap, truth = simulate(tmp_path / "c.pcap", DumpSpec(size=256 << 10),
                          NetworkSpec(), CaptureSpec(loss=0.03), seed=2)
    (s,) = audit(cap, tmp_path)
    missing = s["vmcore"]["missing"]
    assert len(missing) >= 2
    assert missing == truth.to_json()["dumps"][0]["capture"]["missing"]
    lost = sum(e - a for a, e in missing)
    plot = legends[0]
    assert f"missing ({lost:,} bytes in {len(missing)} ranges)" in plot["labels"]
    assert len(plot["spans"]) == len(missing)


def test_a_complete_dump_has_nothing_shaded(legends, tmp_path):
    audit(SAMPLES / "clean-13x.pcap", tmp_path)
    assert not any(lab.startswith("missing") for lab in legends[0]["labels"])
    assert legends[0]["spans"] == []
