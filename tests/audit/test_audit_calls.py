"""Send calls that a host stall splits on the wire, told by protocol and write-size evidence:
4096-byte payloads (12.x on a jumbo MTU), every packet ACKed, then a pause as long as the
client's turnaround. Timing alone would start a new burst there; the capture says more."""
import random

from hypothesis import given, settings, strategies as st

from analyzer.audit.writes import LAST_BLOCK, NO, YES, WriteBounds
from analyzer.wire import MINIDUMP_HEADERS, MsgType
from tests.audit.test_audit import S, V, Dump, result

P = 4096


def pages(n, seed=1, head=b""):
    rng = random.Random(seed)
    data = head + rng.randbytes(n * P - len(head))
    return [data[i:i + P] for i in range(0, n * P, P)]


def dump_with(writes, head=b"", kdh_len=None):
    """HERALD, then one burst per piece (the pieces of a split write follow one another
    after the same pause as two calls), then KDH and FINISHED. ``writes``: (offset, pages)."""
    c = Dump()
    c.burst(MsgType.HERALD, [b"crash\0"])
    first = True
    sent = []
    for off, n in writes:
        sent.append(c.burst(V, pages(n, seed=off, head=head if first else b""), offset=off))
        first = False
    c.tail(kdh_len or sum(n for _, n in writes) * P)
    return c, sent


def test_a_resend_of_a_packet_before_the_pause_makes_the_pieces_one_call():
    """The ACK of the piece's last packet reached the capture (a mirror port) but not the
    client: it resent that packet a poll timeout after the rest of its call, which it could
    not have done had the call ended at the pause."""
    c = Dump()
    c.burst(MsgType.HERALD, [b"crash\0"])
    c.burst(V, pages(16, 1), offset=0)
    piece = c.burst(V, pages(6, 2), offset=65536)
    c.burst(V, pages(10, 3), offset=65536 + 6 * P)
    c.resend(piece[-1], after=S)
    c.burst(V, pages(16, 4), offset=131072)
    c.tail(3 * 65536)
    a, _ = result(c)
    b, r = a["bursts"], a["retransmissions"]
    assert (b["count"], b["vmcore"]) == (6, 3)  # HERALD, 3 buffers, KDH, FINISHED
    assert (r["total"], r["spurious"], r["rounds"]) == (1, 1, 1)
    # the poll timeout runs from the call's last packet, not from the piece's
    assert 0.99 < r["timeout"]["min"] < 1.01


def test_a_pause_where_no_minidump_write_begins_is_a_stall_inside_the_call():
    """amd64 minidump v2: header page, 8 msgbuf pages (one write), a bitmap page, two
    page-table pages (a write each), then dumped pages in 64 KiB writes from their start.
    Every write is a 12.x call; the pause 5 pages into the first page write is not."""
    hdr = MINIDUMP_HEADERS["amd64"].build(magic=b"minidump FreeBSD/amd64", version=2,
                                          msgbufsize=8 * P, bitmapsize=P, pmapsize=2 * P,
                                          kernbase=0, dmapbase=0, dmapend=0, dumpavailsize=0)
    data = 12 * P
    c, _ = dump_with([(0, 1), (P, 8), (9 * P, 1), (10 * P, 1), (11 * P, 1),
                      (data, 5), (data + 5 * P, 11), (data + 16 * P, 8)], head=hdr)
    b = result(c)[0]["bursts"]
    assert (b["count"], b["vmcore"]) == (10, 7)
    assert b["packets_histogram"] == [[1, 7], [8, 2], [16, 1]]


def test_a_pause_inside_a_compressed_chunk_is_a_stall_and_the_residual_block_is_a_call():
    """A gzip stream: the compressor writes 64 KiB chunks; its final flush is written as its
    whole blocks (8 KiB here) and then, on its own, the residual block. A pause 3 pages into
    the second chunk is inside that write; the one before the residual block is a call."""
    c, _ = dump_with([(0, 16), (65536, 3), (65536 + 3 * P, 13), (131072, 2),
                      (131072 + 2 * P, 1)], head=b"\x1f\x8b\x08\x00")
    b = result(c)[0]["bursts"]
    assert (b["count"], b["vmcore"]) == (7, 4)
    assert b["packets_histogram"] == [[1, 4], [2, 1], [16, 2]]


def test_without_a_known_layout_the_pause_still_decides():
    """Encrypted or unknown data: every 4 KiB block can begin a write, so the same pause is
    the next call (the evidence above is needed to tell it from a stall)."""
    c, _ = dump_with([(0, 16), (65536, 3), (65536 + 3 * P, 13)])
    b = result(c)[0]["bursts"]
    assert (b["count"], b["vmcore"]) == (6, 3)


