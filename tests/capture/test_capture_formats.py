"""Capture readers: file formats, link types, truncation, checksums, several files."""
from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess

import pytest

from analyzer.capture import CaptureError, CaptureReader, open_captures
from analyzer.datagram import Datagram, Notice
from tests.support.capture_builders import (
    CLIENT, CLIENT_MAC, SERVER, SERVER_MAC, ack, block, epb, ether, gz, idb, ipv4, msg, null,
    pb, pcap, shb, sll, sll2, spb, udp, udp_ip, write,
)


T0 = 1_700_000_000_123_456_789  # ns
DATA = msg(3, 2, 0, bytes(range(256)) * 4)


def data_frame(payload=DATA, **kw):
    return ether(udp_ip(20024, 33000, payload, **kw))


def ack_frame(seqno=2):
    return ether(udp_ip(33000, 20024, ack(seqno), src=SERVER, dst=CLIENT), src=SERVER_MAC, dst=CLIENT_MAC)


def read(paths, **kw):
    if isinstance(paths, str):
        paths = [paths]
    r = CaptureReader(paths, **kw)
    return r, list(r)


def dgrams(items):
    return [i for i in items if type(i) is Datagram]


def notices(items, kind=None):
    return [i for i in items if type(i) is Notice and (kind is None or i.kind == kind)]


# -- classic pcap -----------------------------------------------------------------------

@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path, endian, nano):
    recs = [(T0, data_frame()), (T0 + 1_000_000, ack_frame()), (T0 + 2_000_000, ether(b"\x60" + bytes(50), ethertype=0x86DD))]
    path = write(tmp_path, "a.pcap", pcap(recs, endian=endian, nano=nano))
    r, items = read(path)
    ds = dgrams(items)
    assert [d.frame for d in ds] == [1, 2]
    exp0 = T0 if nano else T0 // 1000 * 1000
    assert ds[0].ts == exp0 and isinstance(ds[0].ts, int)
    assert ds[1].ts == exp0 + 1_000_000
    assert ds[0].payload == DATA and ds[0].sport == 20024 and ds[0].dport == 33000
    assert ds[0].src == CLIENT and ds[0].dst == SERVER
    assert ds[0].link == (CLIENT_MAC, ()) and ds[1].link == (SERVER_MAC, ())
    assert not ds[0].bad_checksum and ds[0].missing == 0
    assert r.captures == [{"path": path, "frames": 3, "truncated": False}]
    assert r.bytes_read == r.total_bytes == os.path.getsize(path)


def test_ack_padding_never_leaks(tmp_path):
    frame = ack_frame(7)
    assert len(frame) == 60  # padded on the wire
    frame = frame[:-4] + b"\xde\xad\xbe\xef"  # non-zero padding
    _, items = read(write(tmp_path, "a.pcap", pcap([(T0, frame)])))
    (d,) = dgrams(items)
    assert d.payload == ack(7) and not d.bad_checksum


def test_ethernet_fcs_trimmed(tmp_path):
    frame = data_frame() + b"\x01\x02\x03\x04"
    _, items = read(write(tmp_path, "a.pcap", pcap([(T0, frame)])))
    assert dgrams(items)[0].payload == DATA


def test_other_ports_and_protocols_skipped(tmp_path):
    recs = [
        (T0, ether(udp_ip(53, 5353, b"dns"))),
        (T0, ether(ipv4(b"\x00" * 20, proto=6))),  # TCP
        (T0, ether(b"\x00\x01\x08\x00\x06\x04\x00\x01" + bytes(20), ethertype=0x0806)),  # ARP
        (T0, ether(udp_ip(40000, 20023, b"herald"))),
    ]
    _, items = read(write(tmp_path, "a.pcap", pcap(recs)))
    assert [(d.frame, d.payload) for d in dgrams(items)] == [(4, b"herald")]
    assert not notices(items)


def test_custom_ports(tmp_path):
    recs = [(T0, ether(udp_ip(53, 5353, b"dns"))), (T0, data_frame())]
    path = write(tmp_path, "a.pcap", pcap(recs))
    ds = dgrams(list(open_captures([path], frozenset({53}))))
    assert [d.frame for d in ds] == [1]


