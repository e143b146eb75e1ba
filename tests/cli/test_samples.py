"""Every bundled sample through the real command line, checked against its expected outputs."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.schema_check import check_written_report
from tests.support.truth_check import check, pair_dumps

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))


def run_cli(*args):
    p = subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)],
                       capture_output=True, text=True)
    check_written_report(args, p.stdout)
    return p


def expected_lines(stdout, report, truth):
    """extract's lines in the order printed: one per dump as it ends (its outcome, taken
    from the output), and right after it, for a dump whose KDH the capture lacks, the panic
    and version line of its msgbuf as the truth has them."""
    def head(session):
        return f"dump {session['id']}: {session['client']} "

    out = []
    for session, dump in sorted(pair_dumps(report, truth),
                                key=lambda pair: stdout.index(head(pair[0]))):
        out.append(next(line for line in stdout.splitlines() if line.startswith(head(session))))
        if not dump["capture"]["kdh_frames"]:
            mb = dump["image"]["msgbuf"]
            out.append(f"dump {session['id']}: [msgbuf: panic: {mb['panic']}; "
                       f"{mb['version_line']}]")
    return out


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_extract_matches_the_expected_files(capture, tmp_path):
    truth = json.loads((SAMPLES / (capture.stem + ".expected") / "truth.json").read_text())
    out = tmp_path / "out"
    proc = run_cli("extract", capture, "-o", out, "--json", tmp_path / "r.json")
    complete = all(d["capture"]["complete"] and d["capture"]["kdh_frames"]
                   and d["capture"]["finished_frames"] for d in truth["dumps"])
    assert proc.returncode == (0 if complete else 3), proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    check(report, truth, out)
    assert proc.stdout.splitlines() == expected_lines(proc.stdout, report, truth)
    assert report["captures"] == [{"path": str(capture), "frames": truth["capture"]["file_frames"],
                                   "truncated": False}]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_inspect_of_each_recovered_dump_is_its_truth(capture, tmp_path):
    """Decrypted and decompressed, every recovered sample dump is a consistent minidump: a
    complete one has kgdb verdict "ok", no lost page and its panic message read; an
    incomplete one names exactly the pages and sections the simulator knows it lost."""
    truth = json.loads((SAMPLES / (capture.stem + ".expected") / "truth.json").read_text())
    key = SAMPLES / (capture.stem + ".private-key.pem")
    out = tmp_path / "out"
    run_cli("extract", capture, "-o", out, "--decompress", "--json", tmp_path / "r.json",
            *(["--private-key", key] if key.exists() else []))
    report = json.loads((tmp_path / "r.json").read_text())
    pairs = pair_dumps(report, truth)
    infos = [out / next(f for f in session["files"] if "info." in f) for session, _ in pairs]
    proc = run_cli("inspect", *infos, "--json", tmp_path / "i.json")
    entries = json.loads((tmp_path / "i.json").read_text())["dumps"]
    assert "Traceback" not in proc.stderr
    for (session, dump), entry in zip(pairs, entries):
        image, who = dump["image"], f"{dump['client']} attempt {dump['attempt']}"
        md, mb = entry["minidump"], entry["msgbuf"]
        if session["status"] == "complete":
            assert entry["kgdb"] == "ok" and entry["missing"] == [], who
            assert md["pages_lost"] == 0 and md["lost_pages_pa"] == [], who
            assert mb["panic"] == dump["spec"]["panic"] and mb["missing"] == [], who
        assert entry["format"] == "minidump" and entry["missing"] == image["missing"], who
        assert md["length_ok"] == (entry["length"] == image["length"]), who
        assert [entry["kgdb"], md["pages_total"], md["pages_lost"], md["lost_pages_pa"]] == [
            image["kgdb"], image["pages_total"], image["pages_lost"], image["lost_pages_pa"]], who
        assert md["sections"] == image["sections"], who
        assert [mb["panic"], mb["version_line"]] == [image["msgbuf"]["panic"],
                                                     image["msgbuf"]["version_line"]], who
        assert {**session["inspect"], "file": entry["file"]} == entry, who  # extract's own
    whole = all(s["status"] == "complete" for s in report["sessions"])
    assert proc.returncode == (0 if whole else 3)
    assert proc.stdout.count("\n  panic: page fault\n") == len(pairs)


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_summary_json_to_stdout_writes_no_files(capture, tmp_path):
    truth = json.loads((SAMPLES / (capture.stem + ".expected") / "truth.json").read_text())
    proc = run_cli("summary", capture, "--json", "-")
    report = json.loads(proc.stdout)
    check(report, truth)
    assert all(s["files"] == [] for s in report["sessions"])


def test_sha256sums_files_agree_with_a_fresh_extract(tmp_path):
    expected = SAMPLES / "clean-13x.expected"
    run_cli("extract", SAMPLES / "clean-13x.pcap", "-o", tmp_path)
    for line in (expected / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(None, 1)
        assert hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest() == digest, rel


def test_several_files_are_one_capture(tmp_path):
    capture = tmp_path / "again.pcap"  # another file with the same frames (not the same file)
    capture.write_bytes((SAMPLES / "clean-13x.pcap").read_bytes())
    proc = run_cli("summary", SAMPLES / "clean-13x.pcap", capture, "--json", "-")
    report = json.loads(proc.stdout)
    assert [c["frames"] for c in report["captures"]] == [report["captures"][0]["frames"]] * 2
    # The second copy replays the same dump: a HERALD after data is a new dump of that client.
    assert len(report["sessions"]) == 2


def test_unreadable_capture_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture\n")
    proc = run_cli("extract", bad, "-o", tmp_path / "out")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    missing = run_cli("summary", tmp_path / "nope.pcap")
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1


def test_usage_error_is_exit_2():
    assert run_cli("extract").returncode == 2
    assert run_cli("extract", "x.pcap").returncode == 2  # no -o


def test_an_unreadable_file_among_several_costs_only_itself(tmp_path):
    bad = tmp_path / "garbage.pcap"
    bad.write_bytes(b"this is not a capture at all\n")
    good = SAMPLES / "clean-13x.pcap"
    proc = run_cli("extract", good, bad, "-o", tmp_path / "out", "--json", tmp_path / "r.json")
    assert proc.returncode == 1  # one input could not be read at all
    report = json.loads((tmp_path / "r.json").read_text())
    assert [c["path"] for c in report["captures"]] == [str(good), str(bad)]
    assert "error" in report["captures"][1] and report["error"]
    (session,) = report["sessions"]
    assert session["status"] == "complete"  # the dump in the good file is recovered
    assert (tmp_path / "out" / session["files"][1]).stat().st_size == session["vmcore"]["length"]
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr
