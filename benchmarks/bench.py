"""Throughput, memory and write-size benchmark of ``extract`` and ``audit`` (issue #5).

    python benchmarks/bench.py            # 256 MiB, 1 GiB and 4 GiB dumps (make bench)
    python benchmarks/bench.py --quick    # 256 MiB only, for development

Captures are made by the simulator and cached in benchmarks/.cache/ (gitignored). Every
measured command runs as a child of this process, one at a time, while this process samples
/proc/PID/status of the child and its descendants every few milliseconds: the peak memory is
the highest RssAnon + RssShmem seen (file-backed pages of the page cache are not counted).
Dump writes are counted by wrapping os.pwrite in the child; all its write syscalls come
from its /proc/PID/io, read at exit.

Nothing here is asserted: the table shows the figures and which targets they meet.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")
LUA = os.path.join(ROOT, "dissectors", "netdump.lua")
PY = sys.executable
MB = 1e6

# name -> (dump size, simulate options)
CAPTURES = {
    "256m": ("256m", []),
    "256m-ng": ("256m", ["--format", "pcapng"]),
    "256m-lossy": ("256m", ["--loss", "0.02", "--ack-loss", "0.02"]),
    "1g": ("1g", []),
    "1g-ng": ("1g", ["--format", "pcapng"]),
    "1g-lossy": ("1g", ["--loss", "0.02", "--ack-loss", "0.02"]),
    "4g": ("4g", []),
}

# Run a command and report its /proc/self/io at exit (for write syscall counts).
_IO_WRAP = (
    "import atexit, os, sys\n"
    "_pw, _n = os.pwrite, [0, 0]\n"
    "def _count(fd, data, pos):\n"
    "    r = _pw(fd, data, pos)\n"
    "    _n[0] += 1\n"
    "    _n[1] += r\n"
    "    return r\n"
    "os.pwrite = _count\n"
    "def _io():\n"
    "    try:\n"
    "        sys.stderr.write('\\n@@IO ' + open('/proc/self/io').read().replace('\\n', ' ')\n"
    "                         + f' pwrites: {_n[0]} pwrite_bytes: {_n[1]}\\n')\n"
    "    except OSError:\n"
    "        pass\n"
    "atexit.register(_io)\n"
    "sys.argv = ['netdump-analyzer'] + sys.argv[1:]\n"
    "from analyzer.cli import main\n"
    "main()\n"
)


def capture_path(name: str) -> str:
    ext = "pcapng" if "-ng" in name else "pcap"
    return os.path.join(CACHE, f"{name}.{ext}")


def ensure_capture(name: str) -> str:
    path = capture_path(name)
    if os.path.exists(path):
        return path
    if name == "256m-holes":
        return make_holes(ensure_capture("256m"), path)
    size, opts = CAPTURES[name]
    need = {"256m": 0.4e9, "1g": 1.5e9, "4g": 10e9}[size]
    free = shutil.disk_usage(os.path.dirname(path) or ".").free
    if free < need:
        sys.exit(f"bench: {free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed for {name}")
    os.makedirs(CACHE, exist_ok=True)
    tmp = path + ".tmp"
    print(f"generating {name} (dump {size}) ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    subprocess.run([PY, "-m", "analyzer", "simulate", "--generation", "13", "--size", size,
                    "--seed", "1", *opts, "-o", tmp], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    os.replace(tmp, path)
    print(f"  {os.path.getsize(path) / MB:.0f} MB in {time.perf_counter() - t:.0f} s",
          file=sys.stderr, flush=True)
    return path


def make_holes(src: str, dst: str) -> str:
    """The 256m capture without the records in its second quarter: a quarter of the dump
    is missing, in one piece, so the vmcore must come out sparse there."""
    import struct
    with open(src, "rb") as f:
        data = f.read()
    lo, hi = len(data) // 4, len(data) // 2
    out = [data[:24]]
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        end = pos + 16 + incl
        if not lo <= pos < hi:
            out.append(data[pos:end])
        pos = end
    with open(dst + ".tmp", "wb") as f:
        f.writelines(out)
    os.replace(dst + ".tmp", dst)
    return dst


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _anon_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            kb = 0
            for line in f:
                if line.startswith(("RssAnon:", "RssShmem:")):
                    kb += int(line.split()[1])
            return kb
    except OSError:
        return 0


REPEAT = 1  # runs of each extract/audit command; the median run is reported (--repeat)


def median_of(runs: list[dict]) -> dict:
    """The run with the median wall time; the peak memory is the highest of all runs."""
    runs = sorted(runs, key=lambda r: r["s"])
    r = dict(runs[len(runs) // 2])
    r["peak_mb"] = max(x["peak_mb"] for x in runs)
    r["all_s"] = [x["s"] for x in runs]
    return r


def measure(cmd: list[str], env: dict | None = None, interval: float = 0.005,
            piped_from: str | None = None) -> dict:
    """Run ``cmd``; wall time, peak RssAnon+RssShmem of its tree, its write syscalls.
    ``piped_from``: a file ``cat`` writes into the command's standard input (a pipe)."""
    t0 = time.perf_counter()
    cat = subprocess.Popen(["cat", piped_from], stdout=subprocess.PIPE) if piped_from else None
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, stdin=cat.stdout if cat else None)
    if cat:
        cat.stdout.close()
    peak = 0
    import threading
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
    reader.start()
    while p.poll() is None:
        peak = max(peak, sum(_anon_kb(q) for q in _tree(p.pid)))
        time.sleep(interval)
    wall = time.perf_counter() - t0
    reader.join()
    if cat:
        cat.wait()
    text = b"".join(err).decode(errors="replace")
    io = {}
    for line in text.splitlines():
        if line.startswith("@@IO "):
            parts = line[5:].split()
            io = {k.rstrip(":"): int(v) for k, v in zip(parts[::2], parts[1::2])}
    if p.returncode not in (0, 3):
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{text[-2000:]}")
    return {"s": wall, "peak_mb": peak / 1024, "rc": p.returncode, "io": io}


