"""The simulator: protocol facts per generation, reliability, netdumpd's files, ground truth."""
from __future__ import annotations

import hashlib
import json
import struct
import zlib

import dpkt
import pytest

from analyzer.intervals import IntervalSet
from analyzer.recovery import infofile
from analyzer.simulate import CaptureSpec, DumpSpec, NetworkSpec, simulate, simulate_frames
from analyzer.simulate.image import DumpImage
from analyzer.wire import MSG_HDR, MsgType, kdh_parity, parse_kdh, parse_kdk
from tests.support.dpkt_read import client_msgs, read_capture, udp_msgs

H = MSG_HDR.struct


# --- helpers ------------------------------------------------------------------------------
def calls_of(msgs_c):
    """Group first transmissions into send calls by seqno runs of (type, contiguous offsets)."""
    seen = set()
    firsts = []
    for m in msgs_c:
        if m[2] not in seen:
            seen.add(m[2])
            firsts.append(m)
    return firsts


@pytest.fixture(scope="module")
def clean13(tmp_path_factory):
    d = tmp_path_factory.mktemp("c13")
    path, truth = simulate(d / "c.pcap", DumpSpec(generation="13", size=320 << 10,
                                                   path="crash/web1"), seed=5,
                           expected=d / "exp")
    return d, path, truth


# --- determinism ---------------------------------------------------------------------------
def test_deterministic_for_a_seed(tmp_path):
    spec = DumpSpec(generation="12", size=96 << 10)
    net = NetworkSpec(loss=0.05, ack_loss=0.05, reorder=0.1, dup=0.02)
    p1, t1 = simulate(tmp_path / "a.pcap", spec, net, seed=11)
    p2, t2 = simulate(tmp_path / "b.pcap", spec, net, seed=11)
    p3, _ = simulate(tmp_path / "c.pcap", spec, net, seed=12)
    assert p1.read_bytes() == p2.read_bytes()
    assert json.dumps(t1.to_json(), sort_keys=True) == json.dumps(t2.to_json(), sort_keys=True)
    assert p1.read_bytes() != p3.read_bytes()


# --- 13.x packet facts ----------------------------------------------------------------------
def test_13x_sizes_and_ordering(clean13):
    _d, path, truth = clean13
    msgs = udp_msgs(path)
    cm = client_msgs(msgs)
    # HERALD first: 20024 -> 20023, seqno 1, path + NUL; ACK from P to 20024; then all to P
    ts, s, d, sp, dp, p = msgs[0]
    assert (sp, dp) == (20024, 20023)
    assert H.unpack_from(p)[:2] == (MsgType.HERALD, 1) and p[24:] == b"crash/web1\0"
    ack = msgs[1]
    port = ack[3]
    assert ack[4] == 20024 and len(ack[5]) == 4 and struct.unpack(">I", ack[5])[0] == 1
    assert port not in (20023, 20024)
    assert all(m[4] == port for m in msgs[2:] if m[3] == 20024)
    # seqnos contiguous from 1; each type in order
    assert [m[2] for m in cm] == list(range(1, len(cm) + 1))
    types = [m[1] for m in cm]
    assert types[0] == MsgType.HERALD and types[-2:] == [MsgType.KDH, MsgType.FINISHED]
    vm = [m for m in cm if m[1] == MsgType.VMCORE]
    assert all(m[4] <= 1448 for m in vm)
    # send calls (a short packet ends one): every full 64 KiB buffer is 45 x 1448 + 376
    calls, cur = [], []
    for m in vm:
        cur.append(m)
        if m[4] < 1448:
            calls.append(cur)
            cur = []
    assert not cur
    full = [c for c in calls if sum(m[4] for m in c) == 65536]
    assert len(full) == 4  # 36 KiB of header/msgbuf/... first, then 4 x 64 KiB, then 28 KiB
    assert [sum(m[4] for m in c) for c in calls] == [36864] + [65536] * 4 + [28672]
    for c in full:
        assert [m[4] for m in c] == [1448] * 45 + [376]
        assert [m[3] for m in c] == [c[0][3] + 1448 * k for k in range(46)]
        assert c[0][3] % 4096 == 0
    # coverage is exactly the dump, no gaps
    cov = IntervalSet()
    for m in vm:
        cov.add(m[3], m[3] + m[4])
    assert cov.covers(0, 320 << 10) and cov.total == 320 << 10
    # KDH then FINISHED, offsets 0
    kdh = cm[-2]
    assert kdh[3] == 0 and kdh[4] == 512 and kdh_parity(kdh[6]) == 0
    assert cm[-1][4] == 0 and cm[-1][6] == b""


def test_13x_every_message_acked_and_client_ip_header(clean13):
    _d, path, _t = clean13
    frames = read_capture(path)
    client = [ip for _, ip in frames if ip.data.sport == 20024]
    acks = [ip for _, ip in frames if ip.data.dport == 20024]
    assert len(client) == len(acks)
    for ip in client:
        assert ip.ttl == 255 and ip.id == 0 and ip.df
    # checksums: recompute
    for ip in client[:20] + acks[:20]:
        raw = bytes(ip)
        fresh = dpkt.ip.IP(raw)
        fresh.sum = 0
        fresh.data.sum = 0
        assert dpkt.ip.IP(bytes(fresh)).sum == ip.sum
        assert dpkt.ip.IP(bytes(fresh)).data.sum == ip.data.sum


def test_13x_expected_files(clean13):
    d, _path, truth = clean13
    files = truth.files()
    assert set(files) == {"crash/web1/info.192.0.2.10.0", "crash/web1/vmcore.192.0.2.10.0"}
    image = DumpImage(320 << 10, truth.dumps[0].material.stream.image.seed)
    data = (d / "exp/crash/web1/vmcore.192.0.2.10.0").read_bytes()
    assert data == image.read(0, 320 << 10)
    assert data.startswith(b"minidump FreeBSD/amd64")
    info = (d / "exp/crash/web1/info.192.0.2.10.0").read_bytes()
    kdh = truth.dumps[0].session.kdh_raw[0]
    assert info == infofile.first_line("192.0.2.10", "192.0.2.10") + infofile.kdh_block(kdh) \
        + infofile.STATUS_COMPLETE
    sums = (d / "exp/SHA256SUMS").read_text().splitlines()
    for line in sums:
        digest, rel = line.split("  ")
        assert hashlib.sha256((d / "exp" / rel).read_bytes()).hexdigest() == digest
    tj = json.loads((d / "exp/truth.json").read_text())
    assert tj["dumps"][0]["capture"]["complete"] is True
    assert tj["server_extras"]["symlinks"]["crash/web1/vmcore.192.0.2.10.last"] == \
        "vmcore.192.0.2.10.0"
    k = parse_kdh(kdh)
    assert (k["version"], k["blocksize"], k["dumplength"], k["architectureversion"]) == \
        (4, 4096, 320 << 10, 2)
    assert k["versionstring"].endswith("\n") and k["parity_ok"]


# --- 12.x -----------------------------------------------------------------------------------
def test_12x_one_call_per_write_and_4096_cap(tmp_path):
    frames, truth = simulate_frames(DumpSpec(generation="12", size=128 << 10), seed=1,
                                    capture=CaptureSpec(point="client"))
    cm = [(*H.unpack_from(f[6]), len(f[6]) - 24) for f in frames if f[1] == 0]
    vm = [m for m in cm if m[0] == MsgType.VMCORE]
    # header page: 3 packets 1448 + 1448 + 1200 at 0, 1448, 2896
    assert [(m[2], m[5]) for m in vm[:3]] == [(0, 1448), (1448, 1448), (2896, 1200)]
    # the next call starts at 4096 in a new burst (the msgbuf write)
    assert vm[3][2] == 4096
    # jumbo MTU: 12.x caps payloads at 4096
    frames, truth = simulate_frames(DumpSpec(generation="12", size=64 << 10, mtu=9000), seed=1)
    sizes = {len(f[6]) - 24 for f in frames if f[1] == 0}
    assert max(sizes) == 4096
    assert truth.dumps[0].outcome == "finished"


def test_12x_encrypted_writes_are_4k_calls_and_key_after_kdh(tmp_path):
    frames, truth = simulate_frames(DumpSpec(generation="12", size=64 << 10, encrypt=True),
                                    seed=2)
    cm = [H.unpack_from(f[6]) for f in frames if f[1] == 0]
    types = [m[0] for m in cm]
    kdh_at = types.index(MsgType.KDH)
    assert types[kdh_at + 1:] == [MsgType.EKCD_KEY] * 3 + [MsgType.FINISHED]
    assert [m[2] for m in cm[kdh_at + 1:kdh_at + 4]] == [0, 1448, 2896]
    vm = [m for m in cm if m[0] == MsgType.VMCORE]
    assert all(m[3] in (1448, 1200) for m in vm)  # 4 KiB calls: 1448 + 1448 + 1200
    files = truth.files()
    assert "vmcore_encrypted.192.0.2.10.0" in files and "key.192.0.2.10.0" in files
    key = truth.file_bytes("key.192.0.2.10.0")
    assert len(key) == 4096 and parse_kdk(key)["encryption_name"] == "aes-256-cbc"
    kdh = parse_kdh(truth.dumps[0].session.kdh_raw[0])
    assert kdh["dumpkeysize"] == 4096
    plain = DumpImage(64 << 10, truth.dumps[0].material.stream.image.seed).read(0, 64 << 10)
    assert truth.file_bytes("vmcore_encrypted.192.0.2.10.0") != plain


def test_main_key_right_after_herald():
    frames, truth = simulate_frames(DumpSpec(generation="main", size=64 << 10, encrypt=True),
                                    seed=3)
    types = [H.unpack_from(f[6])[0] for f in frames if f[1] == 0]
    assert types[:4] == [MsgType.HERALD] + [MsgType.EKCD_KEY] * 3
    assert types[-2:] == [MsgType.KDH, MsgType.FINISHED]
    assert parse_kdk(truth.file_bytes("key.192.0.2.10.0"))["encryption_name"] == "chacha20"


def test_13_key_after_kdh():
    frames, _ = simulate_frames(DumpSpec(generation="13", size=64 << 10, encrypt=True), seed=3)
    types = [H.unpack_from(f[6])[0] for f in frames if f[1] == 0]
    assert types[-5:] == [MsgType.KDH] + [MsgType.EKCD_KEY] * 3 + [MsgType.FINISHED]


# --- compression ------------------------------------------------------------------------------
@pytest.mark.parametrize("gen,comp", [("12", "gzip"), ("main", "gzip"), ("13", "zstd")])
def test_compressed_stream_names_and_truncation(gen, comp):
    size = 256 << 10
    frames, truth = simulate_frames(DumpSpec(generation=gen, size=size, compress=comp), seed=4)
    att = truth.dumps[0]
    stream = att.material.stream
    name = f"vmcore.192.0.2.10.0.{'gz' if comp == 'gzip' else 'zst'}"
    files = truth.files()
    assert name in files
    data = truth.file_bytes(name)
    assert len(data) == stream.dumplength < stream.wire_length
    assert stream.wire_length % 4096 == 0 and stream.wire_length - stream.dumplength < 4096 \
        or stream.wire_length % 4096 == 0
    image = DumpImage(size, stream.image.seed).read(0, size)
    if comp == "gzip":
        assert data[:2] == b"\x1f\x8b" and zlib.decompress(data, 31) == image
    else:
        import zstandard
        assert data[:4] == b"\x28\xb5\x2f\xfd"
        assert zstandard.ZstdDecompressor().decompressobj().decompress(data) == image
    kdh = parse_kdh(att.session.kdh_raw[0])
    assert kdh["dumplength"] == stream.dumplength and kdh["compression"] == (1 if comp == "gzip" else 2)
    assert kdh["dumpextent"] == size and kdh["parity_ok"]
    # the padded tail on the wire: zeros on main, stale bytes on 12.x
    vm = {}
    for f in frames:
        if f[1] == 0:
            m = H.unpack_from(f[6])
            if m[0] == MsgType.VMCORE:
                vm[m[2]] = f[6][24:]
    wire = b"".join(vm[k] for k in sorted(vm))
    tail = wire[stream.dumplength:]
    if gen == "main":
        assert tail == bytes(len(tail))
    elif gen == "12":
        assert tail != bytes(len(tail))


