"""The compiled walker loops give exactly what the Python walkers give: the same items (the
same checksum verdicts, link identities, times and frame numbers) and the same notices, on
the samples, on frames of every kind they take or hand back, and on mutated captures."""
from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from analyzer.capture import CaptureError, CaptureReader, speedups
from analyzer.datagram import Datagram
from tests.support.capture_builders import (
    SERVER_MAC, ack, epb, ether, fragments, idb, ipv4, msg, null, pcap, shb, sll, sll2, spb, udp,
    udp_ip,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p for p in (ROOT / "samples").iterdir() if p.suffix in (".pcap", ".pcapng"))
T0 = 1_700_000_000 * 10**9 + 123_456_789

needs_compiled = pytest.mark.skipif(speedups.compiled is None,
                                    reason="the compiled walker loops are not built")


def test_the_compiled_loops_are_built_where_a_compiler_and_headers_are():
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the pure-Python walkers are the whole reader here")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("no Python headers: the pure-Python walkers are the whole reader here")
    if os.environ.get("NETDUMP_ANALYZER_PURE") == "1":
        pytest.skip("NETDUMP_ANALYZER_PURE=1")
    assert speedups.compiled is not None, "a C compiler is here but _speedups was not built"


def _both(path: str, **kw):
    """Items (or the CaptureError) of both walkers."""
    out = []
    for compiled in (True, False):
        try:
            out.append([x for b in CaptureReader([path], compiled=compiled, **kw).batches()
                        for x in b])
        except CaptureError as e:
            out.append(("error", str(e)))
    return out


@needs_compiled
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_read_the_same(path):
    fast, slow = _both(str(path))
    assert fast == slow and any(type(x) is Datagram for x in fast)


def _frames() -> list[bytes]:
    """Frames the compiled loops take, and frames at each of their borders."""
    body = bytes(range(256)) * 6
    sizes = (1472, 1449, 28, 24, 4)  # full-size, odd, small, header only, ACK
    out = []
    for ck, ip in [("auto", {}), ("bad", {}), ("offload", {}), (0, {}),
                   ("auto", {"bad_checksum": True}), ("auto", {"zero_checksum": True}),
                   ("bad", {"zero_checksum": True}), (0, {"bad_checksum": True})]:
        for size in sizes:
            sport, dport = (40001, 20024) if size == 4 else (20024, 40001)
            out.append(ether(udp_ip(sport, dport, body[:size], checksum=ck, **ip)))
    for tags in ([(0x8100, 10)], [(0x88A8, 100), (0x8100, 20)],
                 [(0x9100, 1), (0x8100, 2), (0x8100, 3), (0x8100, 4)],
                 [(0x8100, i) for i in range(1, 6)]):  # five tags: more than the loops keep
        out.append(ether(udp_ip(20024, 40001, msg(3, 7, 0, body[:1000])), vlans=tags))
        out.append(ether(udp_ip(40001, 20024, ack(7), checksum="bad"), vlans=tags))
    dgram = udp_ip(20024, 40001, msg(3, 8, 0, body[:1400]))
    out += [ether(f) for f in fragments(dgram, 512)]
    out += [
        ether(udp_ip(20024, 40001, msg(3, 9), options=b"\x01\x01\x01\x01")),  # IP options
        ether(ipv4(b"\x03\x03\x00\x00" + b"\x00" * 4 + dgram[:28], proto=1)),  # ICMP
        ether(ipv4(b"x" * 40, proto=6)),  # TCP
        ether(udp_ip(53, 53, b"dns")),  # other ports
        ether(b"\x00" * 28, ethertype=0x0806),  # ARP
        ether(udp_ip(20024, 40001, msg(3, 10), total_length=200)),  # IP longer than the frame
        ether(ipv4(udp(20024, 40001, msg(3, 11), length=30))),  # UDP length disagrees
        ether(udp_ip(20024, 40001, msg(3, 12)), src=SERVER_MAC),  # a third link identity
        ether(udp_ip(20024, 40001, msg(3, 13)))[:41],  # too short for the fast path
        ether(udp_ip(20024, 40001, msg(3, 14)), vlans=[(0x8100, 5)])[:20],  # cut in the tags
    ]
    return out


