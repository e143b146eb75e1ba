"""Issue 10, item by item: truthful reports, errors that name their cause, one number for
one thing, captures that other tools wrote. Item numbers are the issue's."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.contracts import dump_build as D
from tests.contracts import wire_build as W

IP = "192.0.2.7"
IMAGE = D.minidump().image  # 122880 bytes


def _capture(tmp, name="c.pcap", **kw):
    s = W.Session(dump=IMAGE, kdh=W.kdh(len(IMAGE)), **kw)
    W.write_capture(tmp / name, [s])
    return tmp / name


def _one_line_error(res, code):
    assert res.code == code, res
    assert res.err.startswith("error: ") and len(res.err.strip().splitlines()) == 1, res


def _info(out, n=0):
    return (out / f"info.{IP}.{n}").read_text()


# ---- the report never claims more than the data shows --------------------------------

def test_item1_max_dump_size_refused_data_is_missing(tmp, run):
    res = run("extract", _capture(tmp), "--max-dump-size", "100k", "-o", tmp / "o",
              "--json", tmp / "r.json")
    assert res.code == 3, res
    s = json.loads((tmp / "r.json").read_text())["sessions"][0]
    assert s["status"] == "incomplete"
    assert [102400, len(IMAGE)] in s["vmcore"]["missing"] or \
        s["vmcore"]["missing"][-1][1] == len(IMAGE)
    info = _info(tmp / "o")
    assert "data beyond --max-dump-size refused" in info
    assert "Dump complete" not in info


def test_item1_max_dump_size_zero_is_not_complete(tmp, run):
    res = run("extract", _capture(tmp), "--max-dump-size", "0", "-o", tmp / "o")
    assert res.code == 3, res
    assert "complete, 0 bytes" not in res.out.replace("incomplete", "")


def _cut(tmp, keep=20000):
    data = (_capture(tmp)).read_bytes()
    (tmp / "cut.pcap").write_bytes(data[:keep])
    return tmp / "cut.pcap"


def _frames(data: bytes) -> int:
    """Complete records of a classic pcap."""
    pos, n = 24, 0
    while pos + 16 <= len(data):
        incl = int.from_bytes(data[pos + 8:pos + 12], "little")
        if pos + 16 + incl > len(data):
            break
        pos, n = pos + 16 + incl, n + 1
    return n


def test_item2_cut_capture_status_names_the_frame(tmp, run):
    cut = _cut(tmp)
    frames = _frames(cut.read_bytes())
    res = run("extract", cut, "-o", tmp / "o", "--json", tmp / "r.json")
    assert res.code == 3, res
    # the cut record is not a frame (item 26), but it is where the capture ends
    assert f"Dump incomplete: the capture ends mid-dump, at frame {frames + 1}" in \
        _info(tmp / "o")
    assert "client timed out" not in _info(tmp / "o")
    assert "cut" in res.out + res.err


def test_item2_cut_record_is_truncated_capture_only(tmp, run):
    res = run("summary", _cut(tmp), "--json", "-")
    report = res.json()
    kinds = [a["kind"] for a in report["anomalies"]] + \
        [a["kind"] for s in report["sessions"] for a in s["anomalies"]]
    assert "truncated-capture" in kinds
    assert "snaplen-truncated" not in kinds


def test_item2_audit_says_cut_and_agrees_on_unique_bytes(tmp, run):
    cut = _cut(tmp)
    audit = run("audit", cut, "--json", tmp / "a.json")
    assert "cut" in audit.out, audit
    a = json.loads((tmp / "a.json").read_text())["sessions"][0]
    s = run("summary", cut, "--json", "-").json()["sessions"][0]
    assert a["vmcore"]["received"] == s["vmcore"]["received"]
    assert a["audit"]["timeline"]["capture_cut"]


def test_item3_no_kdh_says_length_unknown(tmp, run):
    s = W.Session(dump=IMAGE, kdh=None, drop_finished=True)
    W.write_capture(tmp / "n.pcap", [s])
    res = run("extract", tmp / "n.pcap", "-o", tmp / "o")
    assert res.code == 3
    assert f"{len(IMAGE)} bytes received, dump length unknown (no KDH)" in res.out, res


def test_item4_refused_herald_path_on_the_terminal(tmp, run):
    res = run("extract", _capture(tmp, path="../../etc"), "-o", tmp / "o")
    assert "path '../../etc' refused, saved in the output directory" in res.out, res
    assert (tmp / "o" / f"vmcore.{IP}.0").exists()
    assert not (tmp / "etc").exists()


def test_item5_sha256_same_in_summary_and_extract_when_whole(tmp, run):
    cap = _capture(tmp)
    ex = run("extract", cap, "-o", tmp / "o", "--json", "-").json()["sessions"][0]
    su = run("summary", cap, "--json", "-").json()["sessions"][0]
    import hashlib
    assert ex["vmcore"]["sha256"] == su["vmcore"]["sha256"] == hashlib.sha256(IMAGE).hexdigest()


def test_item5_sha256_absent_in_summary_exactly_as_documented(tmp, run):
    cap = _capture(tmp, lose={(W.VMCORE, 1448)})
    su = run("summary", cap, "--json", "-").json()["sessions"][0]
    ex = run("extract", cap, "-o", tmp / "o", "--json", "-").json()["sessions"][0]
    assert su["vmcore"]["sha256"] is None  # README: null in summary whenever holes
    assert ex["vmcore"]["sha256"] is not None


# ---- errors name their cause, at once --------------------------------------------------

def test_item6_json_into_missing_folder_fails_before_reading(tmp, run):
    res = run("summary", tmp / "nonexistent.pcap", "--json", tmp / "nope" / "r.json")
    _one_line_error(res, 1)
    assert "nope" in res.err


@pytest.mark.parametrize("opt", ["--csv", "--plot"])
def test_item6_audit_output_dir_that_is_a_file(tmp, run, opt):
    (tmp / "plain.txt").write_text("x")
    res = run("audit", _capture(tmp), opt, tmp / "plain.txt")
    _one_line_error(res, 1)
    assert "plain.txt" in res.err and "not a directory" in res.err


def test_item6_read_only_output_named_before_any_dump_line(tmp, run):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    ro = tmp / "ro"
    ro.mkdir(mode=0o555)
    res = run("extract", _capture(tmp), "-o", ro / "sub")
    _one_line_error(res, 1)
    assert "INCOMPLETE" not in res.out


def test_item7_directory_as_capture_exits_1(tmp, run):
    (tmp / "dumps").mkdir()
    res = run("summary", tmp / "dumps")
    _one_line_error(res, 1)


@pytest.mark.parametrize("sub", [False, True], ids=["-o FILE", "-o FILE/sub"])
def test_item7_output_that_is_a_file_exits_1(tmp, run, sub):
    (tmp / "plain.txt").write_text("x")
    target = tmp / "plain.txt" / "sub" if sub else tmp / "plain.txt"
    res = run("extract", _capture(tmp), "-o", target)
    _one_line_error(res, 1)
    assert (tmp / "plain.txt").read_text() == "x"


@pytest.mark.parametrize("argv", [["messages"], ["audit"], ["summary", "--json", "-"]],
                         ids=["messages", "audit", "summary-json"])
def test_item8_broken_pipe_stops_quietly(tmp, argv):
    cap = _capture(tmp)
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", argv[0], str(cap), *argv[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "100"})
    proc.stdout.read(50)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert "error" not in err and "Broken pipe" not in err, err  # dump lines may go there
    assert code in (0, 3, 141, -signal.SIGPIPE), code


def test_item10_probability_outside_0_1_is_a_usage_error(tmp, run):
    res = run("simulate", "--loss", "1.5", "-o", tmp / "s.pcap")
    assert res.code == 2, res
    assert not (tmp / "s.pcap").exists()


@pytest.mark.parametrize("flt", [["--dump", "9"], ["--client", "1.2.3"],
                                 ["--frames", "40-25"]], ids=["dump", "client", "frames"])
def test_item11_impossible_messages_filter_is_a_usage_error(tmp, run, flt):
    res = run("messages", _capture(tmp), *flt)
    _one_line_error(res, 2)
    assert flt[1] in res.err


def test_item11_messages_exit_status_reflects_the_dumps_shown(tmp, run):
    assert run("messages", _capture(tmp)).code == 0
    assert run("messages", _capture(tmp, "l.pcap", lose={(W.VMCORE, 1448)})).code == 3


def test_item12_wireshark_install_to_missing_tshark_fails(tmp, run):
    res = run("wireshark", "install", "--tshark", tmp / "nonexist")
    assert res.code == 2, res


def test_item13_same_capture_twice_read_once_with_warning(tmp, run):
    cap = _capture(tmp)
    res = run("summary", cap, cap, "--json", "-")
    assert len(res.json()["sessions"]) == 1
    assert "warning" in res.err.lower()


# ---- one number for one thing ------------------------------------------------------------

def test_item14_audit_retransmissions_captured_equals_retransmits(tmp, run):
    cap = _capture(tmp, resend={(W.VMCORE, 1448), (W.VMCORE, 65536)})
    s = run("summary", cap, "--json", "-").json()["sessions"][0]
    assert s["retransmits"] == 2
    run("audit", cap, "--json", tmp / "a.json")
    a = json.loads((tmp / "a.json").read_text())["sessions"][0]["audit"]
    assert a["retransmissions"]["captured"] == s["retransmits"]


def test_item16_frames_of_a_second_file_are_numbered_in_that_file(tmp, run):
    a = _capture(tmp, "a.pcap")
    b = tmp / "b.pcap"
    W.write_capture(b, [W.Session(client="192.0.2.8", dump=IMAGE, kdh=W.kdh(len(IMAGE)))])
    report = run("summary", a, b, "--json", "-").json()
    second = [s for s in report["sessions"] if s["client"] == "192.0.2.8"][0]
    assert second["first_frame"] == 1
    assert second["first_frame_file"] == str(b)


# ---- what users expect of a command line ------------------------------------------------

@pytest.mark.parametrize("cmd,schema", [("summary", "report"), ("audit", "audit")])
def test_item21_reports_validate_against_the_shipped_schemas(tmp, run, cmd, schema):
    import jsonschema
    import analyzer
    folder = os.path.join(os.path.dirname(analyzer.__file__), "schemas")
    names = [n for n in os.listdir(folder) if "schema" in n and n.endswith(".json")]
    assert {"report.schema.json", "audit.schema.json", "inspect.schema.json"} <= set(names)
    with open(os.path.join(folder, f"{schema}.schema.json")) as f:
        doc = json.load(f)
    cap = _capture(tmp, lose={(W.VMCORE, 1448)})
    if cmd == "audit":
        run("audit", cap, "--json", tmp / "r.json")
        report = json.loads((tmp / "r.json").read_text())
    else:
        report = run(cmd, cap, "--json", "-").json()
    jsonschema.validate(report, doc)


def test_item21_inspect_report_validates(tmp, run):
    import jsonschema
    import analyzer
    path = os.path.join(os.path.dirname(analyzer.__file__), "schemas", "inspect.schema.json")
    with open(path) as f:
        doc = json.load(f)
    (tmp / f"vmcore.{IP}.0").write_bytes(IMAGE)
    res = run("inspect", tmp / f"vmcore.{IP}.0", "--json", "-")
    jsonschema.validate(res.json(), doc)


def test_item23_part_files_of_an_interrupted_run_are_named(tmp, run):
    out = tmp / "o"
    out.mkdir()
    (out / f"vmcore.{IP}.0.part").write_bytes(b"old")
    res = run("extract", _capture(tmp), "-o", out, "--json", tmp / "r.json")
    assert f"vmcore.{IP}.0.part" in res.err
    report = json.loads((tmp / "r.json").read_text())
    kinds = [a["kind"] for a in report["anomalies"]]
    assert "part-files-found" in kinds
    assert (out / f"vmcore.{IP}.0.part").read_bytes() == b"old"


# ---- captures that other tools wrote ------------------------------------------------------

def _frames_of(tmp):
    s = W.Session(dump=IMAGE, kdh=W.kdh(len(IMAGE)))
    return W.session_frames(s)


def test_item24_record_over_the_header_snaplen_is_read_on(tmp, run):
    frames = _frames_of(tmp)
    (tmp / "s.pcap").write_bytes(W.pcap_bytes(frames, snaplen=1000))
    res = run("summary", tmp / "s.pcap", "--json", "-")
    report = res.json()
    assert report["captures"][0]["frames"] == len(frames)
    assert report["sessions"][0]["status"] == "complete"
    kinds = [a["kind"] for a in report["anomalies"]] + \
        [a["kind"] for s in report["sessions"] for a in s["anomalies"]]
    assert "oversized-record" in kinds


def test_item25_pcapng_whose_first_interface_is_not_decoded(tmp, run):
    frames = [(t, f, 1) for t, f in _frames_of(tmp)]
    wifi = [(999.0, b"\x00" * 40, 0)]
    (tmp / "m.pcapng").write_bytes(W.pcapng_bytes(wifi + frames, linktypes=(127, 1)))
    res = run("summary", tmp / "m.pcapng", "--json", "-")
    assert res.code == 0, res
    assert res.json()["sessions"][0]["status"] == "complete"


def test_item26_cut_final_record_is_not_a_frame(tmp, run):
    frames = _frames_of(tmp)
    data = W.pcap_bytes(frames)
    (tmp / "c.pcap").write_bytes(data[:-10])
    report = run("summary", tmp / "c.pcap", "--json", "-").json()
    assert report["captures"][0]["frames"] == len(frames) - 1


def test_item27_undecoded_link_type_is_counted_and_reported(tmp, run):
    frames = [(1.0 + i, bytes(60)) for i in range(5)]
    (tmp / "w.pcap").write_bytes(W.pcap_bytes(frames, linktype=105))  # 802.11
    res = run("summary", tmp / "w.pcap", "--json", "-")
    assert res.code == 0, res
    report = res.json()
    assert report["captures"][0]["frames"] == 5
    assert "unsupported-link" in [a["kind"] for a in report["anomalies"]]


def test_item28_kuznetzov_modified_pcap_is_read(tmp, run):
    frames = _frames_of(tmp)
    (tmp / "k.pcap").write_bytes(W.pcap_bytes(frames, magic=0xA1B2CD34))
    res = run("summary", tmp / "k.pcap", "--json", "-")
    assert res.code == 0, res
    assert res.json()["sessions"][0]["status"] == "complete"
    assert res.json()["captures"][0]["frames"] == len(frames)


def test_item9_interrupted_simulate_leaves_no_capture_under_its_name(tmp):
    out = tmp / "big.pcap"
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", "simulate", "--size", "400m",
                             "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(tmp.iterdir()):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("simulate finished before the interrupt")
    assert proc.returncode == 130
    assert not out.exists()
    assert b"part" not in err
