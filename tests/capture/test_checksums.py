"""The checksum rule against RFC 1071 computed the obvious way: a whole buffer of datagrams at
any alignment at once, single headers and datagrams, and the reader's verdicts (batched per
read buffer) against the same datagrams read one frame per buffer."""
from __future__ import annotations

import struct

from hypothesis import example, given, settings
from hypothesis import strategies as st

from analyzer.capture import CaptureReader
from analyzer.capture.checksums import datagrams_wrong, ip_header_bad, udp_bad
from analyzer.datagram import Datagram
from tests.support import capture_builders as cb


def fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def word_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    return fold(sum(data[i] << 8 | data[i + 1] for i in range(0, len(data), 2)))


def expected_wrong(ip: bytes) -> bool:
    """RFC 791/768 verification with the readers' allowances: a zero field is not computed,
    and a UDP field holding the pseudo-header sum (or its complement) is checksum offload."""
    ihl = (ip[0] & 15) * 4
    hdr, udp = ip[:ihl], ip[ihl:]
    if hdr[10:12] != b"\x00\x00" and word_sum(hdr) not in (0, 0xFFFF):
        return True
    field = udp[6] << 8 | udp[7]
    if not field:
        return False
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    if word_sum(pseudo + udp) in (0, 0xFFFF):
        return False
    ps = word_sum(pseudo)
    return field % 0xFFFF not in (ps % 0xFFFF, (0xFFFF - ps) % 0xFFFF)


KINDS = ("auto", "bad", "offload", 0, 1, 0xFFFF)


@st.composite
def datagrams(draw):
    payload = draw(st.binary(min_size=0, max_size=1600))
    src, dst = draw(st.binary(min_size=4, max_size=4)), draw(st.binary(min_size=4, max_size=4))
    kind = draw(st.sampled_from(KINDS))
    u = cb.udp(draw(st.integers(0, 65535)), 20024, payload, src=src, dst=dst, checksum=kind)
    ip = cb.ipv4(u, src=src, dst=dst, bad_checksum=draw(st.booleans()),
                 zero_checksum=draw(st.booleans()))
    flip = draw(st.integers(-1, len(ip) - 1))
    if flip >= 20 and draw(st.booleans()):  # a bit flipped in transit
        ip = ip[:flip] + bytes([ip[flip] ^ 0x10]) + ip[flip + 1:]
    return ip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=7), datagrams()), min_size=1, max_size=12))
@example([(b"", cb.ipv4(cb.udp(1, 20024, b"\x01")))])  # odd length, ending the buffer
@example([(b"x", cb.ipv4(cb.udp(1, 20024, b"\x01\x02", checksum="bad")))])
def test_a_buffer_of_datagrams_at_any_alignment_gets_the_rfc_verdicts(parts):
    buf, ips, ends = b"", [], []
    for gap, ip in parts:
        buf += gap
        ips.append(len(buf))
        buf += ip
        ends.append(len(buf))
    assert datagrams_wrong(buf, ips, ends).tolist() == [expected_wrong(ip) for _g, ip in parts]


@settings(max_examples=200, deadline=None)
@given(datagrams())
def test_one_header_and_one_datagram_get_the_rfc_verdicts(ip):
    ihl = (ip[0] & 15) * 4
    hdr = ip[:ihl]
    assert ip_header_bad(hdr) == (hdr[10:12] != b"\x00\x00" and word_sum(hdr) not in (0, 0xFFFF))
    assert udp_bad(ip[12:16], ip[16:20], ip[ihl:]) == \
        (expected_wrong(hdr[:10] + b"\x00\x00" + hdr[12:] + ip[ihl:]))


def test_options_and_jumbo_datagrams_too():
    big = bytes(range(256)) * 35  # 8960 bytes: a jumbo frame's datagram
    for opts in (b"", b"\x01\x01\x01\x00"):
        for kind in KINDS:
            ip = cb.ipv4(cb.udp(20024, 40001, big, checksum=kind), options=opts)
            ihl = (ip[0] & 15) * 4
            assert udp_bad(ip[12:16], ip[16:20], ip[ihl:]) == expected_wrong(ip)


def _capture(tmp_path, link: str):
    """Full-size, small and ACK-size datagrams with every kind of checksum, on one link."""
    frames, expected = [], []
    payload = bytes(range(256)) * 6
    for i, (ck, flags) in enumerate([(k, f) for k in KINDS for f in (
            {}, {"bad_checksum": True}, {"zero_checksum": True}, {"options": b"\x01" * 4})]):
        for body in (payload[:1448 + 24], payload[:27], payload[:4]):
            sport, dport = (20024, 40001) if len(body) > 4 else (40001, 20024)
            ip = cb.ipv4(cb.udp(sport, dport, body, checksum=ck), **flags)
            expected.append(expected_wrong(ip))
            frames.append(cb.ether(ip) if link == "ether" else cb.sll(ip))
    data = cb.pcap([(10**9 + i * 1000, f) for i, f in enumerate(frames)],
                   linktype=1 if link == "ether" else 113)
    path = tmp_path / "c.pcap"
    path.write_bytes(data)
    return str(path), expected


def _verdicts(path: str, chunk: int) -> list:
    return [d.bad_checksum for d in CaptureReader([path], chunk_size=chunk)
            if type(d) is Datagram]


def test_the_readers_verdicts_batched_per_buffer_equal_those_read_in_small_buffers(tmp_path):
    for link in ("ether", "sll"):
        path, expected = _capture(tmp_path, link)
        assert _verdicts(path, 1 << 20) == _verdicts(path, 4096) == expected, link
        assert any(expected) and not all(expected)


def test_no_verify_trusts_every_datagram(tmp_path):
    path, expected = _capture(tmp_path, "ether")
    items = [d for d in CaptureReader([path], verify_checksums=False) if type(d) is Datagram]
    assert len(items) == len(expected) and not any(d.bad_checksum for d in items)
