"""Issue 11, item by item: pipes, FIFOs, growing files, ring buffers, each dump finished the
moment it ends, --json-lines and the --exec hook. Captures are written by this test, as a
capture tool would write them (no real capture tool: those tests live in tests/capture)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.contracts import dump_build as D
from tests.contracts import wire_build as W

IP = "192.0.2.7"
IMAGE = D.minidump().image


def _frames(**kw):
    return W.session_frames(W.Session(dump=IMAGE, kdh=W.kdh(len(IMAGE)), **kw))


def _pcap(tmp, name="c.pcap", **kw):
    (tmp / name).write_bytes(W.pcap_bytes(_frames(**kw)))
    return tmp / name


def _comparable(report):
    """The report without what names the input."""
    for c in report["captures"]:
        c.pop("path", None)
    for s in report["sessions"]:
        for k in list(s):
            if k == "file" or k.endswith("_file") or k.endswith("_files"):
                s.pop(k)
        for a in s["anomalies"]:
            a.pop("file", None)
    return report


def _popen(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "analyzer", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _wait_for(pred, timeout=90.0):  # generous: a loaded CI machine starts Python slowly
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False

@contextlib.contextmanager
def _following(cap, frames, out):
    """``extract --follow`` over a capture of ``frames``, stopped by SIGTERM afterwards."""
    cap.write_bytes(W.pcap_bytes(frames))
    proc = _popen("extract", "--follow", cap, "-o", out, "--idle", "60")
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


# ---- input ----------------------------------------------------------------------------

def test_stdin_dash_gives_the_same_report_as_the_file(tmp, run):
    cap = _pcap(tmp)
    from_file = run("summary", cap, "--json", "-").json()
    with open(cap, "rb") as f:
        from_pipe = run("summary", "-", "--json", "-", stdin=f)
    assert from_pipe.code == 0, from_pipe
    assert _comparable(from_pipe.json()) == _comparable(from_file)


def test_extract_from_stdin_writes_the_dump(tmp, run):
    data = _pcap(tmp).read_bytes()
    res = run("extract", "-", "-o", tmp / "o", input_bytes=data)
    assert res.code == 0, res
    assert (tmp / "o" / f"vmcore.{IP}.0").read_bytes() == IMAGE


def test_gzip_compressed_capture_on_a_pipe(tmp, run):
    import gzip
    data = gzip.compress(_pcap(tmp).read_bytes())
    res = run("summary", "-", "--json", "-", input_bytes=data)
    assert res.code == 0, res
    assert res.json()["sessions"][0]["status"] == "complete"


def test_fifo_is_read_as_a_capture(tmp, run):
    data = _pcap(tmp).read_bytes()
    fifo = tmp / f"cap-{os.getpid()}.fifo"
    os.mkfifo(fifo)

    def writer():
        with open(fifo, "wb") as f:
            f.write(data)

    t = threading.Thread(target=writer)
    t.start()
    res = run("summary", fifo, "--json", "-")
    t.join(10)
    assert res.code == 0, res
    assert res.json()["sessions"][0]["vmcore"]["received"] == len(IMAGE)


def test_process_substitution(tmp):
    cap = _pcap(tmp)
    cmd = f'"{sys.executable}" -m analyzer summary <(cat "{cap}") --json -'
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sessions"][0]["status"] == "complete"


def test_follow_waits_for_a_record_incomplete_at_the_end(tmp):
    data = _pcap(tmp).read_bytes()
    growing = tmp / "growing.pcap"
    cut = len(data) // 2 + 7  # inside a record
    growing.write_bytes(data[:cut])
    proc = _popen("summary", "--follow", growing, "--idle", "2", "--json", "-")
    time.sleep(0.8)
    with open(growing, "ab") as f:
        f.write(data[cut:])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["sessions"][0]["status"] == "complete"
    kinds = [a["kind"] for a in report["anomalies"]] + \
        [a["kind"] for s in report["sessions"] for a in s["anomalies"]]
    assert "truncated-capture" not in kinds


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_follow_finishes_the_dump_while_the_capture_still_runs(tmp, stop):
    cap = _pcap(tmp)
    out = tmp / "o"
    proc = _popen("extract", "--follow", cap, "-o", out, "--idle", "60")
    final = out / f"vmcore.{IP}.0"
    try:
        # The vmcore gets its final name once whole; the info file's status follows it.
        assert _wait_for(lambda: final.exists() and not (out / f"vmcore.{IP}.0.part").exists())
        assert final.read_bytes() == IMAGE
        assert _wait_for(lambda: "Dump complete" in (out / f"info.{IP}.0").read_text())
        assert proc.poll() is None  # still following
    finally:
        proc.send_signal(stop)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err  # ending follow mode is normal, not an interruption


def test_follow_ends_with_3_when_a_dump_is_incomplete(tmp):
    cap = _pcap(tmp, drop_finished=True)
    proc = _popen("summary", "--follow", cap, "--idle", "1")
    proc.communicate(timeout=60)
    assert proc.returncode == 3


@pytest.mark.parametrize("as_glob", [False, True], ids=["directory", "glob"])
def test_follow_a_ring_buffer_directory_picks_up_new_files(tmp, as_glob):
    frames = _frames()
    ring = tmp / "ring"
    ring.mkdir()
    half = len(frames) // 2
    first = ring / "netdump_00001_20261203120000.pcapng"
    first.write_bytes(W.pcapng_bytes(frames[:half]))
    out = tmp / "o"
    proc = _popen("extract", "--follow", f"{ring}/netdump_*.pcapng" if as_glob else ring,
                  "-o", out, "--idle", "3")
    time.sleep(1.0)
    (ring / "netdump_00002_20261203120001.pcapng").write_bytes(W.pcapng_bytes(frames[half:]))
    time.sleep(0.5)
    first.unlink()  # the ring buffer turns over
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (out / f"vmcore.{IP}.0").read_bytes() == IMAGE


# ---- output while the capture runs ----------------------------------------------------------

def test_a_new_herald_finishes_the_previous_dump(tmp):
    first = W.session_frames(W.Session(dump=IMAGE, kdh=None, drop_finished=True))
    second = W.session_frames(W.Session(dump=IMAGE[:65536], kdh=None, drop_finished=True),
                              t0=first[-1][0] + 1)
    out = tmp / "o"
    with _following(tmp / "r.pcap", first + second[:10], out):
        assert _wait_for(lambda: (out / f"vmcore.{IP}.0").exists() and
                         (out / f"vmcore.{IP}.1.part").exists())
        assert "Dump incomplete" in (out / f"info.{IP}.0").read_text()


def test_600_seconds_of_silence_finish_a_dump(tmp):
    first = W.session_frames(W.Session(dump=IMAGE, kdh=None, drop_finished=True))
    other = W.session_frames(W.Session(client="192.0.2.9", dump=IMAGE[:65536], kdh=None,
                                       drop_finished=True), t0=first[-1][0] + 601)
    out = tmp / "o"
    with _following(tmp / "q.pcap", first + other[:10], out):
        assert _wait_for(lambda: (out / f"vmcore.{IP}.0").exists() and
                         (out / "vmcore.192.0.2.9.0.part").exists())


def test_json_lines_one_object_per_finished_dump_and_per_capture_anomaly(tmp, run):
    frames = _frames()
    runt = (frames[0][0] - 0.5, W.udp_frame("192.0.2.50", "192.0.2.1", 20024, 20023, b"abc"))
    (tmp / "j.pcap").write_bytes(W.pcap_bytes([runt] + frames))
    res = run("extract", tmp / "j.pcap", "-o", tmp / "o", "--json-lines", tmp / "d.jsonl",
              "--json", tmp / "r.json")
    assert res.code == 0, res
    lines = [json.loads(x) for x in (tmp / "d.jsonl").read_text().splitlines()]
    dumps = [x for x in lines if x["event"] == "dump"]
    report = json.loads((tmp / "r.json").read_text())
    assert len(dumps) == 1
    session = dict(dumps[0])
    session.pop("event")
    assert session == report["sessions"][0]
    anomalies = [x for x in lines if x["event"] == "anomaly"]
    assert len(anomalies) == len(report["anomalies"]) >= 1
    assert {"kind", "frame", "detail"} <= set(anomalies[0])


def test_json_lines_to_standard_output(tmp, run):
    res = run("extract", _pcap(tmp), "-o", tmp / "o", "--json-lines", "-")
    assert res.code == 0
    first = json.loads(res.out.splitlines()[0])
    assert first["event"] == "dump" and first["client"] == IP


HOOK = """#!{python}
import json, os, sys
try:
    stdin = os.read(0, 10).decode()