def frames_of(path: str) -> tuple[int, float]:
    t = time.perf_counter()
    out = subprocess.run([PY, os.path.join(HERE, "scan.py"), path], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[0]), time.perf_counter() - t


def run_scan(path: str) -> dict:
    r = measure([PY, os.path.join(HERE, "scan.py"), path])
    return r


def run_cli(args: list[str], env: dict | None = None, piped_from: str | None = None) -> dict:
    return measure([PY, "-c", _IO_WRAP, *args], env=env, piped_from=piped_from)


def run_extract(path: str, extra: list[str] = (), env: dict | None = None,
                piped: bool = False) -> dict:
    return median_of([_run_extract(path, extra, env, piped) for _ in range(REPEAT)])


def _run_extract(path: str, extra: list[str] = (), env: dict | None = None,
                 piped: bool = False) -> dict:
    """``piped``: the capture comes through a pipe (``cat CAPTURE | extract -``)."""
    out = tempfile.mkdtemp(prefix="bench-out-", dir=CACHE)
    try:
        r = run_cli(["extract", "-q", "-" if piped else path, "-o", out, *extra], env=env,
                    piped_from=path if piped else None)
        # sparse check: allocated bytes vs apparent size of the vmcore files
        size = alloc = 0
        for dirpath, _dirs, files in os.walk(out):
            for f in files:
                if f.startswith(("vmcore", "key")):
                    st = os.stat(os.path.join(dirpath, f))
                    size += st.st_size
                    alloc += st.st_blocks * 512
        r["out_size"], r["out_alloc"] = size, alloc
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return r


def run_audit(path: str, extra: list[str] = ()) -> dict:
    return median_of([run_cli(["audit", "-q", path, *extra]) for _ in range(REPEAT)])


