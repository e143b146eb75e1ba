"""Hostile input: the readers raise CaptureError at open or nothing at all."""
from __future__ import annotations

import gzip
import os
import tempfile


from hypothesis import HealthCheck, given, settings, strategies as st

from analyzer.capture import CaptureError, CaptureReader
from analyzer.capture.decode import Decoder
from analyzer.capture.links import SUPPORTED_LINKTYPES
from analyzer.datagram import Datagram, Notice, Unreachable
from tests.support.capture_builders import (
    ack, block, epb, ether, fragments, idb, msg, null, pcap, shb, sll, sll2, spb, udp_ip,
)


T0 = 1_700_000_000 * 10**9
PORTS = frozenset({20023, 20024})


def _samples() -> list[bytes]:
    ip = udp_ip(20024, 20023, msg(3, 2, 0, bytes(range(200))))
    ackip = udp_ip(40000, 20024, ack(2))
    frags = fragments(udp_ip(20024, 20023, bytes(3000), ident=5, df=False), 1480)
    eth = [ether(ip), ether(ackip, vlans=[(0x8100, 3)]), *[ether(f) for f in frags]]
    return [
        pcap([(T0 + i, f) for i, f in enumerate(eth)]),
        pcap([(T0, ip), (T0 + 1, ackip)], linktype=101, endian=">", nano=True),
        pcap([(T0, sll(ip)), (T0, sll(ackip))], linktype=113),
        pcap([(T0, null(ip))], linktype=0),
        shb() + idb("<", 1) + idb("<", 276, tsresol=9) + epb("<", 0, 5, ether(ip))
        + epb("<", 1, 6, sll2(ackip)) + spb("<", ether(ip)) + block("<", 0xBAD, bytes(8))
        + shb(">") + idb(">", 228, tsresol=0x83, tsoffset=5) + epb(">", 0, 7, ip),
    ]


SAMPLES = _samples()


def consume(data: bytes, chunk: int = 4096) -> list:
    fd, path = tempfile.mkstemp(suffix=".cap")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            r = CaptureReader([path], chunk_size=chunk)
        except CaptureError as e:
            assert str(e) and "\n" not in str(e)
            return []
        items = list(r)
        for it in items:
            assert type(it) in (Datagram, Notice, Unreachable)
            if type(it) is Datagram:
                assert it.missing >= 0 and isinstance(it.ts, int) and len(it.src) == 4
                assert it.frame >= 1
        assert r.bytes_read == r.total_bytes
        return items
    finally:
        os.unlink(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data):
    consume(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(SAMPLES))), st.data())
def test_mutated_captures(which, data):
    buf = bytearray(SAMPLES[which])
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[pos] ^= data.draw(st.integers(1, 255))
        elif op == "set" and len(buf) > pos + 4:
            buf[pos:pos + 4] = data.draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                                          b"\x00\x00\x01\x00", b"\xff\xff\x00\x00"]))
        elif op == "cut":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del buf[pos:pos + data.draw(st.integers(1, 16))]
    consume(bytes(buf), chunk=data.draw(st.sampled_from([4096, 1 << 20])))
    consume(gzip.compress(bytes(buf)))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(range(len(SAMPLES))), st.integers(0, 3000))
def test_every_cut_of_a_gzip_file(which, cut):
    comp = gzip.compress(SAMPLES[which])
    consume(comp[: cut % (len(comp) + 1)])


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(SUPPORTED_LINKTYPES) + [999]), st.binary(max_size=120), st.booleans())
def test_decoder_on_arbitrary_frames(lt, data, cut):
    dec = Decoder(PORTS)
    prefix = {1: bytes(12) + b"\x08\x00", 113: bytes(14) + b"\x08\x00", 276: b"\x08\x00" + bytes(18),
              0: b"\x02\x00\x00\x00", 108: b"\x00\x00\x00\x02"}.get(lt, b"")
    for frame in (data, prefix + data, prefix + b"\x45\x00" + data, prefix + b"\x45" + bytes(8) + b"\x11" + data):
        out = dec.frame(lt, frame, 1, T0, cut)
        assert out is None or all(type(i) in (Datagram, Notice, Unreachable) for i in out)
    dec.flush()


def test_all_samples_read_cleanly():
    for s in SAMPLES:
        items = consume(s)
        assert any(type(i) is Datagram for i in items)
        assert not [i for i in items if type(i) is Notice and i.kind == "truncated-capture"]


# -- the fast paths agree with the general decoder --------------------------------------

_WRAP = {
    (1, "eth"): lambda ip: ether(ip),
    (1, "vlan"): lambda ip: ether(ip, vlans=[(0x8100, 7)]),
    (1, "qinq"): lambda ip: ether(ip, vlans=[(0x88A8, 1), (0x8100, 2)]),
    (113, "sll"): lambda ip: sll(ip),
    (276, "sll2"): lambda ip: sll2(ip),
    (101, "raw"): lambda ip: ip,
    (0, "null"): lambda ip: null(ip),
    (108, "loop"): lambda ip: null(ip, "big"),
}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_WRAP)), st.binary(max_size=1600),
       st.sampled_from(["auto", "bad", 0, "offload"]), st.booleans(), st.booleans(),
       st.sampled_from([(20024, 20023), (33000, 20024), (1, 2)]))
def test_fast_paths_match_general_decoder(kind, payload, checksum, bad_ip, nano, ports):
    from tests.support.capture_builders import ipv4, udp

    ip = ipv4(udp(ports[0], ports[1], payload, checksum=checksum), bad_checksum=bad_ip)
    frame = _WRAP[kind](ip)
    lt = kind[0]
    expected = Decoder(PORTS).frame(lt, frame, 1, T0) or []
    fd, path = tempfile.mkstemp(suffix=".pcap")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pcap([(T0, frame)], linktype=lt, nano=True))
        got = list(CaptureReader([path]))
        with open(path, "wb") as f:
            f.write(shb() + idb("<", lt, tsresol=9) + epb("<", 0, T0, frame))
        got_ng = list(CaptureReader([path]))
    finally:
        os.unlink(path)
    assert got == expected == got_ng
    assert len(got) == (0 if ports == (1, 2) else 1)