@needs_compiled
@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("chunk", [4096, 1 << 20])
def test_pcap_frames_read_the_same(tmp_path, endian, nano, chunk):
    frames = _frames()
    path = tmp_path / "f.pcap"
    path.write_bytes(pcap([(T0 + i * 1000, f) for i, f in enumerate(frames * 3)],
                          endian=endian, nano=nano))
    fast, slow = _both(str(path), chunk_size=chunk)
    assert fast == slow
    bad = [x.bad_checksum for x in fast if type(x) is Datagram]
    assert any(bad) and not all(bad)
    assert any(x.link and x.link[1] for x in fast if type(x) is Datagram)  # tagged ones taken


@needs_compiled
@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("chunk", [4096, 1 << 20])
def test_pcapng_frames_read_the_same(tmp_path, endian, chunk):
    frames = _frames()
    blocks = [shb(endian), idb(endian), idb(endian, tsresol=9, tsoffset=-5),
              idb(endian, linktype=101), idb(endian, tsresol=0x80 | 20),  # binary clock
              idb(endian, tsresol=12), idb(endian, tsoffset=2**62)]  # offset past 64 bits in ns
    for i, f in enumerate(frames * 2):
        iface = i % 6
        data = f[14:] if iface == 2 else f
        units = (T0 // 1000 + i) if iface in (0, 5) else (T0 + i * 1000)
        if iface == 3:
            units = (T0 << 20) // 10**9
        blocks.append(epb(endian, iface, units, data))
        if i % 17 == 0:
            blocks.append(spb(endian, f))
    blocks += [shb(endian), idb(endian)] + [epb(endian, 0, T0 // 1000 + i, f)
                                            for i, f in enumerate(frames)]
    path = tmp_path / "f.pcapng"
    path.write_bytes(b"".join(blocks))
    fast, slow = _both(str(path), chunk_size=chunk)
    assert fast == slow
    assert len({x.ts for x in fast if type(x) is Datagram}) > len(frames)


def _mutable_capture() -> bytes:
    frames = _frames()[:12] + _frames()[-14:]
    ips = [f[14:] for f in frames if f[12:14] == b"\x08\x00"][:8]
    return b"".join([shb(), idb(), idb(tsresol=9), idb(linktype=276), idb(linktype=101)]
                    + [epb("<", i % 2, T0 // 1000 + i, f) for i, f in enumerate(frames)]
                    + [epb("<", 2 + i % 2, T0 // 1000 + i, sll2(ip) if i % 2 == 0 else ip)
                       for i, ip in enumerate(ips)])


_PCAPNG = _mutable_capture()
_PCAP = pcap([(T0 + i, f) for i, f in enumerate(_frames())])


@needs_compiled
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(["pcap", "pcapng"]), data=st.data())
def test_mutated_captures_read_the_same(tmp_path_factory, which, data):
    raw = bytearray(_PCAP if which == "pcap" else _PCAPNG)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(raw) // 2, len(raw)))
    path = tmp_path_factory.mktemp("m") / f"m.{which}"
    path.write_bytes(bytes(raw[:cut]))
    fast, slow = _both(str(path), chunk_size=data.draw(st.sampled_from([4096, 1 << 20])))
    assert fast == slow


@needs_compiled
def test_the_compiled_loops_refuse_bad_arguments_with_an_exception():
    from analyzer.capture.speedups import link_cache, port_bitmap

    walk, bits = speedups.compiled, port_bitmap({20023, 20024})
    for pos in (-1, 41, 2**62):
        with pytest.raises(ValueError):
            walk.walk_pcap(b"x" * 40, pos, 0, False, 1000, 100, 1, bits, True, [], Datagram,
                           link_cache())
        with pytest.raises(ValueError):
            walk.walk_pcapng(b"x" * 40, pos, 0, False, [], bits, True, [], Datagram,
                             link_cache())
    with pytest.raises(TypeError):
        walk.walk_pcapng(b"x" * 40, 0, 0, False, [[1, 0]], bits, True, [], Datagram,
                         link_cache())


@needs_compiled
def test_the_compiled_event_constructor_makes_the_same_named_tuples():
    from analyzer.protocol.events import Ack, Message
    from analyzer.speedups import pure_new_tuple

    new = speedups.compiled.new_tuple
    fields = (1, 2, 3, 3, 7, 4096, 1448, b"x" * 1448, False, 2, False)
    for make in (new, pure_new_tuple):
        m = make(Message, *fields)
        assert type(m) is Message and m == Message(*fields) and m.payload == fields[7]
        a = make(Ack, 1, 5, 6, 7, 2, False, 5, 40001)
        assert type(a) is Ack and a.sport == 40001 and a._replace(sport=1).sport == 1
    assert new(tuple) == () and type(new(tuple, 1)) is tuple
    for bad in ((), (int, 1), (Message(*fields),)):
        with pytest.raises(TypeError):
            new(*bad)


def _ip_packets() -> list[bytes]:
    """The IPv4 packets of the untagged Ethernet frames of _frames(), whole or cut."""
    out = []
    for f in _frames():
        if f[12:14] == b"\x08\x00":
            out.append(f[14:])
    return out + [b"", b"\x45", b"\x60" + bytes(40)]  # empty, cut, IPv6


def _link_frames(lt: int) -> list[bytes]:
    ips = _ip_packets()
    if lt in (101, 228, 12, 14):
        return ips
    if lt == 113:
        return ([sll(ip) for ip in ips] + [sll(ip, addr=a) for ip in ips[:3]
                                         for a in (b"", b"\x01\x02", bytes(range(8)))]
                + [sll(ips[0], protocol=0x86DD), sll(ips[0], pkttype=4), sll(ips[0])[:15]])
    if lt == 276:
        return ([sll2(ip) for ip in ips] + [sll2(ip, addr=a) for ip in ips[:3]
                                          for a in (b"", b"\x01\x02", bytes(range(8)))]
                + [sll2(ips[0], protocol=0x86DD), sll2(ips[0])[:19]])
    return ([null(ip) for ip in ips] + [null(ip, "big") for ip in ips[:5]]
            + [null(ips[0], family=24), null(ips[0])[:3]])


@needs_compiled
@pytest.mark.parametrize("lt", [101, 228, 12, 14, 113, 276, 0, 108])
@pytest.mark.parametrize("chunk", [4096, 1 << 20])
def test_other_link_types_read_the_same(tmp_path, lt, chunk):
    frames = _link_frames(lt)
    path = tmp_path / "f.pcap"
    path.write_bytes(pcap([(T0 + i * 1000, f) for i, f in enumerate(frames * 2)], linktype=lt))
    fast, slow = _both(str(path), chunk_size=chunk)
    assert fast == slow
    got = [x for x in fast if type(x) is Datagram]
    assert any(x.bad_checksum for x in got) and not all(x.bad_checksum for x in got)
    if lt in (113, 276):
        assert {x.link for x in got} >= {(b"", ()), (b"\x01\x02", ()), (bytes(range(8)), ())}


@needs_compiled
@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_with_interfaces_of_every_link_type_reads_the_same(tmp_path, endian):
    lts = [1, 101, 113, 276, 0, 228]
    blocks = [shb(endian)] + [idb(endian, linktype=lt) for lt in lts]
    per = {i: _link_frames(lt) if lt != 1 else _frames() for i, lt in enumerate(lts)}
    for k in range(max(map(len, per.values()))):
        for i in per:
            if k < len(per[i]):
                blocks.append(epb(endian, i, T0 // 1000 + k * 10 + i, per[i][k]))
    path = tmp_path / "f.pcapng"
    path.write_bytes(b"".join(blocks))
    fast, slow = _both(str(path), chunk_size=4096)
    assert fast == slow
    assert {x.link is None for x in fast if type(x) is Datagram} == {True, False}
