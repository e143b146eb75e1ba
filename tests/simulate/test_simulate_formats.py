"""The capture writer: file formats, link types, checksums, snap length, fragments, CLI."""
from __future__ import annotations

import json
import struct

import dpkt
import pytest
from click.testing import CliRunner

from analyzer.simulate import CaptureSpec, DumpSpec, simulate
from analyzer.simulate.command import simulate_command
from analyzer.wire import MSG_HDR, MsgType
from tests.support.dpkt_read import client_msgs, read_capture, udp_msgs

SPEC = DumpSpec(generation="13", size=32 << 10)


def _checksums_ok(ip) -> bool:
    raw = bytes(ip)
    fresh = dpkt.ip.IP(raw)
    fresh.sum = 0
    if ip.p == 17:
        fresh.data.sum = 0
    again = dpkt.ip.IP(bytes(fresh))
    return again.sum == ip.sum and (ip.p != 17 or again.data.sum == ip.data.sum)


@pytest.mark.parametrize("link", ["ethernet", "vlan", "qinq", "sll", "sll2", "raw", "ipv4", "null"])
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_link_types(tmp_path, link, fmt):
    path, truth = simulate(tmp_path / f"x.{fmt}", SPEC, capture=CaptureSpec(format=fmt, link=link),
                           seed=1)
    frames = read_capture(path)
    assert len(frames) == truth.capture["file_frames"]
    ips = [ip for _, ip in frames]
    if link in ("vlan", "qinq"):
        raw = path.read_bytes()
        assert (b"\x81\x00\x00\x64" in raw) and (link == "vlan" or b"\x88\xa8\x00\xc8" in raw)
    assert all(ip is not None and _checksums_ok(ip) for ip in ips)
    msgs = udp_msgs(path)
    assert sum(1 for m in msgs if m[3] == 20024) == truth.dumps[0].cap_client_frames
    if link == "ethernet" and fmt == "pcap":
        # 4-byte ACKs are padded to the 60-byte Ethernet minimum
        raw = path.read_bytes()
        first_len = struct.unpack_from("<I", raw, 24 + 8)[0]
        second = 24 + 16 + first_len
        assert struct.unpack_from("<II", raw, second + 8) == (60, 60)


@pytest.mark.parametrize("tsres,bo", [("us", "<"), ("ns", ">"), ("ns", "<"), ("us", ">")])
def test_pcap_resolution_and_byte_order(tmp_path, tsres, bo):
    path, truth = simulate(tmp_path / "x.pcap", SPEC,
                           capture=CaptureSpec(tsres=tsres, byteorder=bo), seed=2)
    raw = path.read_bytes()
    magic = struct.unpack(bo + "I", raw[:4])[0]
    assert magic == (0xA1B23C4D if tsres == "ns" else 0xA1B2C3D4)
    frames = read_capture(path)
    assert abs(float(frames[0][0]) - truth.dumps[0].t_start / 1e9) < 0.01


def test_pcapng_two_interfaces_gzip(tmp_path):
    cap = CaptureSpec(format="pcapng", interfaces=[("ethernet", "us"), ("sll2", "ns")], gzip=True)
    path, truth = simulate(tmp_path / "x.pcapng.gz", SPEC, capture=cap, seed=3)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    import gzip
    import io
    rd = dpkt.pcapng.Reader(io.BytesIO(gzip.decompress(path.read_bytes())))
    n = sum(1 for _ in rd)
    assert n == truth.capture["file_frames"]
    raw = gzip.decompress(path.read_bytes())
    # two IDBs: linktypes 1 and 276
    idbs = []
    pos = 0
    while pos < len(raw):
        btype, blen = struct.unpack_from("<II", raw, pos)
        if btype == 1:
            idbs.append(struct.unpack_from("<H", raw, pos + 8)[0])
        pos += blen
    assert idbs == [1, 276]


def test_snaplen_cuts_and_truth_reports_missing(tmp_path):
    path, truth = simulate(tmp_path / "s.pcap", SPEC, capture=CaptureSpec(snaplen=1000), seed=4)
    j = truth.to_json()["dumps"][0]["capture"]
    assert j["cut_frames"] > 0 and not j["complete"]
    # each full packet lost 1448 - (1000 - 14 - 28 - 24) bytes
    kept = 1000 - 14 - 28 - 24
    assert j["missing"][0] == [kept, 1448] or j["missing"][0][0] == kept


def test_fragmented_datagrams_reassemble(tmp_path):
    path, truth = simulate(tmp_path / "f.pcap", SPEC, capture=CaptureSpec(fragment=576), seed=5)
    frames = read_capture(path)
    frags = [ip for _, ip in frames if ip.mf or ip.offset]
    assert frags
    # reassemble by (src, id)
    groups = {}
    for ip in frags:
        groups.setdefault((ip.src, ip.id), []).append(ip)
    payloads = []
    for parts in groups.values():
        parts.sort(key=lambda p: p.offset)
        data = b"".join(bytes(p.data) if isinstance(p.data, bytes) else bytes(p.data)
                        for p in parts)
        payloads.append(data[8:])
    vm = [p for p in payloads if MSG_HDR.parse(p).type == MsgType.VMCORE]
    assert vm and all(len(p) == 24 + MSG_HDR.parse(p).length for p in vm)
    assert truth.to_json()["dumps"][0]["capture"]["complete"]


def test_cli(tmp_path):
    out = tmp_path / "cli.pcapng"
    res = CliRunner().invoke(simulate_command, [
        "--generation", "12", "--size", "64k", "--loss", "0.02", "--clients", "2",
        "--compress", "gzip", "--format", "pcapng", "--link", "sll", "--seed", "3",
        "--path", "crash", "-o", str(out), "--expected", str(tmp_path / "exp")])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert len(summary["dumps"]) == 2
    assert (tmp_path / "exp" / "truth.json").exists()
    assert (tmp_path / "exp" / "crash" / "vmcore.192.0.2.10.0.gz").exists()
    assert len(client_msgs(udp_msgs(out))) > 0