def test_snaplen_cut_frame(tmp_path):
    full = data_frame()
    cut = full[:200]
    path = write(tmp_path, "a.pcap", pcap([(T0, cut, len(full)), (T0, ack_frame())], snaplen=200))
    r, items = read(path)
    (n,) = notices(items, "snaplen-truncated")
    d = dgrams(items)[0]
    assert n.frame == d.frame == 1
    assert d.payload == DATA[:200 - 42]
    assert d.missing == len(DATA) - (200 - 42)
    assert str(d.missing) in n.detail
    assert not d.bad_checksum
    assert dgrams(items)[1].frame == 2
    assert not r.captures[0]["truncated"]


def test_snaplen_cut_inside_udp_header(tmp_path):
    full = data_frame()
    path = write(tmp_path, "a.pcap", pcap([(T0, full[:38], len(full))], snaplen=38))
    _, items = read(path)
    assert not dgrams(items)
    (n,) = notices(items, "snaplen-truncated")
    assert n.frame == 1


def test_truncated_last_record(tmp_path):
    data = pcap([(T0, ack_frame()), (T0 + 5, data_frame())])
    path = write(tmp_path, "a.pcap", data[:-100])
    r, items = read(path)
    (n,) = notices(items, "truncated-capture")
    assert n.frame == 2 and "100" in n.detail
    assert not notices(items, "snaplen-truncated")  # the cut is the file's, not the snap length's
    ds = dgrams(items)
    assert [d.frame for d in ds] == [1, 2]  # what the cut record holds is kept, under its number
    assert ds[1].missing == 100 and ds[1].payload == DATA[:-100]
    # the cut record is not a frame (Wireshark shows one)
    assert r.captures[0]["truncated"] and r.captures[0]["frames"] == 1
    assert r.files[0].cut_frame == 2 and r.files[0].local(2) == 2


def test_truncated_inside_record_header(tmp_path):
    data = pcap([(T0, ack_frame()), (T0 + 5, data_frame())])
    cut = len(pcap([(T0, ack_frame())])) + 7
    _, items = read(write(tmp_path, "a.pcap", data[:cut]))
    assert [d.frame for d in dgrams(items)] == [1]
    (n,) = notices(items, "truncated-capture")
    assert n.frame == 2 and "7 of 16" in n.detail


@pytest.mark.parametrize("caplen", [262145, 300000])
def test_bogus_caplen_stops_file(tmp_path, caplen):
    good = pcap([(T0, ack_frame())], snaplen=65535)
    bogus = struct.pack("<IIII", 1, 0, caplen, caplen) + bytes(64)
    p2 = write(tmp_path, "b.pcap", pcap([(T0, ack_frame())]))
    r, items = read([write(tmp_path, "a.pcap", good + bogus), p2])
    (n,) = notices(items, "truncated-capture")
    assert n.frame == 2 and str(caplen) in n.detail
    assert [d.frame for d in dgrams(items)] == [1, 2]  # next file goes on
    assert r.captures[0]["truncated"] and not r.captures[1]["truncated"]


# -- link layers ----------------------------------------------------------------------------

IP_DATA = udp_ip(20024, 20023, b"herald!")


@pytest.mark.parametrize("linktype,frame,link", [
    (113, sll(IP_DATA), (CLIENT_MAC, ())),
    (113, sll(struct.pack("!HH", 5, 0x0800) + IP_DATA, protocol=0x8100), (CLIENT_MAC, (5,))),
    (276, sll2(IP_DATA), (CLIENT_MAC, ())),
    (276, sll2(struct.pack("!HH", 9, 0x0800) + IP_DATA, protocol=0x8100), (CLIENT_MAC, (9,))),
    (101, IP_DATA, None),
    (228, IP_DATA, None),
    (12, IP_DATA, None),
    (14, IP_DATA, None),
    (0, null(IP_DATA, "little"), None),
    (0, null(IP_DATA, "big"), None),
    (108, null(IP_DATA, "big"), None),
    (108, null(IP_DATA, "little"), None),
    (1, ether(IP_DATA, vlans=[(0x8100, 100)]), (CLIENT_MAC, (100,))),
    (1, ether(IP_DATA, vlans=[(0x88A8, 10), (0x8100, 20)]), (CLIENT_MAC, (10, 20))),
    (1, ether(IP_DATA, vlans=[(0x9100, 1), (0x88A8, 2), (0x8100, 3), (0x8100, 4)]), (CLIENT_MAC, (1, 2, 3, 4))),
])
def test_link_types(tmp_path, linktype, frame, link):
    path = write(tmp_path, "a.pcap", pcap([(T0, frame)], linktype=linktype))
    _, items = read(path)
    (d,) = dgrams(items)
    assert d.payload == b"herald!" and d.dport == 20023 and d.link == link
    assert d.src == CLIENT and not d.bad_checksum and d.frame == 1


