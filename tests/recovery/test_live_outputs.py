"""Each dump is finished the moment it ends, not at the end of the input: its files get
their final names, its info file its final status, and the per-dump outputs (line, JSON
line, exec hook) fire then."""
from __future__ import annotations

import json
import os
import stat
import sys
import time

from analyzer.exechook import ExecHook
from analyzer.jsonlines import JsonLines
from analyzer.pipeline import Analysis
from analyzer.protocol.table import IDLE_TIMEOUT
from analyzer.wire import MsgType
from tests.support.datagrams import Conversation, image

INFO = "crash/web1/info.192.0.2.7.{}"
CORE = "crash/web1/vmcore.192.0.2.7.{}"


def _two_dumps(one_way: bool = False):
    """The same client dumping twice; returns the items and the frame ending the first."""
    c = Conversation()
    for n in range(2):
        c.herald(ack=not one_way)
        c.data(image(4 * 1448, seed=n), ack=not one_way)
        c.kdh(4 * 1448, ack=not one_way)
        c.finished(ack=not one_way)
        if n == 0:
            end = len(c.items)
    return c.items, end


def _run_watching(out, items, every=1, on_dump=()):
    """Feed the items a few at a time; after each batch, note which final files exist."""
    seen = []
    a = Analysis(str(out), on_dump=on_dump)

    def batches():
        for i in range(0, len(items), every):
            yield items[i:i + every]
            seen.append((items[min(i + every, len(items)) - 1].frame,
                         (out / CORE.format(0)).exists(),
                         (out / INFO.format(0)).read_bytes() if (out / INFO.format(0)).exists()
                         else b""))
    a.run_batches(batches())
    a.finish()
    return a, seen


def test_a_dump_is_saved_when_its_finished_is_acked_before_the_input_ends(tmp_path):
    items, end = _two_dumps()
    _a, seen = _run_watching(tmp_path, items)
    before = [s for s in seen if s[0] < end]
    after = [s for s in seen if end <= s[0] < items[-1].frame]
    assert before and not any(exists for _f, exists, _i in before)
    assert after and all(exists for _f, exists, _i in after)
    assert all(info.endswith(b"Dump complete\n") for _f, _e, info in after)
    assert not (tmp_path / CORE.format(0)).with_name("vmcore.192.0.2.7.0.part").exists()
    assert (tmp_path / CORE.format(0)).read_bytes() == image(4 * 1448, seed=0)
    assert (tmp_path / CORE.format(1)).read_bytes() == image(4 * 1448, seed=1)


def test_a_one_way_capture_saves_the_dump_at_its_finished(tmp_path):
    items, end = _two_dumps(one_way=True)
    _a, seen = _run_watching(tmp_path, items)
    assert [exists for frame, exists, _i in seen if frame < items[-1].frame] == \
        [frame >= end for frame, _e, _i in seen if frame < items[-1].frame]


def test_a_silent_dump_is_saved_after_600_s_of_capture_time(tmp_path):
    c = Conversation()
    c.herald()
    c.data(image(2 * 1448))  # no KDH, no FINISHED: the client went away
    other = Conversation(client="192.0.2.9", t=c.t + IDLE_TIMEOUT + 20 * 10**9)
    other.herald(b"")
    items = c.items + [d._replace(frame=len(c.items) + i + 1) for i, d in
                       enumerate(other.items)]
    _a, seen = _run_watching(tmp_path, items)
    assert seen[len(c.items) - 1][1] is False  # still open when its last packet is read
    info = (tmp_path / INFO.format(0)).read_bytes()
    assert info.endswith(b"Dump incomplete: client timed out\n")
    assert (tmp_path / CORE.format(0)).exists()


def test_dumps_reach_the_callbacks_in_the_order_they_end(tmp_path):
    items, end = _two_dumps()
    got = []
    a = Analysis(str(tmp_path), on_dump=[lambda rec: got.append((rec.session, rec.files))])
    a.run_batches([items[:end]])
    assert got == [(1, [INFO.format(0), CORE.format(0)])]
    a.run_batches([items[end:-1]])  # the second FINISHED's ACK is not in the capture
    assert len(got) == 1
    a.finish()
    assert [sid for sid, _files in got] == [1, 2]


def test_json_lines_one_object_per_dump_and_per_capture_anomaly(tmp_path):
    items, _end = _two_dumps()
    runt = items[0]._replace(frame=len(items) + 1, payload=b"\x00" * 7,
                             src=b"\xc0\x00\x02\x63")
    target = tmp_path / "events.jsonl"
    jl = JsonLines(str(target))
    a = Analysis(str(tmp_path / "out"), on_dump=[jl.dump], on_anomaly=[jl.anomaly])
    a.run([*items, runt])
    a.finish()
    jl.close()
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["dump", "dump", "anomaly"]
    assert [x["id"] for x in lines[:2]] == [1, 2]
    assert lines[0]["status"] == "complete" and lines[0]["files"] == [INFO.format(0),
                                                                     CORE.format(0)]
    assert lines[2]["kind"] == "runt" and lines[2]["frame"] == runt.frame


def test_json_lines_are_flushed_at_once(tmp_path):
    items, end = _two_dumps()
    target = tmp_path / "events.jsonl"
    jl = JsonLines(str(target))
    a = Analysis(None, on_dump=[jl.dump])
    a.run_batches([items[:end]])
    assert json.loads(target.read_text())["event"] == "dump"  # before the run is over
    a.finish()
    jl.close()


