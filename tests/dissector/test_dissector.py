"""The Wireshark Lua dissector (dissectors/netdump.lua), run through the real tshark.

Each scenario builds a small pcap (Ethernet/IPv4/UDP carrying messages from analyzer.wire),
runs ``tshark -2 -X lua_script:dissectors/netdump.lua`` with isolated configuration folders,
compares the output with golden files in tests/dissector/golden/ (UPDATE_GOLDEN=1 rewrites
them) and asserts on the semantics that matter.

In CI (CI=true) a missing tshark fails the tests; elsewhere they are skipped.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import pytest

from analyzer.wire import build_ack, build_kdh, build_kdk, build_message

REPO = Path(__file__).resolve().parents[2]
LUA = REPO / "dissectors" / "netdump.lua"
GOLDEN = REPO / "tests" / "dissector" / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

CLIENT = "10.0.0.2"
SERVER = "10.0.0.1"
CLIENT2 = "10.0.0.3"
DATA_PORT = 49152
DATA_PORT2 = 50001
T0 = 1_700_000_000  # a fixed epoch second for every capture

HERALD, FINISHED, VMCORE, KDH, EKCD_KEY = 1, 2, 3, 4, 5

FIELDS = [
    "frame.number", "fbsd_netdump.session", "fbsd_netdump.client", "fbsd_netdump.type",
    "fbsd_netdump.seqno", "fbsd_netdump.offset", "fbsd_netdump.length", "fbsd_netdump.ack.seqno",
    "fbsd_netdump.ack_frame", "fbsd_netdump.acked_frame", "fbsd_netdump.ack_rtt",
    "fbsd_netdump.retransmission", "fbsd_netdump.retransmission_of", "fbsd_netdump.prev_transmission",
    "fbsd_netdump.next_transmission", "fbsd_netdump.spurious_retransmission", "fbsd_netdump.conflict",
    "fbsd_netdump.duplicate_ack", "fbsd_netdump.dup_ack_of", "fbsd_netdump.ack_unseen",
    "fbsd_netdump.unacked", "fbsd_netdump.seq_gap", "fbsd_netdump.new_dump",
    "fbsd_netdump.capture_duplicate", "fbsd_netdump.capture_duplicate_of", "fbsd_netdump.runt",
    "fbsd_netdump.bad_length", "fbsd_netdump.jumbo", "_ws.col.Info",
]


def find_tshark() -> str | None:
    return shutil.which("tshark")


@pytest.fixture(scope="module")
def tshark() -> str:
    path = find_tshark()
    if path is None:
        if IN_CI:
            pytest.fail("tshark is required in CI (make test-deps installs it)")
        pytest.skip("tshark not installed")
    return path


# --------------------------------------------------------------------------------------
# Capture building
# --------------------------------------------------------------------------------------

def _mac(ip: str) -> bytes:
    return b"\x02\x00" + socket.inet_aton(ip)


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = 8 + len(payload)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=dpkt.ip.IP_PROTO_UDP,
                    ttl=255, df=1, data=udp)
    ip.len = 20 + len(bytes(udp))
    eth = dpkt.ethernet.Ethernet(src=_mac(src), dst=_mac(dst), type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
    return bytes(eth)


@dataclass
class Capture:
    """Frames with exact microsecond timestamps; ``tick`` advances the clock."""

    us: int = 0
    frames: list[tuple[int, bytes]] = field(default_factory=list)

    def tick(self, us: int = 1000) -> None:
        self.us += us

    def raw(self, src: str, dst: str, sport: int, dport: int, payload: bytes, *, same_time: bool = False) -> int:
        if not same_time:
            self.tick()
        self.frames.append((self.us, udp_frame(src, dst, sport, dport, payload)))
        return len(self.frames)

    def msg(self, mtype: int, seq: int, off: int = 0, payload: bytes = b"", *, client: str = CLIENT,
            dport: int = DATA_PORT, same_time: bool = False) -> int:
        if mtype == HERALD:
            dport = 20023
        return self.raw(client, SERVER, 20024, dport, build_message(mtype, seq, off, payload),
                        same_time=same_time)

    def ack(self, seq: int, *, client: str = CLIENT, sport: int = DATA_PORT) -> int:
        return self.raw(SERVER, client, sport, 20024, build_ack(seq))

    def dup_last(self) -> int:
        """The previous frame again with the same timestamp: a mirror-port copy."""
        us, frame = self.frames[-1]
        self.frames.append((us, frame))
        return len(self.frames)

    def icmp_unreachable(self, quoted_frame: int) -> int:
        """An ICMP port unreachable from the server quoting an earlier frame's IP datagram."""
        eth = dpkt.ethernet.Ethernet(self.frames[quoted_frame - 1][1])
        inner = bytes(eth.data)
        icmp = dpkt.icmp.ICMP(type=3, code=3, data=dpkt.icmp.ICMP.Unreach(data=inner))
        ip = dpkt.ip.IP(src=socket.inet_aton(SERVER), dst=socket.inet_aton(CLIENT), p=dpkt.ip.IP_PROTO_ICMP,
                        ttl=64, data=icmp)
        ip.len = 20 + len(bytes(icmp))
        out = dpkt.ethernet.Ethernet(src=_mac(SERVER), dst=_mac(CLIENT), type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
        self.tick()
        self.frames.append((self.us, bytes(out)))
        return len(self.frames)

    def write(self, path: Path) -> Path:
        with open(path, "wb") as fh:
            writer = dpkt.pcap.Writer(fh, snaplen=65535, linktype=dpkt.pcap.DLT_EN10MB)
            for us, frame in self.frames:
                sec, usec = divmod(T0 * 1_000_000 + us, 1_000_000)
                writer.writepkt(frame, ts=sec + usec / 1e6)
        return path


def data(n: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


def kdh(**kw) -> bytes:
    fields = dict(architecture="amd64", architectureversion=2, dumplength=4096, dumptime=T0 - 5,
                  blocksize=4096, hostname="web1", versionstring="FreeBSD 14.0-RELEASE\n",
                  panicstring="page fault", compression=0, dumpextent=4096)
    fields.update(kw)
    return build_kdh(**fields)


def herald_and_ack(cap: Capture, path: bytes = b"crash/web1\0", **kw) -> None:
    cap.msg(HERALD, 1, 0, path, **{k: v for k, v in kw.items() if k == "client"})
    cap.ack(1, **kw)


# --------------------------------------------------------------------------------------
# Scenarios: name -> builder returning a dict of facts for the assertions
# --------------------------------------------------------------------------------------

def sc_clean(cap: Capture) -> dict:
    herald_and_ack(cap)                                   # 1, 2
    blob = data(4096)
    for i, (off, n) in enumerate([(0, 1448), (1448, 1448), (2896, 1200)]):
        cap.msg(VMCORE, 2 + i, off, blob[off:off + n])    # 3, 4, 5
    cap.tick(300)
    for seq in (2, 3, 4):
        cap.ack(seq)                                      # 6, 7, 8
    cap.msg(KDH, 5, 0, kdh())                             # 9
    cap.ack(5)                                            # 10
    cap.msg(FINISHED, 6)                                  # 11
    cap.ack(6)                                            # 12
    return {}


def sc_retrans(cap: Capture) -> dict:
    herald_and_ack(cap)                                   # 1, 2
    cap.msg(VMCORE, 2, 0, data(1448))                     # 3
    cap.msg(VMCORE, 3, 1448, data(1448, 1))               # 4
    cap.msg(VMCORE, 4, 2896, data(1200, 2))               # 5
    cap.ack(2)                                            # 6
    cap.ack(4)                                            # 7  (3 was lost)
    cap.tick(1_000_000)
    cap.msg(VMCORE, 3, 1448, data(1448, 1))               # 8  needed retransmission of 4
    cap.tick(1_000_000)
    cap.msg(VMCORE, 3, 1448, data(1448, 1))               # 9  second retransmission
    cap.ack(3)                                            # 10
    cap.msg(VMCORE, 5, 4096, data(1448, 3))               # 11
    cap.ack(5)                                            # 12
    cap.tick(1_000_000)
    cap.msg(VMCORE, 5, 4096, data(1448, 3))               # 13 spurious (ACK 12 seen)
    cap.ack(5)                                            # 14 duplicate ACK of 12
    cap.msg(VMCORE, 6, 5544, data(100, 4))                # 15
    cap.tick(1_000_000)
    cap.msg(VMCORE, 6, 5544, data(100, 9))                # 16 conflicting retransmission
    cap.ack(6)                                            # 17
    cap.msg(KDH, 7, 0, kdh())                             # 18
    cap.ack(7)                                            # 19
    cap.msg(FINISHED, 8)                                  # 20  never ACKed
    return {}


def sc_acks(cap: Capture) -> dict:
    herald_and_ack(cap)                                   # 1, 2
    cap.ack(1)                                            # 3 duplicate ACK
    cap.ack(1)                                            # 4 duplicate ACK #2
    cap.ack(99)                                           # 5 ACK for an unseen message
    cap.msg(VMCORE, 2, 0, data(512))                      # 6
    cap.ack(2)                                            # 7
    cap.msg(FINISHED, 3)                                  # 8
    cap.ack(3)                                            # 9
    return {}


def sc_malformed(cap: Capture) -> dict:
    herald_and_ack(cap)                                   # 1, 2
    cap.raw(CLIENT, SERVER, 20024, DATA_PORT, build_message(VMCORE, 2, 0, data(100))[:20])  # 3 runt
    bad = bytearray(build_message(VMCORE, 2, 0, data(100)))
    struct.pack_into(">I", bad, 16, 200)
    cap.raw(CLIENT, SERVER, 20024, DATA_PORT, bytes(bad))                # 4 bad length
    cap.msg(VMCORE, 2, 0, data(8948))                                    # 5 jumbo payload
    cap.raw(SERVER, CLIENT, DATA_PORT, 20024, b"\0\0\0\2\0\0")           # 6 not an ACK
    cap.msg(KDH, 3, 0, kdh(parity=0x12345678))                           # 7 bad parity
    cap.msg(9, 4, 0, b"")                                                # 8 unknown type
    return {}


def sc_restart(cap: Capture) -> dict:
    herald_and_ack(cap)                                   # 1, 2
    cap.tick(1_000_000)
    cap.msg(HERALD, 1, 0, b"crash/web1\0")                # 3 HERALD retransmission (no data yet)
    cap.ack(1)                                            # 4
    cap.msg(VMCORE, 2, 0, data(1448))                     # 5
    cap.ack(2)                                            # 6
    cap.tick(5_000_000)
    cap.msg(HERALD, 1, 0, b"crash/web1\0")                # 7 restart: a new dump
    cap.ack(1, sport=DATA_PORT2)                          # 8
    cap.msg(VMCORE, 2, 0, data(1448), dport=DATA_PORT2)   # 9 (not a retransmission)
    cap.ack(2, sport=DATA_PORT2)                          # 10
    cap.msg(FINISHED, 3, dport=DATA_PORT2)                # 11
    cap.ack(3, sport=DATA_PORT2)                          # 12
    return {}


def sc_midcapture(cap: Capture) -> dict:
    cap.ack(39)                                           # 1 ACK before any message
    cap.msg(VMCORE, 40, 65536, data(1448))                # 2 first message seen: session 1
    cap.ack(40)                                           # 3
    cap.msg(VMCORE, 43, 65536 + 1448 * 3, data(100))      # 4 seq gap (41, 42 missing)
    cap.ack(43)                                           # 5
    cap.msg(EKCD_KEY, 44, 0, build_kdk(2, bytes(range(32)), b"\xab" * 256)[:1448])  # 6
    cap.ack(44)                                           # 7
    cap.msg(KDH, 45, 0, kdh(dumpkeysize=4096, compression=2))  # 8
    cap.ack(45)                                           # 9
    cap.msg(FINISHED, 46)                                 # 10
    cap.ack(46)                                           # 11
    return {}


def sc_capdup(cap: Capture) -> dict:
    herald_and_ack(cap, path=b"/etc/../root\0")           # 1, 2 (unsafe path)
    cap.msg(VMCORE, 2, 0, data(1448))                     # 3
    cap.dup_last()                                        # 4 capture duplicate of 3
    cap.ack(2)                                            # 5
    cap.dup_last()                                        # 6 capture duplicate of the ACK
    cap.tick(1_000_000)
    cap.msg(VMCORE, 2, 0, data(1448))                     # 7 a real retransmission (spurious)
    cap.ack(2)                                            # 8 duplicate ACK
    cap.msg(FINISHED, 3)                                  # 9
    cap.ack(3)                                            # 10
    return {}


def sc_two_clients(cap: Capture) -> dict:
    herald_and_ack(cap)                                   # 1, 2
    herald_and_ack(cap, path=b"", client=CLIENT2, sport=DATA_PORT2)  # 3, 4
    cap.msg(VMCORE, 2, 0, data(64), client=CLIENT2, dport=DATA_PORT2)  # 5
    cap.msg(VMCORE, 2, 0, data(64))                       # 6
    cap.ack(2, client=CLIENT2, sport=DATA_PORT2)          # 7
    cap.ack(2)                                            # 8
    # a message on unusual ports, found by the heuristic (session of CLIENT)
    cap.raw(CLIENT, SERVER, 5555, 6666, build_message(FINISHED, 3))  # 9
    return {}


def sc_icmp(cap: Capture) -> dict:
    herald_and_ack(cap)                                   # 1, 2
    cap.msg(FINISHED, 2)                                  # 3  the server has already closed
    cap.icmp_unreachable(3)                               # 4  port unreachable quoting frame 3
    cap.tick(1_000_000)
    cap.msg(FINISHED, 2)                                  # 5  the client's retransmission
    cap.icmp_unreachable(5)                               # 6
    return {}


SCENARIOS = {
    "clean": sc_clean,
    "retrans": sc_retrans,
    "acks": sc_acks,
    "malformed": sc_malformed,
    "restart": sc_restart,
    "midcapture": sc_midcapture,
    "capdup": sc_capdup,
    "two_clients": sc_two_clients,
    "icmp": sc_icmp,
}


# --------------------------------------------------------------------------------------
# Running tshark
# --------------------------------------------------------------------------------------

def tshark_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("WIRESHARK_CONFIG_DIR", "HOME", "XDG_CONFIG_HOME"):
        d = tmp / name.lower()
        d.mkdir(exist_ok=True)
        env[name] = str(d)
    env["TZ"] = "UTC"
    env["LC_ALL"] = "C"
    return env


def run_tshark(tshark: str, cap: Path, args: list[str], tmp: Path) -> str:
    cmd = [tshark, "-n", "-2", "-r", str(cap), "-X", f"lua_script:{LUA}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=tshark_env(tmp), timeout=120)
    assert_no_lua_errors(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


LUA_ERROR = re.compile(r"Lua Error|Expert Info \(Error/Undecoded\)|_ws\.lua|attempt to |stack traceback")


def assert_no_lua_errors(stdout: str, stderr: str) -> None:
    noise = [ln for ln in stderr.splitlines() if "Running as user" not in ln and ln.strip()]
    assert not noise, "tshark stderr:\n" + "\n".join(noise)
    match = LUA_ERROR.search(stdout)
    assert match is None, "Lua error in the output: " + stdout[max(0, match.start() - 200):match.end() + 200]


def fields_rows(tshark: str, cap: Path, tmp: Path, fields: list[str] = FIELDS) -> list[dict[str, str]]:
    args = ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        args += ["-e", f]
    out = run_tshark(tshark, cap, args, tmp)
    rows = []
    for line in out.splitlines():
        values = [BOOLEAN_TEXT.get(v, v) for v in line.split("\t")]
        rows.append(dict(zip(fields, values)))
    return rows


# tshark 4.2 and later print a set boolean field as "True" where 4.0 prints "1"
BOOLEAN_TEXT = {"True": "1", "False": "0"}


def tshark_version(tshark: str) -> str:
    out = subprocess.run([tshark, "-v"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+\.\d+)\.\d+", out)
    return m.group(1) if m else "unknown"


def check_golden(name: str, text: str, version: str) -> None:
    """Compare with tests/dissector/golden/<name>; the first line pins the tshark major.minor."""
    path = GOLDEN / name
    content = f"# tshark {version}\n{text}"
    if UPDATE or not path.exists():
        if not UPDATE and IN_CI:
            pytest.fail(f"golden file {path} is missing (run with UPDATE_GOLDEN=1)")
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return
    expected = path.read_text()
    first = expected.split("\n", 1)[0]
    if first != f"# tshark {version}":
        pytest.skip(f"golden {name} was made with {first[2:]}, running tshark {version}")
    assert content == expected, f"output differs from {path} (UPDATE_GOLDEN=1 rewrites it)"


VOLATILE = [
    re.compile(r"^\s*\[?Time shift for this packet.*$", re.M),
]


def verbose_text(tshark: str, cap: Path, tmp: Path) -> str:
    out = run_tshark(tshark, cap, ["-V", "-O", "fbsd_netdump"], tmp)
    for rx in VOLATILE:
        out = rx.sub("", out)
    return out


@pytest.fixture(scope="module")
def results(tshark, tmp_path_factory):
    """Every scenario's capture, its -T fields rows and its -V text, computed once."""
    tmp = tmp_path_factory.mktemp("dissector")
    out = {}
    for name, builder in SCENARIOS.items():
        cap = Capture()
        builder(cap)
        path = cap.write(tmp / f"{name}.pcap")
        out[name] = {
            "pcap": path,
            "rows": fields_rows(tshark, path, tmp),
            "verbose": verbose_text(tshark, path, tmp),
        }
    return out


def row(results, name: str, frame: int) -> dict[str, str]:
    r = results[name]["rows"][frame - 1]
    assert r["frame.number"] == str(frame)
    return r


def frames_with(results, name: str, fld: str) -> list[int]:
    return [int(r["frame.number"]) for r in results[name]["rows"] if r.get(fld, "")]


# --------------------------------------------------------------------------------------
# Goldens
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_fields(results, tshark, name):
    rows = results[name]["rows"]
    text = "\n".join("\t".join(r.get(f, "") for f in FIELDS) for r in rows) + "\n"
    check_golden(f"{name}.fields.txt", "\t".join(FIELDS) + "\n" + text, tshark_version(tshark))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_verbose(results, tshark, name):
    check_golden(f"{name}.verbose.txt", results[name]["verbose"], tshark_version(tshark))


# --------------------------------------------------------------------------------------
# Semantics
# --------------------------------------------------------------------------------------

def test_every_packet_dissected(results):
    for name, res in results.items():
        for r in res["rows"]:
            assert r["fbsd_netdump.client"], f"{name} frame {r['frame.number']} not dissected"


def test_clean_dump(results):
    rows = results["clean"]["rows"]
    assert [r["fbsd_netdump.type"] for r in rows] == ["1", "", "3", "3", "3", "", "", "", "4", "", "2", ""]
    assert {r["fbsd_netdump.session"] for r in rows} == {"1"}
    assert row(results, "clean", 1)["_ws.col.Info"] == "HERALD path=crash/web1"
    assert row(results, "clean", 2)["_ws.col.Info"] == "ACK seq=1"
    assert row(results, "clean", 4)["_ws.col.Info"] == "VMCORE seq=3 off=1448 len=1448"
    assert row(results, "clean", 9)["_ws.col.Info"] == "KDH seq=5 host=web1"
    assert row(results, "clean", 11)["_ws.col.Info"] == "FINISHED seq=6"
    # message <-> ACK links and time to ACK (frame 3 at +3 ms, its ACK at +6.3 ms)
    assert row(results, "clean", 3)["fbsd_netdump.ack_frame"] == "6"
    assert row(results, "clean", 6)["fbsd_netdump.acked_frame"] == "3"
    assert float(row(results, "clean", 3)["fbsd_netdump.ack_rtt"]) == pytest.approx(0.0033)
    for flag in ("retransmission", "duplicate_ack", "ack_unseen", "unacked", "seq_gap", "new_dump",
                 "capture_duplicate", "runt", "bad_length", "jumbo"):
        assert not frames_with(results, "clean", f"fbsd_netdump.{flag}"), flag


def test_clean_kdh_fields(results):
    text = results["clean"]["verbose"]
    assert "Magic: FreeBSD Kernel Dump" in text
    assert "Architecture: amd64" in text
    assert "Host name: web1" in text
    assert "Panic string: page fault" in text
    assert "Compression: none (0)" in text
    assert "Dump time: Nov 14, 2023 22:13:15.000000000 UTC" in text
    assert "Parity OK: True" in text
    assert "Block size: 4096" in text


def test_retransmissions(results):
    r8 = row(results, "retrans", 8)
    assert r8["fbsd_netdump.retransmission"] == "1"
    assert r8["fbsd_netdump.retransmission_of"] == "4"
    assert r8["fbsd_netdump.prev_transmission"] == "4"
    assert r8["fbsd_netdump.spurious_retransmission"] == ""
    r9 = row(results, "retrans", 9)
    assert r9["fbsd_netdump.retransmission_of"] == "4"
    assert r9["fbsd_netdump.prev_transmission"] == "8"
    assert row(results, "retrans", 4)["fbsd_netdump.next_transmission"] == "8"
    assert row(results, "retrans", 8)["fbsd_netdump.next_transmission"] == "9"
    # the ACK after both retransmissions answers the last one
    assert row(results, "retrans", 10)["fbsd_netdump.acked_frame"] == "9"
    assert row(results, "retrans", 9)["fbsd_netdump.ack_frame"] == "10"
    assert row(results, "retrans", 4)["fbsd_netdump.ack_frame"] == "10"
    # spurious: an ACK for seq 5 (frame 12) came before the retransmission in 13
    r13 = row(results, "retrans", 13)
    assert r13["fbsd_netdump.spurious_retransmission"] == "1"
    assert r13["fbsd_netdump.retransmission_of"] == "11"
    assert row(results, "retrans", 14)["fbsd_netdump.dup_ack_of"] == "12"
    # conflicting bytes
    assert frames_with(results, "retrans", "fbsd_netdump.conflict") == [16]
    # FINISHED was never acknowledged
    assert frames_with(results, "retrans", "fbsd_netdump.unacked") == [20]
    # frame 15 continues the burst of 13's resend round: the audit's rule calls it a resend
    # whose earlier copy the capture never saw (the old name is an alias of the new class)
    assert frames_with(results, "retrans", "fbsd_netdump.retransmission") == [8, 9, 13, 15, 16]
    assert "[retransmission]" in r8["_ws.col.Info"]


def test_acks(results):
    assert frames_with(results, "acks", "fbsd_netdump.duplicate_ack") == [3, 4]
    assert row(results, "acks", 3)["fbsd_netdump.dup_ack_of"] == "2"
    assert row(results, "acks", 4)["fbsd_netdump.dup_ack_of"] == "2"
    assert frames_with(results, "acks", "fbsd_netdump.ack_unseen") == [5]
    assert row(results, "acks", 5)["fbsd_netdump.ack.seqno"] == "99"
    assert "Duplicate ACK number: 2" in results["acks"]["verbose"]


def test_malformed(results):
    assert frames_with(results, "malformed", "fbsd_netdump.runt") == [3]
    assert frames_with(results, "malformed", "fbsd_netdump.bad_length") == [4]
    assert frames_with(results, "malformed", "fbsd_netdump.jumbo") == [5]
    text = results["malformed"]["verbose"]
    # expert summaries are fixed strings; the numbers are in fields
    assert "Expert Info (Error/Malformed): Runt: shorter than the 24-byte header" in text
    assert "Expert Info (Error/Malformed): Length mismatch: 24 + mh_len differs from the UDP payload length" in text
    assert "Payload length: 200" in text
    assert "Expert Info (Warning/Protocol): Payload above the largest accepted size" in text
    assert "Expert Info (Warning/Malformed): Datagram to the client port is not a 4-byte ACK" in text
    assert "Expert Info (Warning/Checksum): Kernel dump header parity check failed" in text
    assert "Parity OK: False" in text
    assert "Expert Info (Warning/Protocol): Unknown message type" in text
    # malformed copies are not retransmissions of seq 2: the jumbo one is its first transmission
    assert row(results, "malformed", 5)["fbsd_netdump.retransmission"] == ""


def test_restart(results):
    sessions = [row(results, "restart", f)["fbsd_netdump.session"] for f in range(1, 13)]
    assert sessions == ["1"] * 6 + ["2"] * 6
    assert frames_with(results, "restart", "fbsd_netdump.retransmission") == [3]
    assert frames_with(results, "restart", "fbsd_netdump.new_dump") == [7]
    assert row(results, "restart", 9)["fbsd_netdump.ack_frame"] == "10"
    assert "[new dump]" in row(results, "restart", 7)["_ws.col.Info"]


def test_capture_starting_after_herald(results):
    assert row(results, "midcapture", 1)["fbsd_netdump.ack_unseen"] == "1"
    assert row(results, "midcapture", 1)["fbsd_netdump.session"] == "1"  # the ACK opens it, as in extract
    assert {row(results, "midcapture", f)["fbsd_netdump.session"] for f in range(2, 12)} == {"1"}
    assert frames_with(results, "midcapture", "fbsd_netdump.seq_gap") == [4]
    assert not frames_with(results, "midcapture", "fbsd_netdump.retransmission")
    text = results["midcapture"]["verbose"]
    assert "Encryption: ChaCha20 (2)" in text
    assert "Encrypted key size: 256" in text
    assert "Compression: zstd (2)" in text


def test_capture_duplicates(results):
    assert frames_with(results, "capdup", "fbsd_netdump.capture_duplicate") == [4, 6]
    assert row(results, "capdup", 4)["fbsd_netdump.capture_duplicate_of"] == "3"
    assert row(results, "capdup", 6)["fbsd_netdump.capture_duplicate_of"] == "5"
    assert frames_with(results, "capdup", "fbsd_netdump.retransmission") == [7]
    assert frames_with(results, "capdup", "fbsd_netdump.duplicate_ack") == [8]
    assert "Expert Info (Warning/Security): HERALD path is absolute" in results["capdup"]["verbose"]


def test_icmp_quoted_datagrams_keep_no_state(results):
    assert row(results, "icmp", 4)["fbsd_netdump.type"] == "2"  # the quoted FINISHED is decoded
    assert frames_with(results, "icmp", "fbsd_netdump.retransmission") == [5]
    assert row(results, "icmp", 5)["fbsd_netdump.retransmission_of"] == "3"
    assert frames_with(results, "icmp", "fbsd_netdump.unacked") == [3, 5]


def test_two_clients_and_heuristic(results):
    by_frame = {f: row(results, "two_clients", f) for f in range(1, 10)}
    assert [by_frame[f]["fbsd_netdump.session"] for f in range(1, 10)] == \
        ["1", "1", "2", "2", "2", "1", "2", "1", "1"]
    assert by_frame[5]["fbsd_netdump.client"] == CLIENT2
    assert by_frame[7]["fbsd_netdump.acked_frame"] == "5"
    assert by_frame[8]["fbsd_netdump.acked_frame"] == "6"
    assert not frames_with(results, "two_clients", "fbsd_netdump.retransmission")
    assert by_frame[9]["fbsd_netdump.type"] == "2"  # found by the heuristic on ports 5555/6666


def test_filters_work(tshark, results, tmp_path):
    """Display filters from the README select the expected frames."""
    cap = results["retrans"]["pcap"]
    cases = {
        "fbsd_netdump.retransmission": [8, 9, 13, 15, 16],
        "fbsd_netdump.type == 3 && !fbsd_netdump.retransmission": [3, 4, 5, 11],
        "fbsd_netdump.duplicate_ack": [14],
        "fbsd_netdump.ack_rtt > 0.5": [4, 8, 15],
        "fbsd_netdump.expert.unacked": [20],
    }
    for flt, expected in cases.items():
        out = run_tshark(tshark, cap, ["-Y", flt, "-T", "fields", "-e", "frame.number"], tmp_path)
        assert [int(x) for x in out.split()] == expected, flt


def test_stats_table(tshark, results, tmp_path):
    out = run_tshark(tshark, results["restart"]["pcap"], ["-q", "-z", "fbsd_netdump,stats"], tmp_path)
    lines = [ln for ln in out.splitlines() if re.match(r"^\d+\s", ln)]
    assert len(lines) == 2, out
    first, second = (ln.split() for ln in lines)
    # Dump Client Path HERALD FINISHED VMCORE KDH EKCD ACK Retrans DupACK Bytes Duration
    assert first[:12] == ["1", CLIENT, "crash/web1", "2", "0", "1", "0", "0", "3", "1", "1", "1448"]
    assert second[:12] == ["2", CLIENT, "crash/web1", "1", "1", "1", "0", "0", "3", "0", "0", "1448"]
    assert float(first[12]) == pytest.approx(1.005)
    check_golden("restart.stats.txt", out, tshark_version(tshark))


def test_expert_summary(tshark, results, tmp_path):
    out = run_tshark(tshark, results["retrans"]["pcap"], ["-q", "-z", "expert,note"], tmp_path)
    assert "Retransmission" in out
    assert "Spurious retransmission" in out
    assert "Duplicate ACK" in out
    assert "Message never acknowledged" in out


def test_single_pass_has_no_errors(tshark, results, tmp_path):
    """Without -2 forward links are missing but everything else still works."""
    cmd = [tshark, "-n", "-r", str(results["retrans"]["pcap"]), "-X", f"lua_script:{LUA}",
           "-T", "fields", "-e", "fbsd_netdump.retransmission_of"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=tshark_env(tmp_path))
    assert_no_lua_errors(proc.stdout, proc.stderr)
    assert proc.stdout.split() == ["4", "4", "11", "15"]


def test_port_preferences(tshark, tmp_path):
    """Moving the client port by preference moves the dissector with it."""
    cap = Capture()
    cap.raw(CLIENT, SERVER, 30024, 30023, build_message(HERALD, 1, 0, b"x\0"))
    cap.raw(SERVER, CLIENT, DATA_PORT, 30024, build_ack(1))
    path = cap.write(tmp_path / "ports.pcap")
    out = run_tshark(tshark, path, ["-o", "fbsd_netdump.client_port:30024", "-o", "fbsd_netdump.herald_port:30023",
                                    "-T", "fields", "-e", "_ws.col.Info"], tmp_path)
    assert out.splitlines() == ["HERALD path=x", "ACK seq=1"]


# --------------------------------------------------------------------------------------
# Lua 5.4 (Wireshark 4.4+): run the script against minimal API stand-ins
# --------------------------------------------------------------------------------------

LUA54_HARNESS = r"""
-- Minimal stand-ins for Wireshark's Lua API, enough to run the dissector under plain Lua 5.4.
local script = arg[1]
local any = setmetatable({}, { __index = function(_, k) return k end })
base, frametype = any, any
expert = { group = any, severity = any }
local registered_protos = {}
function Proto(name, desc)
    local p = { name = name, prefs = {}, fields = {}, experts = {} }
    function p.register_heuristic(self, lower, fn) p.heur = fn end
    registered_protos[#registered_protos + 1] = p
    return p
end
ProtoField = setmetatable({}, { __index = function(_, kind)
    return function(abbr, ...) return { abbr = abbr, kind = kind } end end })
ProtoExpert = { new = function(abbr, ...) return { abbr = abbr } end }
Pref = { uint = function(label, default) return default end }
DissectorTable = { get = function() return { add = function() end, remove = function() end } end }
NSTime = { new = function(s, ns)
    assert(math.type(s) == "integer" and math.type(ns) == "integer", "NSTime needs integers")
    return { s = s, ns = ns } end }
UInt64 = { new = function(v) return { v = v } end }
local current_pinfo
Field = { new = function(name) return function()
    -- the IP source (destination) of the packet being dissected, as a field with a range
    local ip = name == "ip.src" and current_pinfo.src or current_pinfo.dst
    return { value = ip, range = { len = function() return 4 end } }
end end }
local stat_fns = {}
function register_stat_cmd_arg(name, fn) stat_fns[name] = fn end
-- folders through the shell: plain Lua has no mkdir or listing
Dir = {
    exists = function(path) return os.execute("test -d '" .. path .. "'") == true end,
    make = function(path) return os.execute("mkdir '" .. path .. "'") == true end,
    open = function(path)
        local h = io.popen("ls -A '" .. path .. "'")
        return function() local ln = h:read("l"); if ln == nil then h:close() end; return ln end
    end,
}
function register_menu() end
function gui_enabled() return false end
local listeners = {}
Listener = { new = function() local l = {}; listeners[#listeners + 1] = l; return l end }

local function Range(s, off, len)
    local r = {}
    function r.uint() local v = 0; for i = 1, len do v = v * 256 + s:byte(off + i) end; return v end
    function r.uint64() local v = r.uint(); return { tonumber = function() return v end } end
    function r.stringz() local t = s:sub(off + 1, off + len); return (t:match("^[^%z]*")) end
    function r.len() return len end
    function r.raw() return s:sub(off + 1, off + len) end
    return setmetatable(r, { __call = function(_, o, l) return Range(s, off + o, l or (len - o)) end,
        __index = function(_, k) return function(self, ...) return r[k](...) end end })
end
local function Tvb(s)
    local t = Range(s, 0, #s)
    local obj = {}
    function obj.len() return #s end
    function obj.reported_len() return #s end
    function obj.raw(_, o, l) return s:sub(o + 1, o + l) end
    return setmetatable(obj, { __call = function(_, o, l) return Range(s, o or 0, l or (#s - (o or 0))) end })
end
local items = 0
local function Tree()
    local t = { text = "fake", visible = true }
    function t.add(self, f, a, b)
        items = items + 1
        if type(a) == "number" then assert(math.type(a) == "integer", "field value must be an integer: " .. tostring(f.abbr)) end
        return Tree()
    end
    function t.append_text(self, s) assert(type(s) == "string") end
    function t.set_generated() end
    function t.set_hidden() end
    function t.add_proto_expert_info(self, e, text) if text then assert(type(text) == "string") end end
    return t
end

dofile(script)
local p = registered_protos[1]
assert(p.name == "fbsd_netdump")

local function msg(mtype, seq, off, payload)
    return string.pack(">I4I4I8I4I4", mtype, seq, off, #payload, 0) .. payload
end
local function kdh()
    local body = string.pack(">c20c12I4I4I8I8I4I4c64c192c175BI8I4", "FreeBSD Kernel Dump", "amd64", 4, 2,
        4096, 1700000000, 0, 4096, "web1", "FreeBSD 14.0\n", "panic", 2, 4096, 0)
    local acc = 0
    for i = 0, 126 do acc = acc ~ string.unpack("<I4", body, i * 4 + 1) end
    return body .. string.pack("<I4", acc)
end
local C, S = "10.0.0.2", "10.0.0.1"
local packets = {
    { C, S, 20024, 20023, msg(1, 1, 0, "crash/web1\0") },
    { S, C, 49152, 20024, string.pack(">I4", 1) },
    { C, S, 20024, 49152, msg(3, 2, 0, string.rep("x", 1448)) },
    { C, S, 20024, 49152, msg(3, 3, 1448, string.rep("y", 100)) },
    { S, C, 49152, 20024, string.pack(">I4", 2) },
    { C, S, 20024, 49152, msg(3, 3, 1448, string.rep("z", 100)) },
    { S, C, 49152, 20024, string.pack(">I4", 3) },
    { S, C, 49152, 20024, string.pack(">I4", 3) },
    { S, C, 49152, 20024, string.pack(">I4", 77) },
    { C, S, 20024, 49152, msg(5, 4, 0, string.pack(">Bc32I4", 2, string.rep("i", 32), 256) .. string.rep("k", 256)) },
    { C, S, 20024, 49152, msg(4, 5, 0, kdh()) },
    { C, S, 20024, 49152, msg(3, 9, 5000, string.rep("j", 5000)) },
    { C, S, 20024, 49152, msg(3, 10, 0, "") .. "extra" },
    { C, S, 20024, 49152, "short" },
    { S, C, 49152, 20024, "123456" },
    { C, S, 20024, 20023, msg(1, 1, 0, "../etc\0") },
    { C, S, 5555, 6666, msg(2, 2, 0, "") },
}
stat_fns["fbsd_netdump,export"]("fbsd_netdump,export," .. arg[2])
local infos = {}
for pass = 1, 2 do
    for n, pk in ipairs(packets) do
        local pinfo = { number = n, visited = pass == 2, src = pk[1], dst = pk[2], src_port = pk[3],
            dst_port = pk[4], rel_ts = n * 0.001, abs_ts = 1700000000 + n * 0.001, in_error_pkt = false, cols = {} }
        current_pinfo = pinfo
        local tvb = Tvb(pk[5])
        local r = p.dissector(tvb, pinfo, Tree())
        if r == 0 and p.heur then assert(p.heur(tvb, pinfo, Tree())) end
        infos[n] = pinfo.cols.info
    end
end
for n, i in ipairs(infos) do print(n, i) end
stat_fns["fbsd_netdump,stats"]("fbsd_netdump,stats")
for _, l in ipairs(listeners) do if l.draw then l.draw() end end
print("items", items)
"""


def test_runs_under_lua54(tmp_path):
    """Integer/float and operator differences of Lua 5.4 break nothing (needs a lua5.4 binary)."""
    lua = shutil.which("lua5.4")
    if lua is None:
        pytest.skip("lua5.4 not installed")
    harness = tmp_path / "harness.lua"
    harness.write_text(LUA54_HARNESS)
    out = tmp_path / "export"
    proc = subprocess.run([lua, str(harness), str(LUA), str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = dict(ln.split("\t", 1) for ln in proc.stdout.splitlines() if "\t" in ln)
    # 1 ms after the first copy but with other bytes: the audit calls it a resend, not a copy
    # duplicated by the network
    assert lines["6"] == "VMCORE seq=3 off=1448 len=100 [retransmission] [conflict]"
    assert lines["8"] == "ACK seq=3 [dup ACK #1]"
    assert lines["11"] == "KDH seq=5 host=web1 [unacked]"
    assert lines["16"] == "HERALD path=../etc [new dump] [unacked]"
    assert "dump summary" in proc.stdout
    # the export ran too: two dumps of the client, the second (HERALD "../etc", packet 16)
    # refused its path and went to the top folder
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "crash/web1/info.10.0.0.2.0", "crash/web1/key.10.0.0.2.0", "crash/web1/vmcore.10.0.0.2.0.zst",
        "info.10.0.0.2.0", "vmcore.10.0.0.2.0"]
    # the KDH (packet 11) says zstd: netdumpd's suffix
    assert (out / "crash" / "web1" / "vmcore.10.0.0.2.0.zst").read_bytes()[:1448] == b"x" * 1448