@pytest.mark.parametrize("linktype,frame", [
    (0, null(b"\x60" + bytes(60), family=28)),  # IPv6 on loopback
    (101, b"\x60" + bytes(60)),
    (113, sll(b"\x60" + bytes(60), protocol=0x86DD)),
    (1, ether(b"\x60" + bytes(60), ethertype=0x86DD, vlans=[(0x8100, 3)])),
])
def test_ipv6_skipped_silently(tmp_path, linktype, frame):
    _, items = read(write(tmp_path, "a.pcap", pcap([(T0, frame)], linktype=linktype)))
    assert items == []


def test_ip_options(tmp_path):
    ip = udp_ip(20024, 20023, b"with options", options=b"\x94\x04\x00\x00")  # router alert
    _, items = read(write(tmp_path, "a.pcap", pcap([(T0, ether(ip))])))
    (d,) = dgrams(items)
    assert d.payload == b"with options" and not d.bad_checksum


# -- checksums ----------------------------------------------------------------------------

@pytest.mark.parametrize("size", [4, 5, 24, 1000, 1448, 1449, 4096])
@pytest.mark.parametrize("options", [b"", b"\x94\x04\x00\x00"])
def test_checksums(tmp_path, size, options):
    payload = bytes((i * 7 + 3) & 0xFF for i in range(size))
    cases = [
        (ether(ipv4(udp(20024, 20023, payload), options=options)), False),
        (ether(ipv4(udp(20024, 20023, payload, checksum="bad"), options=options)), True),
        (ether(ipv4(udp(20024, 20023, payload, checksum=0), options=options)), False),
        (ether(ipv4(udp(20024, 20023, payload, checksum="offload"), options=options)), False),
        (ether(ipv4(udp(20024, 20023, payload), options=options, bad_checksum=True)), True),
        (ether(ipv4(udp(20024, 20023, payload), options=options, zero_checksum=True)), False),
    ]
    _, items = read(write(tmp_path, "a.pcap", pcap([(T0, f) for f, _ in cases])))
    assert [d.bad_checksum for d in dgrams(items)] == [b for _, b in cases]
    assert all(d.payload == payload for d in dgrams(items))
    r = CaptureReader([write(tmp_path, "b.pcap", pcap([(T0, f) for f, _ in cases]))], verify_checksums=False)
    assert [d.bad_checksum for d in dgrams(list(r))] == [False] * len(cases)


def test_udp_length_larger_than_ip(tmp_path):
    bogus = ipv4(udp(20024, 20023, b"abcd", length=100))
    _, items = read(write(tmp_path, "a.pcap", pcap([(T0, ether(bogus))])))
    (d,) = dgrams(items)
    assert d.payload == b"abcd" and d.bad_checksum and d.missing == 0


# -- pcapng -------------------------------------------------------------------------------

def multi_idb_pcapng(endian="<"):
    """Three interfaces with different link types and clocks, packets interleaved."""
    ip = udp_ip(20024, 20023, b"x" * 30)
    blocks = [
        shb(endian),
        idb(endian, 1),  # Ethernet, microseconds
        idb(endian, 113, tsresol=9),  # cooked, nanoseconds
        idb(endian, 101, tsresol=0x80 | 20, tsoffset=1000),  # raw, 2^-20 s, offset 1000 s
        block(endian, 5, bytes(16)),  # interface statistics: skipped
        idb(endian, 147),  # user link type: not read
        epb(endian, 0, 1_700_000_000_123_456, ether(ip)),
        epb(endian, 1, 1_700_000_000_123_456_789, sll(ip)),
        epb(endian, 2, (1_699_999_000 << 20) + 3, ip),
        epb(endian, 3, 0, b"opaque"),
        block(endian, 0x0BAD, struct.pack(endian + "I", 32473) + b"custom"),
        epb(endian, 0, 1_700_000_001_000_000, ack_frame()),
    ]
    return b"".join(blocks)


