"""Issue 10 item 21, as a user checks it: each shipped schema file validates its report with a
plain ``jsonschema.validate`` (no registry, nothing fetched), and the files are the bundles of
their parts."""
from __future__ import annotations

import copy
import json
import os

import jsonschema
import pytest

import analyzer
from analyzer.schemas import NAMES, bundled_text
from tests.contracts import dump_build as D
from tests.contracts import wire_build as W

FOLDER = os.path.join(os.path.dirname(analyzer.__file__), "schemas")


def _shipped(name):
    with open(os.path.join(FOLDER, f"{name}.schema.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_schema_is_the_bundle_of_its_parts(name):
    with open(os.path.join(FOLDER, f"{name}.schema.json"), encoding="utf-8") as f:
        assert f.read() == bundled_text(name), "run: python -m analyzer.schemas"


def _never_fetch(monkeypatch):
    import urllib.request

    def refuse(*a, **k):
        raise AssertionError("the schema made the validator fetch a reference")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_extract_report_with_inspect_validates_standalone(tmp, run, monkeypatch):
    _never_fetch(monkeypatch)
    img = D.minidump().image
    W.write_capture(tmp / "c.pcap", [W.Session(dump=img, kdh=W.kdh(len(img)))])
    res = run("extract", tmp / "c.pcap", "-o", tmp / "o", "--json", "-")
    report = res.json()
    assert report["sessions"][0]["inspect"]
    jsonschema.validate(report, _shipped("report"))
    broken = copy.deepcopy(report)
    broken["sessions"][0]["inspect"]["kgdb"] = 7
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _shipped("report"))


def test_audit_report_validates_standalone(tmp, run, monkeypatch):
    _never_fetch(monkeypatch)
    img = D.minidump().image
    W.write_capture(tmp / "c.pcap", [W.Session(dump=img, kdh=W.kdh(len(img)))])
    run("audit", tmp / "c.pcap", "--json", tmp / "a.json")
    report = json.loads((tmp / "a.json").read_text())
    jsonschema.validate(report, _shipped("audit"))
    broken = copy.deepcopy(report)
    del broken["sessions"][0]["client"]  # a key of the report part, not of the audit part
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _shipped("audit"))