def _recorder(tmp_path, body=""):
    script = tmp_path / "hook.py"
    script.write_text(f"#!{sys.executable}\n"
                      "import json, os, sys\n"
                      f"{body}\n"
                      f"with open({str(tmp_path / 'calls.jsonl')!r}, 'a') as f:\n"
                      "    f.write(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ),\n"
                      "        'cwd': os.getcwd(), 'stdin_open': sys.stdin is not None})"
                      " + '\\n')\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_exec_hook_gets_netdumpds_arguments_empty_environment_and_the_dump_folder(tmp_path):
    items, _end = _two_dumps()
    items = items[:-1]  # the second dump's FINISHED is never ACKed: still complete
    out = tmp_path / "out"
    hook = ExecHook(str(_recorder(tmp_path)), str(out), timeout=30)
    a = Analysis(str(out), on_dump=[hook])
    a.run(items)
    a.finish()
    hook.close()
    calls = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert sorted(c["argv"] for c in calls) == [
        ["success", "192.0.2.7", "192.0.2.7", "info.192.0.2.7.0", "vmcore.192.0.2.7.0"],
        ["success", "192.0.2.7", "192.0.2.7", "info.192.0.2.7.1", "vmcore.192.0.2.7.1"]]
    assert all(c["env"] == {} or set(c["env"]) <= {"LC_CTYPE", "PWD"} for c in calls)
    assert all(os.path.samefile(c["cwd"], out / "crash/web1") for c in calls)
    assert not any(c["stdin_open"] for c in calls)  # standard input closed, as netdumpd's
    assert [r["status"] for r in hook.results] == [0, 0]


def test_exec_hook_reason_for_an_incomplete_dump_is_timeout(tmp_path):
    c = Conversation()
    c.herald()
    c.data(image(2 * 1448))
    out = tmp_path / "out"
    hook = ExecHook(str(_recorder(tmp_path)), str(out), timeout=30)
    a = Analysis(str(out), on_dump=[hook])
    a.run(c.items)
    a.finish()
    hook.close()
    (call,) = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert call["argv"][0] == "timeout"


def test_a_hanging_hook_is_killed_and_reported_without_holding_up_the_run(tmp_path):
    items, end = _two_dumps()
    out = tmp_path / "out"
    warnings = []
    hook = ExecHook(str(_recorder(tmp_path, "import time; time.sleep(60)")), str(out),
                    timeout=0.5, warn=warnings.append)
    a = Analysis(str(out), on_dump=[hook])
    t0 = time.monotonic()
    a.run_batches([items[:end]])
    assert time.monotonic() - t0 < 5  # the run did not wait for the hook
    a.run_batches([items[end:]])
    a.finish()
    hook.close()
    assert time.monotonic() - t0 < 20
    assert warnings == ["exec hook for dump 1: killed after 0.5 s",
                        "exec hook for dump 2: killed after 0.5 s"]
    assert not (tmp_path / "calls.jsonl").exists()


def test_a_failing_or_missing_hook_is_reported(tmp_path):
    items, end = _two_dumps()
    out = tmp_path / "out"
    warnings = []
    failing = ExecHook(str(_recorder(tmp_path, "sys.exit(3)")), str(out), warn=warnings.append)
    missing = ExecHook(str(tmp_path / "nope"), str(out), warn=warnings.append)
    a = Analysis(str(out), on_dump=[failing, missing])
    a.run(items[:end])
    a.finish()
    failing.close()
    missing.close()
    assert warnings[0] == "exec hook for dump 1: exit status 3" or \
        warnings[1] == "exec hook for dump 1: exit status 3"
    assert any(w.startswith("exec hook for dump 1: cannot run ") for w in warnings)


def test_a_finished_dump_lets_go_of_its_seqno_detail(tmp_path):
    items, end = _two_dumps()
    a = Analysis(None)
    a.run_batches([items[:end]])
    (s,) = a.tracker.sessions.values()
    assert len(s.recent) <= 64 and a.recovery.records[1].vmcore_hash is None
    a.finish()


def test_extract_command_streams_json_lines_and_runs_the_hook(tmp_path):
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "out"
    hook = _recorder(tmp_path)
    p = subprocess.run([sys.executable, "-m", "analyzer", "extract",
                        str(root / "samples/multi-client.pcapng"), "-o", str(out),
                        "--json-lines", "-", "--exec", str(hook), "--exec-timeout", "30"],
                       capture_output=True, text=True, cwd=root)
    assert p.returncode == 3, p.stderr  # one of its three dumps is incomplete
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert [e["event"] for e in events] == ["dump"] * 3
    assert sorted(e["client"] for e in events) == ["10.0.1.1", "10.0.1.2", "10.0.1.3"]
    lines = [x for x in p.stderr.splitlines() if x.startswith("dump ")]
    assert len(lines) == 3  # the per-dump lines moved to standard error, once each
    calls = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    by_ip = {c["argv"][1]: c["argv"] for c in calls}
    assert by_ip["10.0.1.3"][0] == "timeout" and by_ip["10.0.1.1"][0] == "success"
    assert by_ip["10.0.1.2"][4] == "vmcore.10.0.1.2.0.gz"


def test_extract_refuses_an_exec_program_that_is_not_there(tmp_path):
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-m", "analyzer", "extract",
                        str(root / "samples/clean-13x.pcap"), "-o", str(tmp_path / "o"),
                        "--exec", str(tmp_path / "missing")],
                       capture_output=True, text=True, cwd=root)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--exec" in p.stderr