def test_duplicate_kdh_appends_info_and_suffix_again():
    # drop the KDH's ACK once: the client resends the KDH, netdumpd handles it twice
    spec = DumpSpec(generation="13", size=64 << 10, compress="gzip")
    frames, truth = simulate_frames(spec, seed=5)
    kdh_seq = next(H.unpack_from(f[6])[1] for f in frames
                   if f[1] == 0 and H.unpack_from(f[6])[0] == MsgType.KDH)
    spec.drop_acks = {kdh_seq: 1}
    frames, truth = simulate_frames(spec, seed=5)
    sess = truth.dumps[0].session
    assert len(sess.kdh_raw) == 2
    assert sess.core_name == "vmcore.192.0.2.10.0.gz.gz"
    info = truth.file_bytes(sess.info_name)
    assert info.count(b"  Architecture: amd64\n") == 2 and info.endswith(b"Dump complete\n")
    cap = truth.to_json()["dumps"][0]["capture"]
    assert cap["retransmissions"] == 1 and cap["retransmissions_spurious"] == 1


# --- reliability -----------------------------------------------------------------------------
def test_resend_only_unacked_same_bytes_after_about_a_second():
    spec = DumpSpec(generation="13", size=128 << 10, drop_seqnos={5: 1, 7: 2})
    frames, truth = simulate_frames(spec, seed=6, capture=CaptureSpec(point="client"))
    sends = {}
    for f in frames:
        if f[1] == 0:
            m = H.unpack_from(f[6])
            sends.setdefault(m[1], []).append((f[0], f[6]))
    assert len(sends[5]) == 2 and len(sends[7]) == 3
    assert all(len(v) == 1 for k, v in sends.items() if k not in (5, 7))
    for s in (5, 7):
        assert len({p for _, p in sends[s]}) == 1  # same seqno/offset/payload
        gaps = [b[0] - a[0] for a, b in zip(sends[s], sends[s][1:])]
        assert all(1.0e9 <= g <= 1.01e9 for g in gaps), gaps
    att = truth.dumps[0]
    assert att.rounds_per_call == {1: 2} and att.retransmissions_sent == 3
    j = truth.to_json()["dumps"][0]
    assert j["capture"]["retransmissions"] == 3 and j["capture"]["retransmissions_needed"] == 3
    assert {r["cause"] for r in j["retransmissions"]} == {"data-lost"}
    assert j["capture"]["complete"]


def test_eleven_rounds_then_abort():
    spec = DumpSpec(generation="13", size=64 << 10, drop_seqnos={3: 99})
    frames, truth = simulate_frames(spec, seed=7, capture=CaptureSpec(point="client"))
    att = truth.dumps[0]
    assert att.outcome == "aborted"
    times = [f[0] for f in frames if f[1] == 0 and H.unpack_from(f[6])[1] == 3]
    assert len(times) == 12
    types = {H.unpack_from(f[6])[0] for f in frames if f[1] == 0}
    assert MsgType.FINISHED not in types and MsgType.KDH not in types
    info = truth.file_bytes(att.session.info_name)
    assert info.endswith(infofile.STATUS_TIMED_OUT)
    assert att.rounds_per_call[1] == 11


