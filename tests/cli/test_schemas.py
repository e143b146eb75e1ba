"""The JSON Schemas shipped in analyzer/schemas describe the reports exactly: every report
of every sample follows its schema, and a report with a key missing or of the wrong type
does not (a schema that accepts anything would pass the first test alone)."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.schemas import NAMES, load
from tests.support.schema_check import check_report, errors

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))


def report_of(*args) -> dict:
    p = subprocess.run([sys.executable, "-m", "analyzer", *map(str, args), "--json", "-"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode in (0, 3), p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def lossy_audit() -> dict:
    return report_of("audit", "-q", SAMPLES / "lossy-12x.pcapng")


@pytest.mark.parametrize("name", NAMES)
def test_each_schema_ships_in_the_package_with_its_id(name):
    schema = load(name)
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["$id"].endswith(f"/{name}.schema.json")


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("command", ["summary", "audit"])
def test_every_sample_report_follows_its_schema(capture, command):
    check_report(report_of(command, "-q", capture), "audit" if command == "audit" else "report")


def test_a_report_of_several_files_with_an_unreadable_one_follows_the_schema(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    p = subprocess.run([sys.executable, "-m", "analyzer", "summary", SAMPLES / "restart.pcap",
                        bad, SAMPLES / "multi-client.pcapng", "--json", "-"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    report = check_report(json.loads(p.stdout), "report")
    assert report["error"] and report["captures"][1]["error"]


def _broken(report: dict, path: list, value=KeyError) -> dict:
    out = copy.deepcopy(report)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


@pytest.mark.parametrize("path, value", [
    (["sessions", 0, "status"], KeyError),
    (["sessions", 0, "status"], "done"),
    (["sessions", 0, "vmcore", "missing"], [[1, 2, 3]]),
    (["sessions", 0, "vmcore", "sha256"], "not-a-hash"),
    (["sessions", 0, "first_frame"], "1"),
    (["sessions", 0, "first_frame_file"], KeyError),
    (["sessions", 0, "client"], "10.0.0"),
    (["sessions", 0, "kdh", "dumplength"], -1),
    (["sessions", 0, "messages", "PING"], 1),
    (["sessions", 0, "anomalies"], [{"kind": "runt", "frame": 3, "detail": "x"}]),
    (["captures", 0, "frames"], None),
    (["tool"], KeyError),
])
def test_a_report_that_breaks_the_contract_is_refused(path, value):
    report = report_of("summary", SAMPLES / "clean-13x.pcap")
    assert errors(report, "report") == []
    assert errors(_broken(report, path, value), "report")


@pytest.mark.parametrize("path, value", [
    (["sessions", 0, "audit"], KeyError),
    (["sessions", 0, "audit", "retransmissions", "total"], -3),
    (["sessions", 0, "audit", "timeline", "kdh"], {"frame": 0}),
    (["sessions", 0, "audit", "rtt"], {"count": 5}),
    (["sessions", 0, "audit", "problems"], [{"severity": "fatal", "kind": "x", "detail": ""}]),
    (["sessions", 0, "audit", "advice"], KeyError),
    (["sessions", 0, "audit", "advice"], [{"kind": "raise retries"}]),
    (["sessions", 0, "audit", "bursts", "vmcore"], KeyError),
    (["sessions", 0, "audit", "bursts", "vmcore"], -1),
    (["sessions", 0, "audit", "retransmissions", "captured"], KeyError),
    (["sessions", 0, "audit", "retransmissions", "captured"], "4"),
    (["sessions", 0, "audit", "timeline", "capture_cut"], KeyError),
    (["sessions", 0, "audit", "timeline", "capture_cut"], {"frame": 15}),
    (["sessions", 0, "audit", "vantage"], {"order": ["mirror"]}),
])
def test_an_audit_report_that_breaks_the_contract_is_refused(lossy_audit, path, value):
    assert errors(lossy_audit, "audit") == []
    assert errors(_broken(lossy_audit, path, value), "audit")


def test_a_cut_capture_audit_follows_the_schema_with_its_cut(tmp_path):
    cut = tmp_path / "t.pcap"
    cut.write_bytes((SAMPLES / "clean-13x.pcap").read_bytes()[:20000])
    report = check_report(report_of("audit", "-q", cut), "audit")
    assert report["sessions"][0]["audit"]["timeline"]["capture_cut"]["frame"] == 15
    bad = _broken(report, ["sessions", 0, "audit", "timeline", "capture_cut", "detail"])
    assert errors(bad, "audit")


def test_an_audit_merge_report_follows_the_schema_with_its_vantage(tmp_path):
    from analyzer.simulate import DumpSpec
    from analyzer.simulate.vantage import TapSpec, simulate_vantage
    taps = [TapSpec("mirror", 0.5, miss_packets=(6, 17)), TapSpec("server", 1.0)]
    paths = {t.name: str(tmp_path / f"{t.name}.pcap") for t in taps}
    simulate_vantage(paths, taps, DumpSpec(generation="12", size=128 << 10))
    report = check_report(report_of("audit", "-q", "--merge", paths["mirror"],
                                    paths["server"]), "audit")
    vantage = report["sessions"][0]["audit"]["vantage"]
    assert vantage["order"] == [paths["mirror"], paths["server"]]
    assert vantage["transmissions"]["seen_by"][paths["mirror"]] < vantage["transmissions"]["total"]
    for path, value in ((["transmissions", "seen_by"], {"mirror": -1}), (["order"], "mirror"),
                        (["lost_between"], [{"from": "a", "to": "b", "count": 0}]),
                        (["tap_drops"], KeyError)):
        assert errors(_broken(report, ["sessions", 0, "audit", "vantage", *path], value),
                      "audit")


def test_an_extract_report_is_an_audit_report_only_with_audits(lossy_audit):
    plain = report_of("summary", SAMPLES / "lossy-12x.pcapng")
    assert errors(plain, "report") == [] and errors(plain, "audit")
    assert errors(lossy_audit, "report") == []  # audit adds keys, renames none


INSPECT = {"dumps": [{
    "file": "out/vmcore.10.0.0.1.0", "format": "minidump", "arch": "amd64",
    "length": 2 * 1024 * 1024, "missing": [[69632, 73728]],
    "minidump": {
        "version": 2, "msgbufsize": 65536, "bitmapsize": 4096, "pmapsize": 8192,
        "dumpavailsize": 0, "kernbase": 0xFFFFFFFF80000000, "dmapbase": 0xFFFFF80000000000,
        "dmapend": 0xFFFFFC0000000000,
        "sections": [{"name": "header", "offset": 0, "length": 4096, "missing_bytes": 0},
                     {"name": "pages", "offset": 81920, "length": 1966080,
                      "missing_bytes": 4096}],
        "pages_total": 480, "pages_lost": 1, "lost_pages_pa": [[0x200000, 0x201000]],
        "length_ok": True},
    "msgbuf": {"text": "panic: page fault\n", "missing": [], "panic": "page fault",
               "version_line": None},
    "kdh": None, "kgdb": "degraded", "problems": ["1 page lost"]},
    {"file": "out/vmcore_encrypted.10.0.0.2.0", "format": "encrypted", "arch": None,
     "length": 8192, "missing": [], "minidump": None, "msgbuf": None, "kdh": {"hostname": "a"},
     "kgdb": "unusable", "problems": ["encrypted: decrypt it first"]}]}


def test_a_report_following_the_inspect_contract_is_accepted():
    assert errors(INSPECT, "inspect") == []


@pytest.mark.parametrize("path, value", [
    (["dumps", 0, "kgdb"], "maybe"),
    (["dumps", 0, "format"], "tar"),
    (["dumps", 0, "minidump", "lost_pages_pa"], [[1]]),
    (["dumps", 0, "minidump", "sections", 0, "name"], "stack"),
    (["dumps", 0, "msgbuf", "panic"], KeyError),
    (["dumps", 1, "problems"], KeyError),
    (["dumps", 1, "length"], 1.5),
])
def test_an_inspect_report_that_breaks_the_contract_is_refused(path, value):
    assert errors(_broken(INSPECT, path, value), "inspect")


def test_the_inspect_command_writes_reports_that_follow_the_schema(tmp_path):
    import click

    from analyzer.cli import cli
    if "inspect" not in cli.list_commands(click.Context(cli)):
        pytest.skip("the inspect command is not in this tree yet")
    out = tmp_path / "out"
    for capture in CAPTURES:
        subprocess.run([sys.executable, "-m", "analyzer", "extract", "-q", capture, "-o", out],
                       capture_output=True, timeout=120)
    dumps = sorted(str(p) for p in out.rglob("*") if p.is_file()
                   and p.name.split(".")[0] in ("vmcore", "vmcore_encrypted", "info"))
    assert dumps
    p = subprocess.run([sys.executable, "-m", "analyzer", "inspect", *dumps, "--json", "-"],
                       capture_output=True, text=True, timeout=300)
    assert "Traceback" not in p.stderr
    report = json.loads(p.stdout)
    assert len(report["dumps"]) == len(dumps)
    check_report(report, "inspect")


def test_a_session_may_carry_its_inspect_entry_in_the_inspect_shape():
    report = report_of("summary", SAMPLES / "clean-13x.pcap")
    report["sessions"][0]["inspect"] = copy.deepcopy(INSPECT["dumps"][0])
    assert errors(report, "report") == []
    report["sessions"][0]["inspect"]["kgdb"] = "maybe"
    assert errors(report, "report")