except OSError as exc:
    stdin = "closed"
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd(),
                        "stdin": stdin}}) + "\\n")
{tail}
"""


def _hook(tmp, tail=""):
    path = tmp / "hook.py"
    path.write_text(HOOK.format(python=sys.executable, log=str(tmp / "hook.log"), tail=tail))
    path.chmod(0o755)
    return path


def _calls(tmp):
    return [json.loads(x) for x in (tmp / "hook.log").read_text().splitlines()]


def test_exec_hook_gets_netdumpds_arguments_env_cwd_and_stdin(tmp, run):
    hook = _hook(tmp)
    res = run("extract", _pcap(tmp, path="crash/web1"), "-o", tmp / "o", "--exec", hook)
    assert res.code == 0, res
    (call,) = _calls(tmp)
    reason, ip, host, info, core = call["argv"]
    assert (reason, ip) == ("success", IP)
    assert host
    folder = tmp / "o" / "crash" / "web1"
    assert os.path.realpath(call["cwd"]) == os.path.realpath(folder)
    assert os.path.basename(info) == f"info.{IP}.0"
    assert os.path.basename(core) == f"vmcore.{IP}.0"
    assert (folder / info).exists() and (folder / core).exists()
    assert call["env"] == {} or set(call["env"]) <= {"PWD", "LC_CTYPE"}, call["env"]
    assert call["stdin"] in ("", "closed")


def test_exec_hook_reason_timeout_for_an_incomplete_dump(tmp, run):
    hook = _hook(tmp)
    res = run("extract", _pcap(tmp, drop_finished=True), "-o", tmp / "o", "--exec", hook)
    assert res.code == 3
    (call,) = _calls(tmp)
    assert call["argv"][0] == "timeout"


def test_exec_hook_that_hangs_is_killed_and_reported(tmp, run):
    hook = _hook(tmp, "import time; time.sleep(60)")
    start = time.monotonic()
    res = run("extract", _pcap(tmp), "-o", tmp / "o", "--exec", hook, "--exec-timeout", "1")
    assert time.monotonic() - start < 30
    assert res.code == 0, res
    assert "hook" in res.err
    assert (tmp / "o" / f"vmcore.{IP}.0").read_bytes() == IMAGE


def test_exec_hook_that_fails_is_reported_and_the_run_goes_on(tmp, run):
    hook = _hook(tmp, "sys.exit(3)")
    res = run("extract", _pcap(tmp), "-o", tmp / "o", "--exec", hook)
    assert res.code == 0, res
    assert "exit status 3" in res.err


def test_follow_writes_each_dump_ready_to_debug_as_it_ends(tmp):
    """Issues 9 and 11 together: with --private-key a dump is decrypted the moment it ends,
    not when following stops, and its JSON line carries the same "inspect" as the report."""
    rsa = D.rsa_key()
    (tmp / "op.pem").write_bytes(D.pem(rsa))
    dk, iv = D.new_dump_key()
    enc = D.encrypt(D.CHACHA, dk, iv, IMAGE)
    s = W.Session(dump=enc, kdh=W.kdh(len(enc), keysize=4096),
                  key=D.key_file(rsa, D.CHACHA, dk, iv), key_first=True)
    cap = tmp / "e.pcap"
    cap.write_bytes(W.pcap_bytes(W.session_frames(s)))
    out = tmp / "o"
    proc = _popen("extract", "--follow", cap, "-o", out, "--idle", "60", "--private-key",
                  tmp / "op.pem", "--json-lines", tmp / "d.jsonl", "--json", tmp / "r.json")
    plain = out / f"vmcore.{IP}.0"
    try:
        assert _wait_for(lambda: plain.exists() and (tmp / "d.jsonl").exists() and
                         (tmp / "d.jsonl").read_text().endswith("\n"))
        assert plain.read_bytes() == IMAGE
        (line,) = [json.loads(x) for x in (tmp / "d.jsonl").read_text().splitlines()]
        assert line["inspect"]["format"] == "minidump" and line["inspect"]["kgdb"] == "ok"
        assert f"vmcore.{IP}.0" in line["files"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    session = json.loads((tmp / "r.json").read_text())["sessions"][0]
    line.pop("event")
    assert line == session


def test_summary_json_lines_with_decompress_lists_no_files_and_carries_inspect(tmp, run):
    stream = D.kernel_zstd(IMAGE)
    s = W.Session(dump=D.padded(stream), kdh=W.kdh(len(stream), compression=2))
    (tmp / "z.pcap").write_bytes(W.pcap_bytes(W.session_frames(s)))
    res = run("summary", tmp / "z.pcap", "--decompress", "--json-lines", "-")
    assert res.code == 0, res
    (line,) = [json.loads(x) for x in res.out.splitlines()]
    assert line["files"] == []
    assert line["inspect"]["format"] == "minidump"
    assert sorted(p.name for p in tmp.iterdir()) == ["z.pcap"]


def test_follow_a_one_way_capture_finishes_at_the_finished_seen(tmp):
    oneway = [(t, f) for t, f in _frames() if f[6:12] == W.CLIENT_MAC]  # no ACKs captured
    cap = tmp / "oneway.pcap"
    cap.write_bytes(W.pcap_bytes(oneway))
    out = tmp / "o"
    proc = _popen("extract", "--follow", cap, "-o", out, "--idle", "60")
    try:
        assert _wait_for(lambda: (out / f"vmcore.{IP}.0").exists())
        assert (out / f"vmcore.{IP}.0").read_bytes() == IMAGE
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