def test_jumbo_mtu_13x_never_acked_by_netdumpd():
    frames, truth = simulate_frames(DumpSpec(generation="13", size=64 << 10, mtu=9000), seed=8)
    att = truth.dumps[0]
    assert att.outcome == "aborted" and att.max_payload == 8948
    acked = {struct.unpack(">I", f[6])[0] for f in frames if f[1] == 1}
    sent = {H.unpack_from(f[6])[1]: len(f[6]) - 24 for f in frames if f[1] == 0}
    assert any(n > 4096 for n in sent.values())
    assert all(sent[s] <= 4096 for s in acked)  # payloads above 4096 are never ACKed
    assert all(s in acked for s, n in sent.items() if n <= 4096)


def test_herald_retransmitted_reacked_from_same_port():
    spec = DumpSpec(generation="13", size=32 << 10, drop_acks={1: 2})
    frames, truth = simulate_frames(spec, seed=9)
    heralds = [f for f in frames if f[1] == 0 and f[5] == 20023]
    acks1 = [f for f in frames if f[1] == 1 and struct.unpack(">I", f[6])[0] == 1]
    assert len(heralds) == 3 and len(acks1) == 3 and len({f[4] for f in acks1}) == 1
    assert len(truth.server.sessions) == 1 and truth.dumps[0].outcome == "finished"
    j = truth.to_json()["dumps"][0]
    assert j["capture"]["retransmissions_spurious"] == 2


def test_lossy_truth_matches_capture():
    spec = DumpSpec(generation="12", size=256 << 10)
    net = NetworkSpec(loss=0.03, ack_loss=0.03, reorder=0.05, dup=0.01, ack_dup=0.01)
    frames, truth = simulate_frames(spec, net, seed=10)
    att = truth.dumps[0]
    assert att.outcome == "finished" and att.retransmissions_sent > 0
    j = truth.to_json()["dumps"][0]
    assert j["capture"]["complete"] and j["capture"]["retransmissions"] > 0
    # visible retransmissions counted from the capture alone agree with the truth
    seen, visible, counts = set(), 0, {}
    for f in frames:
        if f[1] == 0:
            m = H.unpack_from(f[6])
            counts[m[0]] = counts.get(m[0], 0) + 1
            if m[1] in seen and not f[7][4]:
                visible += 1
            seen.add(m[1])
    assert visible == j["capture"]["retransmissions_visible"]
    assert {MsgType(k).name: v for k, v in counts.items()} == j["capture"]["counts"]
    assert truth.file_bytes(att.session.core_name) == \
        DumpImage(256 << 10, att.material.stream.image.seed).read(0, 256 << 10)
    json.dumps(truth.to_json())


def test_capture_loss_missing_ranges_are_exact(tmp_path):
    spec = DumpSpec(generation="13", size=256 << 10)
    path, truth = simulate(tmp_path / "l.pcap", spec, capture=CaptureSpec(loss=0.05), seed=12)
    att = truth.dumps[0]
    assert att.outcome == "finished"
    cov = IntervalSet()
    for m in client_msgs(udp_msgs(path)):
        if m[1] == MsgType.VMCORE:
            cov.add(m[3], m[3] + m[4])
    missing = cov.gaps(0, 256 << 10)
    assert missing and [list(r) for r in missing] == truth.to_json()["dumps"][0]["capture"]["missing"]
    # the server still got everything
    assert truth.files()[att.session.core_name]["sha256"] == att.material.stream.sha256
    rec = truth.to_json()["dumps"][0]["capture"]["recovered_vmcore_sha256"]
    buf = bytearray(256 << 10)
    for m in client_msgs(udp_msgs(path)):
        if m[1] == MsgType.VMCORE:
            buf[m[3]:m[3] + m[4]] = m[6]
    assert hashlib.sha256(bytes(buf)).hexdigest() == rec


