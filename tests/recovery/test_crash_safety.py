"""An interrupted or killed extraction never leaves a file that looks complete.

One big simulated capture (a 256 MiB dump) is extracted three times into the same output
directory: a run stopped with SIGINT while it writes, a run killed with SIGKILL while it
writes, then a full run. The partial runs may leave data only under ``*.part`` names and
info files whose last line says "Dump incomplete"; the full run takes the next free index,
writes the correct dump and touches nothing the partial runs left.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analyzer.simulate import DumpSpec, simulate

SIZE = 256 << 20
HOST = "192.0.2.10"


def _sha_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def _listing(out: Path) -> dict[str, tuple]:
    """name -> (size, mtime_ns, sha256) of every regular file in ``out`` (flat)."""
    if not out.exists():
        return {}
    res = {}
    for name in os.listdir(out):
        p = out / name
        st = os.lstat(p)
        res[name] = (st.st_size, st.st_mtime_ns, _sha_file(p))
    return res


def _cmd(capture: Path, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "analyzer", "extract", str(capture), "-o", str(out), "-q",
            *map(str, extra)]


def _interrupt(capture: Path, out: Path, sig: int) -> dict:
    """Start an extraction, send ``sig`` once it is writing, return what it left."""
    before = set(os.listdir(out)) if out.exists() else set()
    env = {k: v for k, v in os.environ.items() if k != "NETDUMP_ANALYZER_DEBUG"}
    p = subprocess.Popen(_cmd(capture, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    started = time.monotonic()
    try:
        while True:
            if p.poll() is not None:
                pytest.fail(f"the extraction ended (status {p.returncode}) before it could be "
                            "interrupted; make the capture bigger")
            new = [n for n in (os.listdir(out) if out.exists() else []) if n not in before]
            if any(n.endswith(".part") and os.path.getsize(out / n) >= 8 << 20 for n in new):
                break
            if time.monotonic() - started > 60:
                pytest.fail("the extraction wrote nothing in 60 s")
            time.sleep(0.005)
        elapsed = time.monotonic() - started
        p.send_signal(sig)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    after = _listing(out)
    return {"code": p.returncode, "stdout": stdout, "stderr": stderr, "elapsed": elapsed,
            "new": {n: v for n, v in after.items() if n not in before}, "after": after}


def _looks_complete(out: Path, names) -> list[str]:
    """Files among ``names`` that would pass for a finished dump."""
    bad = []
    for name in names:
        if name.startswith(("vmcore", "key.")) and not name.endswith(".part"):
            bad.append(f"{name}: dump data under a final name")
        if name.startswith("info.") and not name.endswith(".part"):
            lines = (out / name).read_bytes().splitlines()
            if not lines or not lines[-1].startswith(b"Dump incomplete"):
                bad.append(f"{name}: last line {lines[-1:]!r}")
    return bad


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash")
    capture, truth = simulate(d / "big.pcap", DumpSpec(generation="13", size=SIZE), seed=7)
    core = truth.dumps[0].session.core_name
    expected = truth.files()[core]["sha256"]
    out = d / "out"
    sigint = _interrupt(capture, out, signal.SIGINT)
    sigkill = _interrupt(capture, out, signal.SIGKILL)
    before_full = _listing(out)
    report = d / "report.json"
    full = subprocess.run(_cmd(capture, out, "--json", report), capture_output=True, text=True,
                          timeout=300)
    return {"out": out, "expected": expected, "sigint": sigint, "sigkill": sigkill,
            "before_full": before_full, "full": full,
            "report": json.loads(report.read_text()) if report.exists() else None}


def test_sigint_exits_130_with_a_one_line_message(runs):
    r = runs["sigint"]
    assert r["code"] == 130, r["stderr"]
    assert "Traceback" not in r["stderr"]
    text = r["stderr"].strip()
    assert text and "\n" not in text, r["stderr"]
    assert "interrupt" in text


def test_sigint_leaves_dump_data_only_under_part_names(runs):
    r = runs["sigint"]
    assert r["new"], "the interrupted run left nothing at all"
    assert _looks_complete(runs["out"], r["new"]) == []


def test_sigint_leaves_no_info_file_saying_complete(runs):
    r = runs["sigint"]
    infos = [n for n in r["new"] if n.startswith("info.") and not n.endswith(".part")]
    assert infos
    for name in infos:
        last = (runs["out"] / name).read_bytes().splitlines()[-1]
        assert last.startswith(b"Dump incomplete"), (name, last)


def test_sigkill_leaves_nothing_that_looks_complete(runs):
    r = runs["sigkill"]
    assert r["code"] == -signal.SIGKILL
    assert any(n.endswith(".part") for n in r["new"]), r["new"]
    assert [n for n in r["new"] if n.startswith("info.")], r["new"]
    assert _looks_complete(runs["out"], r["new"]) == []


def test_a_full_run_after_interruptions_takes_new_indices_and_is_correct(runs):
    full, rep, out = runs["full"], runs["report"], runs["out"]
    assert full.returncode == 0, full.stderr
    (s,) = rep["sessions"]
    assert s["status"] == "complete"
    taken = {int(n.split(".")[5]) for n in runs["before_full"] if n.startswith("info." + HOST)}
    index = max(taken) + 1
    assert s["files"] == [f"info.{HOST}.{index}", f"vmcore.{HOST}.{index}"]
    assert s["vmcore"]["sha256"] == runs["expected"]
    assert _sha_file(out / f"vmcore.{HOST}.{index}") == runs["expected"]
    assert (out / f"info.{HOST}.{index}").read_bytes().splitlines()[-1] == b"Dump complete"
    # What the interrupted runs left is untouched: same names, sizes, times and bytes.
    after = _listing(out)
    assert {n: after.get(n) for n in runs["before_full"]} == runs["before_full"]
    assert set(after) - set(runs["before_full"]) == set(s["files"])
