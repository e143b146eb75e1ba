"""The simulator's network and host model (link speed, host stalls), its send-call truth, and
the edges of the simulate command (probabilities, interrupted runs, capture-only loss)."""
import hashlib
import json
import subprocess

import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.simulate import CaptureSpec, DumpSpec, NetworkSpec, simulate, simulate_frames
from analyzer.simulate import pcapwriter


def client_frames(frames):
    return [f for f in frames if f[1] == 0]


@pytest.mark.parametrize("mbps", [100, 1000, 10000])
def test_frames_of_a_burst_are_spaced_by_their_serialization_time(mbps):
    frames, _t = simulate_frames(DumpSpec(size=64 << 10), NetworkSpec(link_mbps=mbps, jitter_us=0),
                                 CaptureSpec(point="client"))
    vm = [f for f in client_frames(frames) if len(f[6]) == 24 + 1448]
    gaps = [b[0] - a[0] for a, b in zip(vm, vm[1:]) if b[0] - a[0] < 100_000_000]
    wire = (24 + 1448 + 90) * 8000 / mbps  # ns on the wire, plus 1 us of driver time
    assert min(gaps) == int(wire) + 1000


def test_host_stalls_delay_packets_inside_a_burst_by_50us_to_5ms():
    net = NetworkSpec(host_jitter=0.2, jitter_us=0)
    frames, truth = simulate_frames(DumpSpec(size=256 << 10), net, CaptureSpec(point="client"))
    t = truth.to_json()["dumps"][0]
    spacing = (24 + 1448 + 90) * 8 + 1000
    vm = [f for f in client_frames(frames) if len(f[6]) > 24]
    stalls = [b[0] - a[0] - spacing for a, b in zip(vm, vm[1:])
              if 0 < b[0] - a[0] - spacing and b[0] - a[0] < 100_000]  # inside one burst
    assert t["host_stalls"] > 10
    assert all(50_000 <= s <= 5_000_000 for s in stalls)
    assert t["outcome"] == "finished" and t["capture"]["complete"]


def test_no_host_stalls_by_default_and_probabilities_are_checked():
    _f, truth = simulate_frames(DumpSpec(size=64 << 10))
    assert truth.to_json()["dumps"][0]["host_stalls"] == 0
    for bad in (dict(loss=1.5), dict(ack_loss=-0.1), dict(host_jitter=2), dict(link_mbps=0)):
        with pytest.raises(ValueError):
            simulate_frames(DumpSpec(size=64 << 10), NetworkSpec(**bad))
    with pytest.raises(ValueError):
        simulate_frames(DumpSpec(size=64 << 10), capture=CaptureSpec(loss=1.01))


def test_send_calls_in_the_truth_say_which_reached_the_capture():
    spec = DumpSpec(generation="13", size=256 << 10, encrypt=True)
    _f, truth = simulate_frames(spec, capture=CaptureSpec(drop_frames=(1, 2)))
    t = truth.to_json()["dumps"][0]
    calls = t["send_calls"]
    assert len(calls) == t["calls"]
    assert [c["type"] for c in calls[:1] + calls[-3:]] == ["HERALD", "KDH", "EKCD_KEY", "FINISHED"]
    assert all(b["first_seqno"] == a["last_seqno"] + 1 for a, b in zip(calls, calls[1:]))
    assert all(c["packets"] == c["last_seqno"] - c["first_seqno"] + 1 for c in calls)
    # frames 1 and 2 are the HERALD and its ACK: the HERALD call never reached the capture
    assert not calls[0]["captured"] and all(c["captured"] for c in calls[1:])
    assert t["calls_captured"] == t["calls"] - 1
    assert t["vmcore_calls_captured"] == sum(c["type"] == "VMCORE" for c in calls)
    assert sum(t["sent_counts"].values()) == t["packets_sent"]


