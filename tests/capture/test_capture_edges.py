"""Captures other tools write: old and patched pcap layouts, oversized and cut records, link
types that carry IPv4 some other way, and link types the readers do not decode.

The expected frame counts and times are tshark's (4.x) for the same bytes; where tshark is
installed, the files are also given to it and its count must equal ours.
"""
from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from analyzer.capture import CaptureReader
from analyzer.datagram import Datagram, Notice
from tests.support.capture_builders import (
    CLIENT, block, epb, ether, idb, pcap, shb, udp_ip, write,
)


T0 = 1_700_000_000_123_456_789
IP = udp_ip(20024, 20023, b"herald!")
FRAME = ether(IP)


def read(path):
    r = CaptureReader([path])
    return r, list(r)


def dgrams(items):
    return [i for i in items if type(i) is Datagram]


def notices(items, kind=None):
    return [i for i in items if type(i) is Notice and (kind is None or i.kind == kind)]


def tshark_frames(path) -> int | None:
    if shutil.which("tshark") is None:
        return None
    out = subprocess.run(["tshark", "-r", path, "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=60).stdout
    return len(out.split())


def assert_tshark_count(path, frames):
    theirs = tshark_frames(path)
    if theirs is not None:
        assert theirs == frames


# -- pcap layouts (issue 10, item 28) --------------------------------------------------------

@pytest.mark.parametrize("extra", [struct.pack("<IHBx", 2, 8, 0),  # ss991029: 24-byte records
                                   struct.pack("<IHBxBBxx", 2, 8, 0, 0, 0)])  # ss990915: 28
def test_modified_kuznetzov_pcap_is_read(tmp_path, extra):
    path = write(tmp_path, "k.pcap", pcap([(T0, FRAME), (T0 + 1000, FRAME)], magic=0xA1B2CD34,
                                          record_extra=extra))
    r, items = read(path)
    assert [(d.frame, d.ts, d.payload) for d in dgrams(items)] == [
        (1, 1_700_000_000_123_456_000, b"herald!"), (2, 1_700_000_000_123_457_000, b"herald!")]
    assert r.captures[0]["frames"] == 2 and not notices(items)
    assert_tshark_count(path, 2)


def test_aix_pcap_is_read_with_its_link_numbers_and_nanoseconds(tmp_path):
    # AIX: version 2.2, ifType 6 for Ethernet, nanosecond times, the two lengths the old way round
    path = write(tmp_path, "aix.pcap", pcap([(T0, FRAME), (T0 + 1000, FRAME)], linktype=6,
                                            version=(2, 2), nano=True, magic=0xA1B2C3D4,
                                            lengths_swapped=True))
    r, items = read(path)
    assert [(d.frame, d.ts) for d in dgrams(items)] == [(1, T0), (2, T0 + 1000)]
    assert r.captures[0]["frames"] == 2 and not notices(items)
    assert_tshark_count(path, 2)


# -- record lengths (items 24, 26, 2) ------------------------------------------------------------

def test_record_longer_than_the_snap_length_is_read_with_a_notice(tmp_path):
    big = ether(udp_ip(20024, 20023, b"x" * 1400))
    recs = [(T0, FRAME), (T0 + 1, big), (T0 + 2, big), (T0 + 3, FRAME)]
    path = write(tmp_path, "a.pcap", pcap(recs, snaplen=96))
    r, items = read(path)
    assert [d.frame for d in dgrams(items)] == [1, 2, 3, 4]
    assert dgrams(items)[1].payload == b"x" * 1400
    (n,) = notices(items)  # the first such record is reported, once
    assert n.kind == "oversized-record" and n.frame == 2 and "96" in n.detail
    assert r.captures[0] == {"path": path, "frames": 4, "truncated": False}
    assert_tshark_count(path, 4)


def test_record_over_the_format_maximum_is_corruption(tmp_path):
    bogus = struct.pack("<IIII", 1, 0, 262145, 262145) + bytes(64)
    path = write(tmp_path, "a.pcap", pcap([(T0, FRAME)]) + bogus)
    r, items = read(path)
    (n,) = notices(items, "truncated-capture")
    assert n.frame == 2 and "262145" in n.detail and "corrupt" in n.detail
    assert r.captures[0]["frames"] == 1 and r.captures[0]["truncated"]


def test_cut_final_record_is_not_a_frame_and_its_notice_names_it(tmp_path):
    whole = pcap([(T0, FRAME), (T0 + 1, FRAME), (T0 + 2, FRAME)])
    path = write(tmp_path, "cut.pcap", whole[:-10])
    r, items = read(path)
    (n,) = notices(items)
    assert n.kind == "truncated-capture" and n.frame == 3 and "record 3" in n.detail
    assert r.captures[0] == {"path": path, "frames": 2, "truncated": True}
    span = r.files[0]
    assert (span.first, span.frames, span.cut_frame) == (0, 2, 3)
    assert_tshark_count(path, 2)


def test_cut_final_packet_block_is_not_a_frame(tmp_path):
    data = shb() + idb() + epb("<", 0, 1, FRAME) + epb("<", 0, 2, FRAME)
    path = write(tmp_path, "cut.pcapng", data[:-20])
    r, items = read(path)
    (n,) = notices(items, "truncated-capture")
    assert n.frame == 2
    assert r.captures[0]["frames"] == 1 and r.files[0].cut_frame == 2
    assert_tshark_count(path, 1)


def test_frames_after_a_cut_file_run_on_from_its_complete_records(tmp_path):
    big = ether(udp_ip(20024, 20023, b"y" * 100))
    cut = write(tmp_path, "1.pcap", pcap([(T0, big), (T0 + 1, big)])[:-5])
    nxt = write(tmp_path, "2.pcap", pcap([(T0 + 2, big), (T0 + 3, big)]))
    r = CaptureReader([cut, nxt])
    items = list(r)
    # 1; the cut record's data under the number it would have had (2); then the second
    # file's frames 1 and 2 as the run's 2 and 3: the files' counts add up (framemap.py)
    assert [(d.frame, d.missing > 0) for d in dgrams(items)] == [
        (1, False), (2, True), (2, False), (3, False)]
    assert [c["frames"] for c in r.captures] == [1, 2]
    assert [r.files[1].local(f) for f in (2, 3)] == [1, 2] and r.files[0].cut_frame == 2


# -- link types (items 25, 27) -------------------------------------------------------------------

NFLOG_HDR = b"\x02\x00\x00\x00" + struct.pack("<HH", 8, 1) + b"\x08\x00\x01\x00"
LINKS = {  # link type: frame carrying IP, as tshark (and tcpdump) decode them
    9: b"\xff\x03\x00\x21" + IP,  # PPP in HDLC-like framing
    50: b"\xff\x03\x00\x21" + IP,
    51: b"\x11\x00\x00\x01" + struct.pack("!H", len(IP) + 2) + b"\x00\x21" + IP,  # PPPoE session
    104: b"\x0f\x00\x08\x00" + IP,  # Cisco HDLC
    107: b"\x04\x01\x03\xcc" + IP,  # Frame Relay, RFC 2427 NLPID IP
    239: NFLOG_HDR + struct.pack("<HH", 4 + len(IP), 9) + IP + bytes(-len(IP) % 4),
    242: b"\x60" + bytes(39) + b"\x08\x00\x00\x00" + IP,  # IPoIB: addresses, then type
    8: b"\x00" + IP[:15] + IP,  # SLIP: direction, then the compressed-header copy (tcpdump)
}


@pytest.mark.parametrize("linktype,frame", [
    (9, b"\x00\x21" + IP), (9, b"\xff\x03\x21" + IP), (50, b"\x0f\x00\x08\x00" + IP),
    *LINKS.items()])
def test_ipv4_over_other_links_is_decoded(tmp_path, linktype, frame):
    path = write(tmp_path, "a.pcap", pcap([(T0, frame), (T0 + 5, frame)], linktype=linktype))
    r, items = read(path)
    ds = dgrams(items)
    assert [(d.frame, d.src, d.dport, d.payload, d.link) for d in ds] == [
        (1, CLIENT, 20023, b"herald!", None), (2, CLIENT, 20023, b"herald!", None)]
    assert not notices(items) and r.captures[0]["frames"] == 2


def test_ipv4_over_other_links_with_non_ip_frames_is_quiet(tmp_path):
    frames = [b"\xff\x03\x80\x21" + bytes(20), b"\xff\x03\x00\x57" + bytes(40)]  # IPCP, IPv6
    r, items = read(write(tmp_path, "a.pcap", pcap([(T0, f) for f in frames], linktype=9)))
    assert items == [] and r.captures[0]["frames"] == 2


@pytest.mark.parametrize("linktype", [105, 127, 7, 147])
def test_capture_of_a_link_type_not_decoded_is_counted_with_a_notice(tmp_path, linktype):
    path = write(tmp_path, "w.pcap", pcap([(T0, b"\x08\x02" + bytes(40))] * 3, linktype=linktype))
    r, items = read(path)
    (n,) = items
    assert n.kind == "unsupported-link" and f"link type {linktype}" in n.detail
    assert r.captures[0] == {"path": path, "frames": 3, "truncated": False}
    assert_tshark_count(path, 3)


def test_pcapng_whose_first_interface_is_not_decoded_is_read(tmp_path):
    wifi = shb() + idb("<", 127) + epb("<", 0, 1, b"\x00\x00\x08\x00" + bytes(40))
    eth = shb() + idb("<", 1) + epb("<", 0, 2, FRAME) + epb("<", 0, 3, FRAME)
    path = write(tmp_path, "cat.pcapng", wifi + eth)  # as `cat a.pcapng b.pcapng` makes
    r, items = read(path)
    assert [d.frame for d in dgrams(items)] == [2, 3]
    (n,) = notices(items, "unsupported-link")
    assert "127" in n.detail
    assert r.captures[0]["frames"] == 3
    assert_tshark_count(path, 3)


def test_command_line_reads_an_undecoded_capture_as_one_without_dumps(tmp_path):
    from click.testing import CliRunner

    from analyzer.cli import cli as main
    other = write(tmp_path, "w.pcap", pcap([(T0, bytes(40))] * 2, linktype=105))
    empty = write(tmp_path, "e.pcap", pcap([(T0, ether(udp_ip(5, 6, b"x")))]))
    res = CliRunner().invoke(main, ["summary", "--json", "-", other])
    ref = CliRunner().invoke(main, ["summary", "--json", "-", empty])
    assert res.exit_code == ref.exit_code
    import json
    report = json.loads(res.stdout)
    assert report["captures"][0]["frames"] == 2 and "error" not in report
    assert any(a["kind"] == "unsupported-link" for a in report["anomalies"])


# -- pcapng blocks Wireshark reads (they already worked; pinned here) ---------------------------

def test_pcapng_other_blocks_are_skipped_and_frames_counted_as_tshark_does(tmp_path):
    nrb = block("<", 4, struct.pack("<HH", 1, 8) + bytes([10, 0, 0, 2]) + b"cli\x00"
                + struct.pack("<HH", 0, 0))
    isb = block("<", 5, struct.pack("<III", 0, 0, 5) + struct.pack("<HH", 0, 0))
    dsb = block("<", 10, struct.pack("<II", 0x544c534b, 8) + b"CLIENT_R")  # TLS key log
    custom = block("<", 0x40000BAD, struct.pack("<I", 32473) + b"data")
    data = (shb() + idb("<", 1, snaplen=0) + nrb + dsb + epb("<", 0, 1, FRAME) + custom
            + epb("<", 0, 2, FRAME) + isb)
    path = write(tmp_path, "b.pcapng", data)
    r, items = read(path)
    assert [d.frame for d in dgrams(items)] == [1, 3]  # the custom block is frame 2
    assert r.captures[0]["frames"] == 3 and not notices(items)
    assert_tshark_count(path, 3)


def test_pcapng_tsresol_power_of_two_and_snaplen_zero(tmp_path):
    data = shb() + idb("<", 1, snaplen=0, tsresol=0x80 | 20) + epb("<", 0, 3 << 20 | 1 << 19, FRAME)
    _, items = read(write(tmp_path, "p.pcapng", data))
    (d,) = dgrams(items)
    assert d.ts == 3_500_000_000 and d.payload == b"herald!"