def test_capture_starts_late():
    frames, truth = simulate_frames(DumpSpec(size=64 << 10), seed=13,
                                    capture=CaptureSpec(start_after=4))
    assert H.unpack_from(frames[0][6])[0] == MsgType.VMCORE or frames[0][1] == 1
    assert truth.to_json()["dumps"][0]["capture"]["counts"].get("HERALD", 0) == 0
    assert truth.capture["frames_at_capture_point"] == truth.capture["frames_written"] + 4


def test_restart_gives_two_indexes():
    spec = DumpSpec(generation="13", size=128 << 10, restart_after=64 << 10)
    frames, truth = simulate_frames(spec, seed=14)
    a0, a1 = truth.dumps
    assert a0.outcome == "restarted" and a1.outcome == "finished"
    assert (a0.session.index, a1.session.index) == (0, 1)
    assert a0.session.port != a1.session.port
    assert truth.file_bytes("info.192.0.2.10.0").endswith(infofile.STATUS_TIMED_OUT)
    assert truth.file_bytes("info.192.0.2.10.1").endswith(infofile.STATUS_COMPLETE)
    heralds = [f for f in frames if f[1] == 0 and f[5] == 20023]
    assert len(heralds) == 2
    # netdumpd drops its unflushed coalescing buffer when the session times out
    assert truth.files()["vmcore.192.0.2.10.0"]["size"] <= 64 << 10


def test_several_clients_interleave():
    dumps = [DumpSpec(generation=g, size=128 << 10, client_ip=f"198.51.100.{i + 1}",
                      start_ms=i * 1.3) for i, g in enumerate(("12", "13", "main"))]
    frames, truth = simulate_frames(dumps, seed=15)
    order = [f[2] if f[1] == 0 else f[3] for f in frames]
    switches = sum(1 for a, b in zip(order, order[1:]) if a != b)
    assert switches > 10
    assert [a.outcome for a in truth.dumps] == ["finished"] * 3
    assert all(ts1 <= ts2 for ts1, ts2 in zip([f[0] for f in frames], [f[0] for f in frames][1:]))
    assert len({a.session.port for a in truth.dumps}) == 3


def test_blackout_aborts_and_finish_unacked_gets_icmp():
    frames, truth = simulate_frames(DumpSpec(size=64 << 10, blackout_ms=((0.5, 60000),)), seed=16)
    assert truth.dumps[0].outcome == "aborted"
    # lost FINISHED ACK: client resends FINISHED to a closed port -> ICMP port unreachable
    spec = DumpSpec(size=32 << 10)
    frames, truth = simulate_frames(spec, seed=17)
    fin = next(H.unpack_from(f[6])[1] for f in frames
               if f[1] == 0 and H.unpack_from(f[6])[0] == MsgType.FINISHED)
    spec.drop_acks = {fin: 1}
    frames, truth = simulate_frames(spec, seed=17)
    assert any(f[1] == 2 for f in frames)
    assert truth.dumps[0].outcome == "finish-unacked"  # "failed to close the transaction"
    assert truth.file_bytes("info.192.0.2.10.0").endswith(infofile.STATUS_COMPLETE)
    j = truth.to_json()["dumps"][0]["capture"]
    assert j["icmp_frames"] == 11


def test_committed_samples_are_reproducible(tmp_path):
    import importlib.util
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "samples"
    spec = importlib.util.spec_from_file_location("make_samples", root / "make_samples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name in ("clean-13x.pcap", "multi-client.pcapng"):
        if not (root / name).exists():
            pytest.skip("samples not generated")
        out, _truth = simulate(tmp_path / name, expected=tmp_path / "exp" / name,
                               **mod.SAMPLES[name])
        assert out.read_bytes() == (root / name).read_bytes()
        exp = root / f"{name.rsplit('.', 1)[0]}.expected"
        assert (tmp_path / "exp" / name / "SHA256SUMS").read_text() == \
            (exp / "SHA256SUMS").read_text()