@pytest.mark.parametrize("gen,calls", [("12", 2), ("13", 1)])
def test_the_compressed_final_flush_and_its_residual_block_are_two_12x_calls(gen, calls):
    """kern_shutdown.c: the compressor's last flush is written as its whole 4 KiB blocks,
    then (dump_finish) the padded residual block on its own; 13.0 and later buffer both."""
    spec = DumpSpec(generation=gen, size=256 << 10, compress="gzip",
                    mtu=9000 if gen == "12" else 1500)
    _f, truth = simulate_frames(spec)
    t = truth.to_json()["dumps"][0]
    vm = [c for c in t["send_calls"] if c["type"] == "VMCORE"]
    maxp = 4096 if gen == "12" else 1448
    tail_blocks = -(-(t["wire_length"] % 65536) // 4096)
    assert t["wire_length"] != t["dumplength"] and tail_blocks > 1  # a padded residual
    assert len(vm) == t["wire_length"] // 65536 + calls
    if gen == "12":
        assert [c["packets"] for c in vm[-2:]] == [tail_blocks - 1, 1]
    assert all(c["packets"] == 65536 // maxp + bool(65536 % maxp) for c in vm[:-calls])


@pytest.mark.parametrize("option", ["--loss", "--ack-loss", "--dup", "--reorder",
                                    "--capture-loss", "--host-jitter"])
@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_a_probability_outside_0_1_is_a_usage_error(tmp_path, option, value):
    r = CliRunner().invoke(cli, ["simulate", option, value, "-o", str(tmp_path / "x.pcap")])
    assert r.exit_code == 2
    assert "0<=x<=1" in r.output or "0.0<=x<=1.0" in r.output
    assert not (tmp_path / "x.pcap").exists()


def test_an_interrupted_simulate_leaves_no_capture_under_its_name(tmp_path, monkeypatch):
    real = pcapwriter.CaptureWriter.write
    calls = []

    def write(self, f):
        calls.append(1)
        if len(calls) == 50:
            raise KeyboardInterrupt
        return real(self, f)

    monkeypatch.setattr(pcapwriter.CaptureWriter, "write", write)
    with pytest.raises(KeyboardInterrupt):
        simulate(tmp_path / "x.pcap", DumpSpec(size=256 << 10))
    assert list(tmp_path.iterdir()) == []


def test_a_finished_simulate_renames_its_capture_into_place(tmp_path):
    out, _t = simulate(tmp_path / "x.pcap", DumpSpec(size=64 << 10))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pcap"] and out == tmp_path / "x.pcap"


def test_capture_loss_truth_is_what_the_capture_shows_and_sha256sums_checks_an_extract(tmp_path):
    cap, exp, out = tmp_path / "c.pcap", tmp_path / "exp", tmp_path / "out"
    r = CliRunner().invoke(cli, ["simulate", "--capture-loss", "0.05", "--loss", "0.02",
                                  "--encrypt", "--seed", "3", "-o", str(cap),
                                  "--expected", str(exp)])
    assert r.exit_code == 0, r.output
    CliRunner().invoke(cli, ["extract", str(cap), "-o", str(out)])
    check = subprocess.run(["sha256sum", "-c", str(exp / "SHA256SUMS")], cwd=out,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    truth = json.loads((exp / "truth.json").read_text())
    d = truth["dumps"][0]
    files = truth["capture_files"]
    core = d["session"]["vmcore"]
    assert files[core]["sha256"] == d["capture"]["recovered_vmcore_sha256"]
    assert files[core]["sha256"] != truth["files"][core]["sha256"]  # netdumpd got more
    assert d["capture"]["missing_bytes"] > 0
    assert sum(d["sent_counts"].values()) == d["packets_sent"] > d["capture"]["client_frames"]


def test_without_capture_loss_the_expected_files_are_netdumpds(tmp_path):
    _o, truth = simulate(tmp_path / "c.pcap", DumpSpec(size=64 << 10), NetworkSpec(loss=0.05),
                         expected=tmp_path / "exp")
    j = json.loads((tmp_path / "exp" / "truth.json").read_text())
    assert "capture_files" not in j
    for line in (tmp_path / "exp" / "SHA256SUMS").read_text().splitlines():
        sha, name = line.split()
        assert hashlib.sha256((tmp_path / "exp" / name).read_bytes()).hexdigest() == sha
        assert j["files"][name]["sha256"] == sha


def test_every_sample_sha256sums_checks_a_fresh_extract(tmp_path):
    from pathlib import Path
    samples = Path(__file__).resolve().parents[2] / "samples"
    # restart.pcap is left out: there netdumpd lost its unflushed buffer when the client
    # started over, which the capture still holds (truth.json, "definitions")
    for cap in sorted(c for c in samples.glob("*.pcap*") if c.stem != "restart"):
        out = tmp_path / cap.stem
        CliRunner().invoke(cli, ["extract", str(cap), "-o", str(out), "-q"])
        sums = samples / f"{cap.stem}.expected" / "SHA256SUMS"
        check = subprocess.run(["sha256sum", "-c", str(sums)], cwd=out, capture_output=True,
                               text=True)
        assert check.returncode == 0, (cap.name, check.stdout)
