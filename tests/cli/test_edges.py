"""The command line at its edges: what it says when the data is partial, when an output
cannot be written, when the reader of its output goes away, when it is interrupted, when a
filter matches nothing, when a file is named twice, and when a run spans several files.
"""
from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.exits import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED
from tests.cli.test_hostile import cli, one_line_error, write_pcap
from tests.support.datagrams import Conversation, clean_dump, image

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CLEAN = SAMPLES / "clean-13x.pcap"
LOSSY = SAMPLES / "lossy-12x.pcapng"
MULTI = SAMPLES / "multi-client.pcapng"
ROOT = os.geteuid() == 0


def as_user(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run the command line with permission bits enforced: as root, without the
    capabilities that let root write anywhere."""
    prefix = []
    if ROOT:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("needs setpriv to drop root's override of permission bits")
        prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all"]
    return subprocess.run([*prefix, sys.executable, "-m", "analyzer", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture
def read_only(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    yield d
    d.chmod(0o755)


# -- the dump line says only what the data shows (issue 10, items 3 and 4) -------------------

def test_a_dump_without_kdh_says_its_length_is_unknown(tmp_path):
    c = Conversation()
    c.herald(b"")
    c.data(image(90112))  # no KDH, no FINISHED: an aborted dump
    p = cli("summary", write_pcap(tmp_path / "t.pcap", c.items))
    assert p.returncode == 3
    assert "90112 bytes received, dump length unknown (no KDH)" in p.stdout
    assert "of 90112 bytes" not in p.stdout


def test_a_refused_herald_path_shows_in_the_dump_line(tmp_path):
    c, _ = clean_dump(size=3000, path=b"../../etc")
    p = cli("extract", write_pcap(tmp_path / "t.pcap", c.items), "-o", tmp_path / "out")
    assert p.returncode == 0, p.stderr
    assert "path '../../etc' refused, saved in the output directory" in p.stdout


def test_summary_says_where_a_refused_path_would_go_without_claiming_a_file(tmp_path):
    c, _ = clean_dump(size=3000, path=b"/etc")
    p = cli("summary", write_pcap(tmp_path / "t.pcap", c.items))
    assert "path '/etc' refused, would be saved in the output directory" in p.stdout


# -- unusable outputs are refused before the capture is read (item 6) ------------------------

@pytest.mark.parametrize("args", [
    ("audit", CLEAN, "--csv", "{ro}"),
    ("audit", CLEAN, "--plot", "{ro}/plots"),
    ("summary", CLEAN, "--json", "{ro}/r.json"),
    ("audit", CLEAN, "--json", "{ro}/r.json"),
    ("extract", CLEAN, "-o", "{ro}"),
    ("extract", CLEAN, "-o", "{ro}/sub"),
], ids=lambda a: " ".join(str(x) for x in a[2:]))
def test_an_output_in_a_read_only_folder_is_one_line_naming_it(args, read_only):
    p = as_user(*[str(a).format(ro=read_only) for a in args])
    assert p.returncode == 1
    err = one_line_error(p)
    assert str(read_only) in err and "not writable" in err
    assert p.stdout == ""  # no dump line: nothing was read
    assert os.listdir(read_only) == []


@pytest.mark.parametrize("command", ["summary", "audit", "extract"])
@pytest.mark.parametrize("writable", [True, False], ids=["writable", "read-only"])
def test_an_existing_report_file_is_never_overwritten_and_refused_before_the_run(
        command, writable, tmp_path):
    report = tmp_path / "r.json"
    report.write_text("{}")
    report.chmod(0o644 if writable else 0o444)
    extra = ["-o", tmp_path / "out"] if command == "extract" else []
    p = as_user(command, CLEAN, "--json", report, *extra)
    assert p.returncode == 1 and f"{report} exists; not overwriting it" in one_line_error(p)
    assert p.stdout == "" and report.read_text() == "{}"
    assert not (tmp_path / "out").exists()


def test_a_report_name_that_is_a_dangling_symlink_is_refused(tmp_path):
    report, outside = tmp_path / "r.json", tmp_path / "elsewhere.json"
    report.symlink_to(outside)
    p = cli("summary", CLEAN, "--json", report)
    assert p.returncode == 1 and "exists; not overwriting it" in one_line_error(p)
    assert not outside.exists()


@pytest.mark.parametrize("option", ["-o", "--csv", "--plot", "--json"])
def test_an_output_under_a_regular_file_is_refused(option, tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("a file\n")
    command = "extract" if option == "-o" else "audit"
    target = plain / ("r.json" if option == "--json" else "sub")
    p = cli(command, CLEAN, option, target)
    assert p.returncode == 1
    err = one_line_error(p)
    assert str(plain) in err and "is a file, not a directory" in err


def test_an_output_directory_that_is_a_file_exits_1(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("a file\n")
    p = cli("extract", CLEAN, "-o", plain)
    assert p.returncode == 1 and "is a file, not a directory" in one_line_error(p)
    assert plain.read_text() == "a file\n"


def test_a_report_in_a_folder_that_does_not_exist_is_refused(tmp_path):
    p = cli("summary", CLEAN, "--json", tmp_path / "nowhere" / "r.json")
    assert p.returncode == 1
    assert "folder" in one_line_error(p) and "does not exist" in p.stderr
    assert not (tmp_path / "nowhere").exists()


def test_a_report_named_as_a_directory_is_refused(tmp_path):
    p = cli("summary", CLEAN, "--json", tmp_path)
    assert p.returncode == 1 and "is a directory" in one_line_error(p)


def test_a_missing_output_directory_is_still_created(tmp_path):
    p = cli("extract", CLEAN, "-o", tmp_path / "a" / "b")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "a" / "b" / "crash" / "web1").is_dir()


# -- a directory as a capture (item 7) -------------------------------------------------------

def test_a_directory_given_as_a_capture_is_unusable_exit_1(tmp_path):
    p = cli("summary", tmp_path)
    assert p.returncode == 1
    assert str(tmp_path) in one_line_error(p) and "directory" in p.stderr


def test_the_dumps_beside_a_directory_are_still_reported(tmp_path):
    p = cli("summary", CLEAN, tmp_path, "--json", "-")
    assert p.returncode == 1
    report = json.loads(p.stdout)
    assert [s["status"] for s in report["sessions"]] == ["complete"]
    assert report["captures"][1]["path"] == str(tmp_path) and report["captures"][1]["error"]


# -- a closed pipe (item 8) ------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("messages", LOSSY), ("audit", LOSSY), ("summary", LOSSY, "--json", "-"),
    ("messages", LOSSY, MULTI), ("extract", CLEAN, "-o", "{out}", "--json", "-"),
], ids=lambda a: " ".join(str(x).rsplit("/", 1)[-1] for x in a))
def test_a_closed_pipe_stops_the_command_quietly(args, tmp_path):
    argv = [str(a).format(out=tmp_path / "out") for a in args]
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head -c 0`: gone before the first line (a fuller pipe
    # buffer would let a small output through, and the command would rightly exit 0)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == EXIT_BROKEN_PIPE
    assert "error" not in err and "Exception ignored" not in err and "Traceback" not in err
    if argv[0] == "extract":  # the dumps were written before the report was
        assert not list((tmp_path / "out").rglob("*.part"))


# -- Ctrl-C: each command says what is true of its output (item 9) ---------------------------

def _interrupted(monkeypatch, capsys, *argv) -> tuple[int, str]:
    from analyzer import cli as cli_module
    from analyzer.pipeline import Analysis

    def interrupt(self, batches):
        raise KeyboardInterrupt

    monkeypatch.setattr(Analysis, "run_batches", interrupt)
    monkeypatch.setattr(sys, "argv", ["netdump-analyzer", *map(str, argv)])
    with pytest.raises(SystemExit) as stop:
        cli_module.main()
    return stop.value.code, capsys.readouterr().err


def test_an_interrupted_extract_points_at_its_part_files(monkeypatch, capsys, tmp_path):
    code, err = _interrupted(monkeypatch, capsys, "extract", CLEAN, "-o", tmp_path / "o")
    assert code == EXIT_INTERRUPTED
    assert err.startswith("interrupted:") and "*.part files in" in err and str(tmp_path) in err


@pytest.mark.parametrize("argv", [("summary", CLEAN), ("audit", CLEAN), ("messages", CLEAN)],
                         ids=lambda a: a[0])
def test_commands_that_write_no_part_files_do_not_mention_them(argv, monkeypatch, capsys):
    code, err = _interrupted(monkeypatch, capsys, *argv)
    assert code == EXIT_INTERRUPTED
    assert err.startswith("interrupted") and ".part" not in err and err.count("\n") == 1


def test_an_interrupted_audit_names_its_partial_csv_files(monkeypatch, capsys, tmp_path):
    code, err = _interrupted(monkeypatch, capsys, "audit", CLEAN, "--csv", tmp_path / "c")
    assert code == EXIT_INTERRUPTED and f"the CSV files in {tmp_path / 'c'} are partial" in err


# -- messages: a filter that matches nothing is a usage error (item 11) -----------------------

@pytest.mark.parametrize("flag, value", [
    ("--dump", "9"), ("--client", "1.2.3"), ("--client", "10.9.9.9"), ("--frames", "40-25"),
    ("--frames", "0-5"), ("--frames", "5000-"), ("--dump", "0"),
])
def test_an_impossible_messages_filter_is_a_usage_error_naming_the_value(flag, value):
    p = cli("messages", MULTI, flag, value)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    err = one_line_error(p)
    assert value.rstrip("-") in err and flag in err


def test_messages_exits_by_the_dumps_it_shows():
    # multi-client: dumps 1 and 2 are complete, dump 3 is not
    assert cli("messages", MULTI, "--dump", "1").returncode == 0
    assert cli("messages", MULTI, "--client", "10.0.1.2").returncode == 0
    assert cli("messages", MULTI, "--dump", "3").returncode == 3
    assert cli("messages", MULTI).returncode == 3


def test_a_valid_frame_range_past_the_dumps_lists_only_the_header():
    p = cli("messages", CLEAN, "--frames", "374")  # the last frame: one ACK
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 2


# -- the same file twice is read once (item 13) ----------------------------------------------

def test_the_same_capture_twice_is_read_once_with_a_warning(tmp_path):
    link = tmp_path / "again.pcap"
    os.symlink(CLEAN, link)
    p = cli("summary", CLEAN, link, CLEAN, "--json", "-")
    report = json.loads(p.stdout)
    assert p.returncode == 0
    assert [c["path"] for c in report["captures"]] == [str(CLEAN)]
    assert len(report["sessions"]) == 1
    warnings = [x for x in p.stderr.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 2 and all("reading it once" in w for w in warnings)


def test_a_copy_of_a_capture_is_another_file(tmp_path):
    copy = tmp_path / "copy.pcap"
    shutil.copyfile(CLEAN, copy)
    p = cli("summary", CLEAN, copy, "--json", "-")
    assert len(json.loads(p.stdout)["sessions"]) == 2 and "warning" not in p.stderr


# -- frames are Wireshark's, per file (item 16) ----------------------------------------------

def test_frames_of_a_second_file_are_numbered_within_it():
    p = cli("summary", CLEAN, MULTI, "--json", "-")
    report = json.loads(p.stdout)
    alone = json.loads(cli("summary", MULTI, "--json", "-").stdout)
    later = report["sessions"][1:]
    keys = ("first_frame", "last_frame", "finished_frame")
    assert [[s[k] for k in keys] for s in later] == \
        [[s[k] for k in keys] for s in alone["sessions"]]
    assert all(s["first_frame_file"] == str(MULTI) for s in later)
    assert all(s["file"] == str(MULTI) for s in later)
    assert report["sessions"][0]["first_frame_file"] == str(CLEAN)
    assert later[2]["first_frame"] == 27  # the example: frame 27 of the second file


def test_anomalies_carry_their_file_and_frame_within_it(tmp_path):
    c, _ = clean_dump(size=3000, path=b"../x")
    one = write_pcap(tmp_path / "one.pcap", c.items)
    p = cli("summary", CLEAN, one, "--json", "-")
    (a,) = json.loads(p.stdout)["sessions"][1]["anomalies"]
    assert a["kind"] == "path-refused" and a["file"] == str(one) and a["frame"] == 1


def test_audit_frames_are_numbered_within_their_file_too():
    both = json.loads(cli("audit", "-q", CLEAN, MULTI, "--json", "-").stdout)
    alone = json.loads(cli("audit", "-q", MULTI, "--json", "-").stdout)
    for s, t in zip(both["sessions"][1:], alone["sessions"]):
        for event in ("herald", "first_data", "kdh", "finished"):
            got, want = s["audit"]["timeline"][event], t["audit"]["timeline"][event]
            assert got["frame"] == want["frame"] and got["file"] == str(MULTI)


def test_messages_names_the_file_of_each_frame_when_several_are_read():
    both = cli("messages", CLEAN, MULTI).stdout.splitlines()
    alone = cli("messages", MULTI).stdout.splitlines()
    assert both[0].split()[:2] == ["file", "frame"]
    second = [x.split() for x in both[1:] if x.startswith(str(MULTI) + " ")]
    assert [x[1] for x in second] == [x.split()[0] for x in alone[1:]]
    assert any(x[-3:] == ["of", str(MULTI), x[-1]] or f"of {MULTI}" in " ".join(x)
               for x in second if "ACK" in x)


def test_a_single_file_keeps_plain_frame_numbers():
    lines = cli("messages", MULTI).stdout.splitlines()
    assert lines[0].split()[0] == "frame" and f" of {MULTI}" not in "".join(lines)
    assert all(x.split()[0].isdigit() for x in lines[1:])


# -- progress (item 19) ----------------------------------------------------------------------

def test_progress_shows_bytes_rate_and_time_left_on_a_terminal(tmp_path):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", "summary", CLEAN],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=60)
    os.close(master)
    text = seen.decode()
    size = CLEAN.stat().st_size
    assert "reading" in text and f"of {size / 1024:.1f} KiB" in text
    assert "/s, " in text and " left" in text


def test_no_progress_when_standard_error_is_not_a_terminal():
    p = cli("summary", CLEAN)
    assert p.stderr == ""