def run_tshark(path: str) -> dict | None:
    tshark = shutil.which("tshark")
    if not tshark:
        return None
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=tmp, HOME=tmp, XDG_CONFIG_HOME=tmp)
        return measure([tshark, "-n", "-2", "-r", path, "-X", f"lua_script:{LUA}",
                        "-T", "fields", "-e", "fbsd_netdump.seqno"], env=env, interval=0.02)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="256 MiB dumps only (development)")
    ap.add_argument("--no-tshark", action="store_true", help="skip the tshark run")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--repeat", type=int, default=3, metavar="N",
                    help="runs of each extract/audit command, the median reported (default 3)")
    a = ap.parse_args()
    global REPEAT
    REPEAT = max(1, a.repeat)

    big = "256m" if a.quick else "1g"
    names = ["256m", "256m-ng", "256m-lossy", "256m-holes"] if a.quick else \
        ["256m", "256m-holes", "1g", "1g-ng", "1g-lossy", "4g"]
    paths = {n: ensure_capture(n) for n in names}
    rows: list[dict] = []
    res: dict = {}

    def row(label, name, r, frames):
        size = os.path.getsize(paths[name])
        mbps = size / MB / r["s"]
        rows.append({"what": label, "capture": name, "MB": size / MB, "s": r["s"],
                     "MB/s": mbps, "pkt/s": frames / r["s"], "peak MB": r["peak_mb"]})
        print(f"  {label} {name}: {r['s']:.2f} s, {mbps:.0f} MB/s, peak {r['peak_mb']:.0f} MB",
              file=sys.stderr, flush=True)
        return mbps

    # the fixed cost of a run (interpreter start, imports, report, fsync): a tiny capture
    fixed = run_extract(os.path.join(ROOT, "samples", "clean-13x.pcap"))["s"]
    print(f"  fixed cost of one extract run (samples/clean-13x.pcap): {fixed:.2f} s",
          file=sys.stderr, flush=True)
    frames = {}
    for n in names:
        frames[n], _ = frames_of(paths[n])  # also warms the page cache
        sc = res[("scan", n)] = run_scan(paths[n])
        row("scan-only loop", n, sc, frames[n])
        ex = res[("extract", n)] = run_extract(paths[n])
        row("extract", n, ex, frames[n])
        if n in (big, big + "-ng", big + "-lossy") or a.quick:
            nv = res[("extract-nv", n)] = run_extract(paths[n], ["--no-verify-checksums"])
            row("extract --no-verify-checksums", n, nv, frames[n])
            pp = res[("extract-pure", n)] = run_extract(
                paths[n], env=dict(os.environ, NETDUMP_ANALYZER_PURE="1"))
            row("extract, uncompiled (PURE=1)", n, pp, frames[n])
            au = res[("audit", n)] = run_audit(paths[n])
            row("audit", n, au, frames[n])
            pi = res[("extract-pipe", n)] = run_extract(paths[n], piped=True)
            row("extract from a pipe (cat |)", n, pi, frames[n])
    ts = None
    if not a.no_tshark:
        frames_ts = frames["256m"]
        ts = run_tshark(paths["256m"])
        if ts:
            row("tshark + netdump.lua", "256m", ts, frames_ts)

    print()
    compiled = subprocess.run([PY, "-c", "import analyzer.pipeline; from analyzer import speedups; "
                               "print(len(speedups.loaded_compiled()), 'of', len(speedups.MODULES))"],
                              capture_output=True, text=True, cwd=ROOT).stdout.strip()
    print(f"modules run compiled (Cython, see analyzer/speedups.py): {compiled}")
    print(f"extract and audit rows: median of {REPEAT} runs; fixed cost of one extract run "
          f"(start-up, imports, report, fsync; samples/clean-13x.pcap): {fixed:.2f} s")
    load = os.getloadavg()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other work on the machine slows every row)")
    print(f"{'what':32} {'capture':11} {'MB':>7} {'s':>7} {'MB/s':>7} {'pkt/s':>9} {'peak MB':>8}")
    for r in rows:
        print(f"{r['what']:32} {r['capture']:11} {r['MB']:7.0f} {r['s']:7.2f} {r['MB/s']:7.1f} "
              f"{r['pkt/s']:9.0f} {r['peak MB']:8.1f}")

    def mbps(kind, n):
        return os.path.getsize(paths[n]) / MB / res[(kind, n)]["s"]

    def spg(kind, n):  # seconds per GB of capture
        return res[(kind, n)]["s"] / (os.path.getsize(paths[n]) / 1e9)

    checks = []

    def check(text, value, ok):
        checks.append((text, value, ok))

    ex_big = mbps("extract", big)
    check(f"extract MB/s ({big} clean pcap) >= 400", f"{ex_big:.0f}", ex_big >= 400)
    check(f"extract --no-verify-checksums MB/s ({big}) >= 400", f"{mbps('extract-nv', big):.0f}",
          mbps("extract-nv", big) >= 400)
    check(f"extract uncompiled (NETDUMP_ANALYZER_PURE=1) MB/s ({big}) >= 133",
          f"{mbps('extract-pure', big):.0f}", mbps("extract-pure", big) >= 133)
    check(f"audit MB/s ({big})", f"{mbps('audit', big):.0f}", True)
    r = res[("extract", big)]["s"] / res[("scan", big)]["s"]
    check("extract time / scan-only time <= 3", f"{r:.2f}", r <= 3)
    r = res[("extract-nv", big)]["s"] / res[("scan", big)]["s"]
    check("extract --no-verify-checksums time / scan-only time <= 3", f"{r:.2f}", r <= 3)
    r = res[("audit", big)]["s"] / res[("extract", big)]["s"]
    check("audit time / extract time <= 1.5", f"{r:.2f}", r <= 1.5)
    r = res[("extract-pipe", big)]["s"] / res[("extract", big)]["s"]
    check(f"extract from a pipe / from the file ({big}) <= 1.3", f"{r:.2f}", r <= 1.3)
    ng = big + "-ng"
    r = res[("extract", ng)]["s"] / res[("extract", big)]["s"] * \
        os.path.getsize(paths[big]) / os.path.getsize(paths[ng])
    check("pcapng / pcap time per MB (extract) <= 1.3", f"{r:.2f}", r <= 1.3)
    if ts:
        ts_mbps = os.path.getsize(paths["256m"]) / MB / ts["s"]
        r = ex_big / ts_mbps
        check(f"extract ({big}) vs tshark+lua (256m, scaled) >= 15x", f"{r:.1f}x", r >= 15)
    peaks = {n: max(res[(k, n)]["peak_mb"] for k in ("extract", "extract-nv", "extract-pure",
                                                      "audit", "extract-pipe")
                    if (k, n) in res) for n in names}
    for n in names:
        check(f"peak memory {n} (extract/audit, RssAnon+RssShmem) < 150 MB",
              f"{peaks[n]:.0f}", peaks[n] < 150)
    if not a.quick:
        r = res[("extract", "4g")]["peak_mb"] / res[("extract", "1g")]["peak_mb"]
        check("peak memory 4g / 1g (extract) ~ 1", f"{r:.2f}", r < 1.15)
        base = spg("extract", "1g")
        for n in ("256m", "1g", "4g"):
            r = spg("extract", n) / base
            check(f"linear: extract s/GB at {n} vs 1g (within 15%)", f"{spg('extract', n):.2f} s/GB ({r:.2f})",
                  abs(r - 1) <= 0.15)

        def net(n):  # seconds per GB without the fixed cost of a run
            return (res[("extract", n)]["s"] - fixed) / (os.path.getsize(paths[n]) / 1e9)

        for n in ("256m", "4g"):
            r = net(n) / net("1g")
            check(f"linear, net of the fixed {fixed:.2f} s per run: s/GB at {n} vs 1g",
                  f"{net(n):.2f} vs {net('1g'):.2f} s/GB ({r:.2f})", abs(r - 1) <= 0.15)
    for n in names:
        e = res[("extract", n)]
        io = e["io"]
        if io.get("pwrites"):
            avg = io["pwrite_bytes"] / io["pwrites"]
            check(f"extract {n}: dump writes (pwrite), bytes per write; all write syscalls",
                  f"{io['pwrites']}, {avg / 1024:.0f} KiB; {io.get('syscw', 0)}", avg >= 256 * 1024)
        if "holes" in n:
            check(f"extract {n}: vmcore sparse (allocated < size)",
                  f"{e['out_alloc'] / MB:.0f} of {e['out_size'] / MB:.0f} MB", e["out_alloc"] < e["out_size"])
    print()
    for text, value, ok in checks:
        print(f"  [{'ok' if ok else '--'}] {text}: {value}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "checks": checks, "fixed_cost_s": fixed}, f, indent=1)


if __name__ == "__main__":
    main()
