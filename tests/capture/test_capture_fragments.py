"""IPv4 fragment reassembly in the capture readers."""
from __future__ import annotations

import random


from hypothesis import given, settings, strategies as st

from analyzer.capture import CaptureReader
from analyzer.capture.ipv4 import Reassembler
from analyzer.datagram import Datagram, Notice
from tests.support.capture_builders import CLIENT, SERVER, ether, fragments, ipv4, msg, pcap, udp, udp_ip, write


T0 = 1_700_000_000 * 10**9
PAYLOAD = msg(3, 9, 0, bytes((i * 31) & 0xFF for i in range(3000)))
PORTS = frozenset({20023, 20024})


def frag_frames(payload=PAYLOAD, size=1480, ident=0x1234, sport=20024, dport=20023, **kw):
    return [ether(f) for f in fragments(udp_ip(sport, dport, payload, ident=ident, df=False, **kw), size)]


def run(tmp_path, frames, times=None, name="f.pcap"):
    times = times or [T0 + i * 1000 for i in range(len(frames))]
    path = write(tmp_path, name, pcap(list(zip(times, frames))))
    return list(CaptureReader([path]))


def dgrams(items):
    return [i for i in items if type(i) is Datagram]


def frag_notices(items):
    return [i for i in items if type(i) is Notice and i.kind == "ip-fragments"]


def test_in_order(tmp_path):
    frames = frag_frames()
    assert len(frames) == 3
    items = run(tmp_path, frames)
    (d,) = dgrams(items)
    assert d.payload == PAYLOAD and d.frame == 3 and not d.bad_checksum and d.missing == 0
    assert d.sport == 20024 and d.src == CLIENT and d.dst == SERVER
    (n,) = frag_notices(items)
    assert n.frame == 3 and "1, 2, 3" in n.detail and "reassembled" in n.detail


def test_reverse_order_with_duplicates_and_noise(tmp_path):
    frames = frag_frames()
    other = ether(udp_ip(20024, 20023, b"between"))
    items = run(tmp_path, [frames[2], frames[1], other, frames[1], frames[0], frames[2]])
    ds = dgrams(items)
    assert [d.payload for d in ds] == [b"between", PAYLOAD]
    assert ds[1].frame == 5
    # the late duplicate of the last fragment starts a new datagram that never completes
    assert any("never completed" in n.detail for n in frag_notices(items))


def test_overlap_with_different_bytes_reported(tmp_path):
    frames = frag_frames(size=1480)
    ip = udp_ip(20024, 20023, PAYLOAD, ident=0x1234, df=False)
    body = bytearray(ip[20:])
    body[1500:1510] = b"X" * 10
    overlap = ether(ipv4(bytes(body[1480 - 40:2960]), ident=0x1234, df=False, mf=True, frag_offset=1440))
    items = run(tmp_path, [frames[0], frames[1], overlap, frames[2]])
    (d,) = dgrams(items)
    assert d.payload == PAYLOAD  # first copy kept
    conflict = [n for n in frag_notices(items) if "different bytes" in n.detail]
    assert len(conflict) == 1 and conflict[0].frame == 3 and "1500-1509" in conflict[0].detail


def test_missing_fragment_reported_at_end(tmp_path):
    frames = frag_frames()
    items = run(tmp_path, [frames[0], frames[2]])
    assert not dgrams(items)
    (n,) = frag_notices(items)
    assert "never completed" in n.detail and "1480-2959" in n.detail and "1, 2" in n.detail
    assert "end of capture" in n.detail


def test_timeout_after_30s(tmp_path):
    a = frag_frames(ident=1)
    b = frag_frames(ident=2)
    times = [T0, T0 + 1, T0 + 31 * 10**9, T0 + 31 * 10**9 + 1, T0 + 31 * 10**9 + 2]
    items = run(tmp_path, [a[0], a[1], b[0], b[1], a[2]], times)
    notes = frag_notices(items)
    assert "timed out" in notes[0].detail and "0x0001" in notes[0].detail
    # the last fragment of the expired datagram cannot complete it any more
    assert not dgrams(items)


def test_non_netdump_fragments_ignored(tmp_path):
    frames = frag_frames(sport=53, dport=5353)
    items = run(tmp_path, [frames[1], frames[0], frames[2]])
    assert items == []


def test_missing_first_fragment_ports_unknown(tmp_path):
    frames = frag_frames()
    items = run(tmp_path, frames[1:])
    (n,) = frag_notices(items)
    assert "ports unknown" in n.detail and "0-1479" in n.detail


def test_bad_checksum_after_reassembly(tmp_path):
    ip = ipv4(udp(20024, 20023, PAYLOAD, checksum="bad"), ident=7, df=False)
    items = run(tmp_path, [ether(f) for f in fragments(ip, 1480)])
    (d,) = dgrams(items)
    assert d.bad_checksum and d.payload == PAYLOAD


def test_fragment_beyond_ipv4_maximum(tmp_path):
    big = ether(ipv4(b"z" * 1000, ident=9, df=False, mf=True, frag_offset=65000))
    items = run(tmp_path, [big])
    assert any("maximum" in n.detail for n in frag_notices(items))


def test_table_is_bounded():
    r = Reassembler(PORTS, max_sets=8)
    notices = []
    for i in range(20):
        n, done = r.add(CLIENT, SERVER, i, 17, 8, True, b"12345678", i + 1, T0 + i)
        notices += n
        assert done is None and len(r.sets) <= 8
    assert len(notices) == 12 and all("table full" in n.detail for n in notices)
    assert len(r.flush()) == 8


def test_snaplen_cut_fragment_never_completes(tmp_path):
    frames = frag_frames()
    cut = frames[1][:600]
    path = write(tmp_path, "f.pcap", pcap([(T0, frames[0]), (T0, cut, len(frames[1])), (T0, frames[2])]))
    items = list(CaptureReader([path]))
    assert not dgrams(items)
    assert "never completed" in frag_notices(items)[0].detail


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_permutation_and_duplication_reassembles(data):
    size = data.draw(st.sampled_from([8, 16, 256, 512, 1480]))
    n = data.draw(st.integers(min_value=8, max_value=4000))
    payload = bytes(random.Random(n).randrange(256) for _ in range(n))
    ip = udp_ip(20024, 20023, payload, ident=77, df=False)
    frags = fragments(ip, size)
    order = data.draw(st.permutations(range(len(frags))))
    dups = data.draw(st.lists(st.sampled_from(range(len(frags))), max_size=5))
    seq = list(order)
    for i, d in enumerate(dups):  # duplicates anywhere before the set completes
        seq.insert(data.draw(st.integers(0, len(seq) - 1)), d)
    r = Reassembler(PORTS)
    done = None
    for k, i in enumerate(seq):
        f = frags[i]
        off = (int.from_bytes(f[6:8], "big") & 0x1FFF) * 8
        mf = bool(f[6] & 0x20)
        notes, res = r.add(CLIENT, SERVER, 77, 17, off, mf, f[20:], k + 1, T0 + k)
        assert not [x for x in notes if "different" in x.detail]
        if res is not None:
            assert done is None
            done = res
            break
    assert done is not None
    assert done[0] == ip[20:]


def test_many_tiny_pieces_bounded():
    r = Reassembler(PORTS)
    notices = []
    for i in range(2000):  # 8-byte pieces with gaps: never merge
        n, done = r.add(CLIENT, SERVER, 1, 17, 16 * (i + 1), True, b"abcdefgh", i + 1, T0)
        notices += n
        assert done is None
    assert len(notices) == 1 and "pieces" in notices[0].detail
    assert r.flush() == []
