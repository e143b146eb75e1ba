"""The audit and messages commands end to end, and the bounded statistics behind them."""
import csv
import json
import random
from collections import Counter

import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from analyzer.audit.stats import Decimator, Distribution, TopN
from analyzer.cli import cli
from analyzer.simulate import DumpSpec, NetworkSpec, simulate


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    path, truth = simulate(tmp_path_factory.mktemp("a") / "lossy.pcap",
                           DumpSpec(generation="13", size=512 << 10),
                           network=NetworkSpec(loss=0.02, ack_loss=0.02), seed=3)
    return str(path), truth.to_json()["dumps"][0]


def test_audit_json_adds_audit_and_keeps_the_report(lossy, tmp_path):
    path, truth = lossy
    r = CliRunner().invoke(cli, ["summary", path, "--json", str(tmp_path / "s.json"), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["audit", path, "--json", str(tmp_path / "a.json"), "-q"])
    assert r.exit_code == 0, r.output
    plain = json.load(open(tmp_path / "s.json"))
    audited = json.load(open(tmp_path / "a.json"))
    (s,), (a,) = plain["sessions"], audited["sessions"]
    assert {k: v for k, v in a.items() if k != "audit"} == s
    assert a["audit"]["retransmissions"]["total"] == truth["capture"]["retransmissions"]


def test_audit_terminal_report_has_every_section(lossy):
    r = CliRunner().invoke(cli, ["audit", lossy[0]])
    assert r.exit_code == 0, r.output
    for title in ("Problems", "Transfer", "Timeline", "Retransmissions", "Bursts", "ACKs",
                  "RTT", "Stalls", "Protocol checks", "ICMP"):
        assert title in r.output


def test_audit_csv_has_a_row_per_message_and_ack(lossy, tmp_path):
    path, truth = lossy
    r = CliRunner().invoke(cli, ["audit", path, "--csv", str(tmp_path), "-q"])
    assert r.exit_code == 0, r.output
    (f,) = tmp_path.glob("dump-1-*.csv")
    rows = list(csv.DictReader(open(f)))
    c = truth["capture"]
    assert len(rows) == c["client_frames"] + c["ack_frames"]
    frames = [int(x["frame"]) for x in rows]
    assert frames == sorted(frames)
    retx = [x for x in rows if x["direction"] == "C->S" and x["retransmission"] == "1"]
    assert len(retx) == c["retransmissions_visible"]
    acked = [x for x in rows if x["direction"] == "C->S" and x["acked_in_frame"]]
    assert len(acked) > 0.9 * c["client_frames"]
    assert all(x["acks_frame"] for x in rows if x["type"] == "ACK")


def test_audit_plots(lossy, tmp_path):
    r = CliRunner().invoke(cli, ["audit", lossy[0], "--plot", str(tmp_path), "-q"])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(names) == 3 and any("stevens" in n for n in names)


@pytest.mark.parametrize("option", ["--csv", "--plot"])
@pytest.mark.parametrize("taken_as", ["file", "dangling symlink"])
def test_an_existing_csv_or_plot_is_never_overwritten_and_the_rest_is_written(
        lossy, tmp_path, option, taken_as):
    first, again = tmp_path / "first", tmp_path / "again"
    r = CliRunner().invoke(cli, ["audit", lossy[0], option, str(first), "-q"])
    names = sorted(p.name for p in first.iterdir())
    again.mkdir()
    taken = again / names[0]
    if taken_as == "file":
        taken.write_text("mine\n")
    else:
        taken.symlink_to(tmp_path / "outside")
    r = CliRunner().invoke(cli, ["audit", lossy[0], option, str(again), "-q",
                                 "--json", str(tmp_path / "a.json")])
    assert r.exit_code == 0, r.output
    assert f"{taken} exists; not overwriting it" in r.output
    assert (taken.read_text() == "mine\n") if taken_as == "file" else not (
        tmp_path / "outside").exists()
    assert json.loads((tmp_path / "a.json").read_text())["sessions"][0]["audit"]
    assert sorted(p.name for p in again.iterdir()) == names  # the others are still made


def test_audit_plot_without_matplotlib_is_a_usage_error(lossy, tmp_path, monkeypatch):
    import subprocess
    import sys
    code = ("import sys; sys.modules['matplotlib'] = None; "
            "from analyzer.cli import main; sys.argv = ['x', 'audit', %r, '--plot', %r]; main()"
            % (lossy[0], str(tmp_path)))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "matplotlib" in p.stderr


def test_messages_lists_every_message_and_ack(lossy):
    path, truth = lossy
    r = CliRunner().invoke(cli, ["messages", path])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()[1:]
    c = truth["capture"]
    assert len(lines) == c["client_frames"] + c["ack_frames"]
    assert sum("retransmission of frame" in x for x in lines) == c["retransmissions_visible"]
    assert any("ACK of frame" in x and "rtt=" in x for x in lines)
    assert any("dup ACK of frame" in x for x in lines)
    r = CliRunner().invoke(cli, ["messages", path, "--frames", "3-7", "--dump", "1"])
    assert [int(x.split()[0]) for x in r.output.splitlines()[1:]] == [3, 4, 5, 6, 7]
    r = CliRunner().invoke(cli, ["messages", path, "--client", "10.9.9.9"])
    assert r.exit_code == 2 and "10.9.9.9" in r.output  # a filter matching nothing


def test_distribution_exact_then_log_histogram():
    d = Distribution()
    for v in range(1, 101):
        d.add(v * 1000)
    assert d.percentile(50) == 50_000 and d.percentile(99) == 99_000 and d.is_exact
    rng = random.Random(1)
    big = Distribution()
    values = sorted(int(rng.lognormvariate(12, 1)) + 1 for _ in range(20000))
    for v in values:
        big.add(v)
    assert not big.is_exact and big.min == values[0] and big.max == values[-1]
    for p in (50, 95, 99):
        true = values[-(-p * len(values) // 100) - 1]
        assert big.percentile(p) == pytest.approx(true, rel=0.015)
    assert len(big.bins) < 1200


def test_decimator_keeps_small_series_and_bounds_large_ones():
    d = Decimator(max_buckets=100)
    for t, v in ((0, 1), (5_000, 2), (9_000, 3)):
        d.add(t, v)
    assert d.points() == [(0, 1), (5_000, 2), (9_000, 3)]
    big = Decimator(max_buckets=100)
    for i in range(200_000):
        big.add(i * 10_000, i % 977)
    pts = big.points()
    assert len(pts) <= 200 and max(v for _, v in pts) == 976 and min(v for _, v in pts) == 0


def test_topn_keeps_the_largest():
    t = TopN(3)
    for k in [5, 1, 9, 7, 3]:
        t.add(k, f"x{k}")
    assert t.items() == ["x9", "x7", "x5"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**10), max_size=5000), st.data())
def test_distribution_equals_a_one_by_one_reference_whenever_it_is_read(values, data):
    """Samples are folded in bulk; whenever the statistics are read they are those of
    every sample added so far, as if each had been added on its own."""
    from analyzer.audit.stats import EXACT_SAMPLES, _bin

    d = Distribution()
    reads = sorted(data.draw(st.lists(st.integers(0, len(values)), max_size=4)))
    seen: list[int] = []
    for i, v in enumerate(values + [None]):
        while reads and reads[0] == i:
            reads.pop(0)
            if seen:
                assert (d.count, d.min, d.max, d.total) == \
                    (len(seen), min(seen), max(seen), sum(seen))
                assert d.is_exact == (len(seen) <= EXACT_SAMPLES)
                assert d.bins == Counter(_bin(x) if x > 0 else -1 for x in seen)
                if d.is_exact:
                    assert d.percentile(50) == sorted(seen)[max(1, -(-50 * len(seen) // 100)) - 1]
            else:
                assert d.count == 0 and d.percentile(50) is None
        if v is not None:
            d.add(v)
            seen.append(v)


SAMPLES_DIR = __import__("pathlib").Path(__file__).parents[2] / "samples"
TWO_FILES = [str(SAMPLES_DIR / "clean-13x.pcap"), str(SAMPLES_DIR / "multi-client.pcapng")]


def test_audit_csv_rows_of_a_later_file_give_its_own_frame_numbers_and_name_it(tmp_path):
    r = CliRunner().invoke(cli, ["audit", *TWO_FILES, "--csv", str(tmp_path), "-q"])
    assert r.exit_code in (0, 3), r.output
    first = list(csv.DictReader(open(tmp_path / "dump-1-10.0.0.21.csv")))
    assert {x["file"] for x in first} == {TWO_FILES[0]}
    later = list(csv.DictReader(open(tmp_path / "dump-4-10.0.1.3.csv")))
    assert {x["file"] for x in later} == {TWO_FILES[1]}
    herald, ack = later[0], later[1]  # multi-client's frame 27 is the run's frame 329
    assert (herald["type"], herald["frame"], herald["acked_in_frame"]) == ("HERALD", "27", "46")
    assert (ack["type"], ack["frame"], ack["acks_frame"]) == ("ACK", "46", "27")


def test_audit_text_names_the_file_of_each_frame_only_when_several_files_are_read():
    wide = {"COLUMNS": "400"}  # rich sizes its tables from COLUMNS; a checkout's long path must not fold
    r = CliRunner().invoke(cli, ["audit", *TWO_FILES], env=wide)
    assert r.exit_code in (0, 3), r.output
    heralds = [line.split() for line in r.output.splitlines() if line.split()[:1] == ["HERALD"]
               and "of" in line.split()]
    assert ["HERALD", "1", "of", TWO_FILES[0]] == heralds[0][:4]
    assert ["HERALD", "27", "of", TWO_FILES[1]] == heralds[-1][:4]  # run-wide frame 329
    alone = CliRunner().invoke(cli, ["audit", TWO_FILES[1]], env=wide)
    assert " of " + TWO_FILES[1] not in alone.output
    assert any(line.split()[:2] == ["HERALD", "27"] for line in alone.output.splitlines())


def test_audit_texts_name_the_file_of_each_frame_when_several_files_are_read(tmp_path):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((SAMPLES_DIR / "clean-13x.pcap").read_bytes()[:20000])
    out = tmp_path / "a.json"
    r = CliRunner().invoke(cli, ["audit", TWO_FILES[1], str(cut), "--json", str(out), "-q"])
    assert "Traceback" not in r.output
    sessions = json.loads(out.read_text())["sessions"]
    a = sessions[-1]["audit"]  # the cut file's dump; its frame 15 is far on in the run
    assert a["timeline"]["capture_cut"]["frame"] == 15
    assert a["outcome"] == f"capture cut at frame 15 of {cut}, mid-dump"
    for s in sessions[:-1]:  # each check names the frame the timeline gives, with its file
        kdh = s["audit"]["timeline"]["kdh"]
        (check,) = [c for c in s["audit"]["checks"] if c["name"] == "kdh present"]
        assert check["detail"] == f"frame {kdh['frame']} of {kdh['file']}"


def test_messages_anomaly_notes_name_the_file_of_each_frame_when_several_files_are_read(
        tmp_path):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((SAMPLES_DIR / "clean-13x.pcap").read_bytes()[:20000])
    r = CliRunner().invoke(cli, ["messages", TWO_FILES[1], str(cut)])
    (note,) = [line for line in r.output.splitlines() if "! truncated-capture:" in line]
    assert note.endswith(f"! truncated-capture: the file ends inside record 15 of {cut}: "
                         "83 of its 1514 captured bytes are lost")


def test_the_worst_bursts_keep_each_seqno_and_offset_range_on_one_line():
    """On a 100-column terminal the offset ranges of the lossy sample's worst bursts were
    folded into two lines, which read as two numbers."""
    r = CliRunner().invoke(cli, ["audit", str(SAMPLES_DIR / "lossy-12x.pcapng")],
                           env={"COLUMNS": "100"})
    lines = [x.rstrip() for x in r.output.splitlines()]
    start = lines.index("Worst bursts")
    rows = [x.split() for x in lines[start + 5:start + 15] if x.split()[1:2] == ["VMCORE"]]
    assert len(rows) == 5
    for x in rows:  # each offset range whole: its end past its start, whole 4 KiB blocks
        start_off, end_off = map(int, x[3].split("-"))
        assert end_off > start_off and (end_off - start_off) % 4096 == 0, x