def test_pcapng_multi_idb(tmp_path):
    r, items = read(write(tmp_path, "a.pcapng", multi_idb_pcapng()))
    ds = dgrams(items)
    assert [d.frame for d in ds] == [1, 2, 3, 6]  # the custom block is frame 5, as in Wireshark
    assert ds[0].ts == 1_700_000_000_123_456_000
    assert ds[1].ts == 1_700_000_000_123_456_789
    assert ds[2].ts == 1_700_000_000_000_000_000 + (3 * 10**9 >> 20)
    assert ds[3].ts == 1_700_000_001_000_000_000
    assert [d.link for d in ds] == [(CLIENT_MAC, ()), (CLIENT_MAC, ()), None, (SERVER_MAC, ())]
    (n,) = notices(items, "unsupported-link")
    assert "147" in n.detail
    assert r.captures[0]["frames"] == 6


def test_pcapng_multi_section_byte_orders(tmp_path):
    ip = udp_ip(20024, 20023, b"y")
    data = (shb("<") + idb("<", 101, tsresol=3) + epb("<", 0, 5, ip)
            + shb(">") + idb(">", 1) + idb(">", 101, tsresol=9) + epb(">", 1, 7, ip) + epb(">", 0, 9, ether(ip))
            + shb("<") + idb("<", 0) + epb("<", 0, 11, null(ip)))
    _, items = read(write(tmp_path, "a.pcapng", data))
    assert [(d.frame, d.ts) for d in dgrams(items)] == [(1, 5_000_000), (2, 7), (3, 9_000), (4, 11_000)]
    assert not notices(items)


def test_pcapng_spb_and_pb(tmp_path):
    ip = udp_ip(20024, 20023, b"z" * 10)
    data = (shb() + idb("<", 1, snaplen=0) + epb("<", 0, 1000, ether(ip)) + spb("<", ether(ip))
            + pb("<", 0, 2000, ether(ip)))
    _, items = read(write(tmp_path, "a.pcapng", data))
    assert [(d.frame, d.ts, d.payload) for d in dgrams(items)] == [
        (1, 1_000_000, b"z" * 10), (2, 1_000_000, b"z" * 10), (3, 2_000_000, b"z" * 10)]


def test_pcapng_tsresol_forms(tmp_path):
    ip = udp_ip(20024, 20023, b"t")
    data = (shb() + idb("<", 101, tsresol=0) + idb("<", 101, tsresol=12) + idb("<", 101, tsresol=0x80 | 10)
            + idb("<", 101, tsoffset=-10)
            + epb("<", 0, 3, ip) + epb("<", 1, 3_000_000_000_123_456, ip) + epb("<", 2, 1024 + 512, ip)
            + epb("<", 3, 20_000_000, ip))
    _, items = read(write(tmp_path, "a.pcapng", data))
    assert [d.ts for d in dgrams(items)] == [3 * 10**9, 3_000_000_000_123, 1_500_000_000, 10 * 10**9]


def test_pcapng_bad_block_length(tmp_path):
    good = shb() + idb() + epb("<", 0, 1, ack_frame())
    bad = struct.pack("<II", 6, 13) + bytes(40)
    r, items = read(write(tmp_path, "a.pcapng", good + bad + epb("<", 0, 2, ack_frame())))
    assert [d.frame for d in dgrams(items)] == [1]
    (n,) = notices(items, "truncated-capture")
    assert "13" in n.detail and r.captures[0]["truncated"]


def test_pcapng_huge_block_length_no_memory_blowup(tmp_path):
    good = shb() + idb() + epb("<", 0, 1, ack_frame())
    bad = struct.pack("<II", 6, 0xFFFFFFF0) + bytes(40)
    _, items = read(write(tmp_path, "a.pcapng", good + bad))
    assert len(notices(items, "truncated-capture")) == 1


def test_pcapng_trailer_mismatch_and_bad_interface(tmp_path):
    blk = bytearray(epb("<", 0, 1, ack_frame()))
    blk[-4:] = struct.pack("<I", 4)
    _, items = read(write(tmp_path, "a.pcapng", shb() + idb() + bytes(blk)))
    assert "trailing" in notices(items, "truncated-capture")[0].detail
    _, items = read(write(tmp_path, "b.pcapng", shb() + idb() + epb("<", 3, 1, ack_frame())))
    assert "interface 3" in notices(items, "truncated-capture")[0].detail