def test_a_call_whose_tail_came_first_ends_at_the_tail_after_its_resends():
    """At the server: the first two packets of a 4 KiB call were lost on the way, its short
    last packet came first; a poll timeout later their resends (the capture missed one's
    ACK), and then the next call. Its first packet is a new call's first copy, not more of
    the resend round: the short packet was the call's last."""
    c = Dump()
    c.burst(MsgType.HERALD, [b"crash\0"])
    block = pages(1, 5)[0]
    lost = [c.send(V, offset=o, payload=block[o:o + 1448], step=20_000) for o in (0, 1448)]
    del c.items[-2:]  # never reached the server
    c.send(V, offset=2896, payload=block[2896:], step=20_000)
    c.ack(4, step=300_000)
    c.t += S
    for d in lost:
        c.raw(d.payload, step=20_000)
    c.ack(3, step=300_000)
    c.burst(V, [block[:1448], block[1448:2896], block[2896:]], offset=4096)
    c.tail(8192)
    for i, d in enumerate(c.items):  # frames numbered again, as a capture would
        c.items[i] = d._replace(frame=i + 1)
    a, _ = result(c)
    r = a["retransmissions"]
    assert (r["total"], r["hidden"], r["rounds"]) == (2, 2, 1)
    assert (a["bursts"]["count"], a["bursts"]["vmcore"]) == (5, 2)


def test_a_new_call_a_poll_timeout_late_is_a_resend_though_an_ack_of_the_last_is_missing():
    """The capture missed one ACK of a call (capture loss), then the next call came a poll
    timeout late: its first copies were lost before the capture point. Had the
    client been waiting on the missing ACK, it would have resent that packet first, and the
    server's answer would be in the gap."""
    c = Dump()
    c.burst(MsgType.HERALD, [b"crash\0"])
    sent = c.burst(V, pages(16, 6), offset=0, acks=False)
    for i, d in enumerate(sent):
        if i != 7:
            c.ack(2 + i, step=300_000 if i == 0 else 1_000)
    c.t += S
    c.burst(V, pages(16, 7), offset=65536)
    c.tail(131072)
    a, _ = result(c)
    r = a["retransmissions"]
    # every copy of the call's first send was lost; round 1 (captured) is the first seen
    assert (r["total"], r["hidden"], r["rounds"], r["hidden_rounds"]) == (16, 16, 1, 0)
    assert a["bursts"]["count"] == 5


def test_rounds_of_a_slow_clients_long_pause_are_at_least_its_fewest_timeouts():
    """At the server, one packet lost five times by a client whose poll timeout is 1.15 s
    (a slow driver poll), and no other resend to learn it from: the 5.75 s pause is no whole
    number of 1.0 s timeouts, but it holds at least 5 timeouts of at most 1.3 s."""
    c = Dump()
    c.burst(MsgType.HERALD, [b"crash\0"])
    data = pages(16, 8)
    blob = b"".join(data)
    chunks = [blob[o:o + 1448] for o in range(0, 65536, 1448)]
    sent = c.burst(V, chunks, offset=0, acks=False)
    lost = sent[10]
    c.items.remove(lost)
    for i in range(len(sent)):
        if i != 10:
            c.ack(2 + i, step=300_000 if i == 0 else 1_000)
    c.t = sent[-1].ts + 5 * 1_150_000_000
    c.raw(lost.payload, step=0)
    c.ack(12, step=300_000)
    c.burst(V, pages(16, 9), offset=65536)
    c.tail(131072)
    for i, d in enumerate(c.items):
        c.items[i] = d._replace(frame=i + 1)
    a, _ = result(c)
    r = a["retransmissions"]
    assert (r["total"], r["hidden"], r["rounds"], r["hidden_rounds"]) == (1, 1, 5, 4)
    assert a["bursts"]["max_rounds"] == 5


@given(st.binary(max_size=128), st.integers(0, 1 << 40))
@settings(max_examples=300, deadline=None)
def test_any_first_bytes_give_a_layout_that_answers_every_offset(page0, offset):
    w = WriteBounds()
    w.learn(page0)
    assert w.starts(offset) in (NO, YES, LAST_BLOCK)


@given(st.integers(0, 40), st.integers(1, 40), st.integers(0, 40), st.integers(0, 300),
       st.sampled_from([2, 3]))
@settings(max_examples=200, deadline=None)
def test_every_write_of_an_amd64_minidump_begins_where_the_layout_says(msg, bitmap, pmap,
                                                                        data, version):
    """The writes minidumpsys makes (single pages for the header, dump_avail and page
    tables; 64 KiB from their section's start for the rest) each begin at a YES, and no
    other 4 KiB block does."""
    hdr = MINIDUMP_HEADERS["amd64"].build(
        magic=b"minidump FreeBSD/amd64", version=version, msgbufsize=msg * P,
        bitmapsize=bitmap * P, pmapsize=pmap * P, kernbase=0, dmapbase=0, dmapend=0,
        dumpavailsize=P if version == 3 else 0)
    w = WriteBounds()
    w.learn(hdr)
    starts, pos = set(), 0
    for pages_n, step in ((1, 1), (msg, 16), (1 if version == 3 else 0, 1), (bitmap, 16),
                          (pmap, 1), (data, 16)):
        starts.update(range(pos, pos + pages_n, step))
        pos += pages_n
    assert {b for b in range(pos) if w.starts(b * P) == YES} == starts


@given(st.sampled_from([b"\x1f\x8b\x08\x00", b"\x28\xb5\x2f\xfd"]), st.integers(0, 1 << 30))
@settings(max_examples=100, deadline=None)
def test_a_compressed_streams_writes_begin_at_64_kib_but_its_last_block(magic, offset):
    w = WriteBounds()
    w.learn(magic + bytes(60))
    want = YES if offset % 65536 == 0 else LAST_BLOCK if offset % P == 0 else NO
    assert w.starts(offset) == want