def test_pcapng_truncated_last_block(tmp_path):
    data = shb() + idb() + epb("<", 0, 1, ack_frame()) + epb("<", 0, 2, data_frame())
    r, items = read(write(tmp_path, "a.pcapng", data[:-60]))
    (n,) = notices(items, "truncated-capture")
    ds = dgrams(items)
    assert n.frame == 2 and [d.frame for d in ds] == [1, 2]
    assert ds[1].missing > 0 and ds[1].ts == 2000
    assert r.captures[0]["truncated"]


# -- gzip ---------------------------------------------------------------------------------

def test_gzip_pcap_and_pcapng(tmp_path):
    recs = [(T0 + i, data_frame() if i % 2 else ack_frame()) for i in range(50)]
    plain = pcap(recs)
    p1 = write(tmp_path, "a.pcap", plain)
    p2 = write(tmp_path, "b.weird-name", gz(plain))
    p3 = write(tmp_path, "c", gz(multi_idb_pcapng()))
    assert dgrams(read(p1)[1]) == dgrams(read(p2)[1])
    r, items = read(p3)
    assert [d.frame for d in dgrams(items)] == [1, 2, 3, 6]
    assert r.bytes_read == r.total_bytes == os.path.getsize(p3)


def test_gzip_multi_member_and_small_chunks(tmp_path):
    recs = [(T0 + i, data_frame() if i % 3 else ack_frame()) for i in range(200)]
    plain = pcap(recs)
    half = len(plain) // 2
    p = write(tmp_path, "a.pcap.gz", gzip.compress(plain[:half]) + gzip.compress(plain[half:]))
    ref = dgrams(read(write(tmp_path, "ref.pcap", plain))[1])
    _, items = read(p, chunk_size=4096)
    assert dgrams(items) == ref and not notices(items)


def test_gzip_truncated(tmp_path):
    recs = [(T0 + i, data_frame()) for i in range(300)]
    comp = gzip.compress(pcap(recs), compresslevel=1)
    r, items = read(write(tmp_path, "a.pcap.gz", comp[: len(comp) // 2]))
    assert len(notices(items, "truncated-capture")) == 1
    assert 0 < len(dgrams(items)) < 300
    assert r.captures[0]["truncated"]


def test_gzip_corrupt(tmp_path):
    comp = bytearray(gzip.compress(pcap([(T0 + i, data_frame()) for i in range(300)]), compresslevel=1))
    comp[len(comp) // 2] ^= 0xFF
    comp[len(comp) // 2 + 1] ^= 0xFF
    r, items = read(write(tmp_path, "a.pcap.gz", bytes(comp)))
    assert r.captures[0]["truncated"]
    assert notices(items, "truncated-capture")


# -- several files, errors --------------------------------------------------------------------

def test_several_files_continue_frame_numbers(tmp_path):
    p1 = write(tmp_path, "1.pcap", pcap([(T0, data_frame()), (T0 + 1, ack_frame())]))
    p2 = write(tmp_path, "2.pcapng", multi_idb_pcapng())
    p3 = write(tmp_path, "3.pcap.gz", gz(pcap([(T0 + 9, ack_frame())], endian=">", nano=True)))
    r, items = read([p1, p2, p3])
    assert [d.frame for d in dgrams(items)] == [1, 2, 3, 4, 5, 8, 9]
    assert [c["frames"] for c in r.captures] == [2, 6, 1]
    assert r.bytes_read == r.total_bytes == sum(os.path.getsize(p) for p in (p1, p2, p3))
    # a second iteration starts over
    assert list(r) == items


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"hello world, not a capture at all", "not a pcap or pcapng"),
    (b"\xd4\xc3", "too short"),
    (gzip.compress(b"plain text inside gzip " * 10), "not a pcap or pcapng"),
    (gzip.compress(b""), "empty"),
    (b"\x1f\x8b\x08\x00garbage-garbage", "gzip"),
    (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)[:20], "cut short"),
    (shb()[:8] + b"\x00" * 20, "byte-order"),
])
def test_unusable_files_raise_at_open(tmp_path, content, message):
    good = write(tmp_path, "good.pcap", pcap([(T0, ack_frame())]))
    bad = write(tmp_path, "bad", content)
    with pytest.raises(CaptureError, match=message):
        open_captures([good, bad])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CaptureError, match="no such file"):
        open_captures([str(tmp_path / "nope.pcap")])
    with pytest.raises(CaptureError, match="directory"):
        open_captures([str(tmp_path)])


def test_empty_but_valid_captures(tmp_path):
    p1 = write(tmp_path, "a.pcap", pcap([]))
    p2 = write(tmp_path, "b.pcapng", shb() + idb())
    r, items = read([p1, p2])
    assert items == [] and [c["frames"] for c in r.captures] == [0, 0]


def test_chunk_boundaries_do_not_matter(tmp_path):
    recs = [(T0 + i, data_frame(msg(3, i, 0, bytes(i * 13 % 1400))) if i % 2 else ack_frame(i))
            for i in range(300)]
    p1 = write(tmp_path, "a.pcap", pcap(recs))
    ng = shb() + idb() + b"".join(epb("<", 0, t // 1000, f) for t, f in recs)
    p2 = write(tmp_path, "a.pcapng", ng)
    ref = read(p1)[1]
    assert len(dgrams(ref)) == 300
    for size in (4096, 5000, 65536):
        assert read(p1, chunk_size=size)[1] == ref
        assert read(p2, chunk_size=size)[1] == ref


# -- tshark cross-check ---------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_agrees_on_frame_numbers_and_times(tmp_path):
    ip = udp_ip(20024, 20023, b"q" * 40)
    blocks = [multi_idb_pcapng()]
    for i in range(20):
        blocks.append(epb("<", i % 3, (1_700_000_000_000_000 + i * 777) if i % 3 == 0 else
                          (1_700_000_000_000_000_000 + i * 777_777 if i % 3 == 1 else (1_699_999_000 << 20) + i * 3333),
                          [ether(ip), sll(ip), ip][i % 3]))
    blocks.append(shb(">") + idb(">", 1, tsresol=3) + epb(">", 0, 1_700_000_002_000, ether(ip)))
    path = write(tmp_path, "x.pcapng", b"".join(blocks))
    out = subprocess.run(["tshark", "-r", path, "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch",
                          "-Y", "udp"], capture_output=True, text=True, timeout=60, check=True).stdout
    theirs = []
    for line in out.split("\n"):
        if line.strip():
            num, epoch = line.split("\t")
            sec, _, frac = epoch.partition(".")
            theirs.append((int(num), int(sec) * 10**9 + int(frac.ljust(9, "0")[:9])))
    ours = [(d.frame, d.ts) for d in dgrams(read(path)[1])]
    assert ours == theirs and len(ours) == 25


def test_icmp_port_unreachable_quoting_a_netdump_datagram_is_yielded(tmp_path):
    """ICMP type 3 code 3 carries the quoted IPv4 header and UDP ports of the datagram that
    found the port closed; only those quoting a netdump port come out."""
    import socket
    import struct
    import dpkt
    from analyzer.capture import open_captures
    from analyzer.datagram import Unreachable

    def icmp(sport, dport, code=3):
        quoted = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 52, 0, 0x4000, 255, 17, 0,
                             socket.inet_aton("10.0.0.5"), socket.inet_aton("10.0.0.2"))
        quoted += struct.pack(">HHHH", sport, dport, 32, 0)
        body = struct.pack(">BBHI", 3, code, 0, 0) + quoted
        ip = dpkt.ip.IP(src=socket.inet_aton("10.0.0.2"), dst=socket.inet_aton("10.0.0.5"),
                        p=1, ttl=64, data=body)
        ip.len = 20 + len(body)
        eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)
        return bytes(eth)

    path = tmp_path / "icmp.pcap"
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f)
        w.writepkt(icmp(20024, 40001), ts=1.0)
        w.writepkt(icmp(5353, 5353), ts=2.0)  # someone else's datagram
        w.writepkt(icmp(20024, 40001, code=1), ts=3.0)  # host unreachable: not ours to report
    items = list(open_captures([str(path)]))
    assert items == [Unreachable(1, 10**9, socket.inet_aton("10.0.0.2"),
                                 socket.inet_aton("10.0.0.5"), socket.inet_aton("10.0.0.5"),
                                 socket.inet_aton("10.0.0.2"), 20024, 40001)]
