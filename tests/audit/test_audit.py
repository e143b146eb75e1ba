"""The transfer audit on hand-built datagram sequences: every metric pinned by construction."""
import pytest

from analyzer.audit import AuditSink
from analyzer.pipeline import Analysis
from analyzer.wire import MsgType, build_kdh, build_kdk, build_message

from tests.support.datagrams import Conversation, image

MS = 1_000_000
S = 1_000_000_000
V = MsgType.VMCORE


def audit(items, **kw):
    sink = AuditSink(**kw)
    a = Analysis(sinks=[sink])
    a.run(items)
    a.finish()
    return sink


def result(conv, **kw):
    sink = audit(conv.items, **kw)
    return sink.audit_json(1), sink.sessions[1]


class Dump(Conversation):
    """A client that sends bursts and waits for their ACKs, as the kernel does."""

    def burst(self, mtype, payloads, offset=0, gap=20_000, ack_delay=300_000, acks=True):
        """Send packets back to back (``gap`` ns apart), then the server ACKs them all."""
        sent = []
        for i, p in enumerate(payloads):
            sent.append(self.send(mtype, offset=offset, payload=p,
                                  step=gap if i else 100_000))
            offset += len(p)
        if acks:
            for i, d in enumerate(sent):
                self.ack(seq_of(d), step=ack_delay if i == 0 else 1_000)
        return sent

    def buffer(self, start, size=65536, chunk=1448, **kw):
        data = image(size, seed=start + 1)
        return self.burst(V, [data[i:i + chunk] for i in range(0, size, chunk)],
                          offset=start, **kw)

    def resend(self, d, after=S, ack=True, ack_delay=300_000):
        """The same datagram again after the poll timeout."""
        m = self.raw(d.payload, step=after)
        if ack:
            self.ack(seq_of(d), step=ack_delay)
        return m

    def tail(self, length, kdh=True, key=False, finished=True, ack_finished=True):
        if kdh:
            self.burst(MsgType.KDH, [build_kdh(dumplength=length, blocksize=4096,
                                               hostname="web1")])
        if key:
            blob = build_kdk(2, b"\x11" * 32, b"\x22" * 256)
            self.burst(MsgType.EKCD_KEY, [blob[o:o + 1448] for o in range(0, 4096, 1448)])
        if finished:
            self.burst(MsgType.FINISHED, [b""], acks=ack_finished)


def seq_of(d):
    return int.from_bytes(d.payload[4:8], "big")


def clean(n_buffers=3, **kw):
    c = Dump(**kw)
    c.burst(MsgType.HERALD, [b"crash\0"], ack_delay=200_000)
    for k in range(n_buffers):
        c.buffer(k * 65536)
    c.tail(n_buffers * 65536)
    return c


# -- clean transfer ------------------------------------------------------------------------

def test_clean_dump_counts_bursts_and_no_problems():
    a, sa = result(clean())
    assert a["outcome"] == "finished"
    assert a["problems"] == []
    b = a["bursts"]
    assert b["count"] == 1 + 3 + 1 + 1  # HERALD, three 64 KiB buffers, KDH, FINISHED
    assert dict(map(tuple, b["packets_histogram"])) == {1: 3, 46: 3}
    assert dict(map(tuple, b["bytes_histogram"]))[65536] == 3
    assert b["max_rounds"] == 0 and b["rounds_to_spare"] == 11
    r = a["retransmissions"]
    assert r["total"] == 0 and r["rounds"] == 0
    assert a["acks"]["total"] == 1 + 3 * 46 + 2 and a["acks"]["duplicate"] == 0
    assert all(c["ok"] for c in a["checks"])
    tl = a["timeline"]
    assert tl["herald"]["frame"] == 1 and tl["first_data"]["frame"] == 3
    assert tl["finished_ack"]["frame"] == len(clean().items)
    assert tl["unique_bytes"] == 3 * 65536


def test_rtt_is_first_transmission_to_first_ack_exactly():
    c = Dump()
    c.burst(MsgType.HERALD, [b""], ack_delay=200_000)
    # 3 packets 20 µs apart; ACKs 300 µs after the last, then 1 µs apart
    c.burst(V, [b"a" * 1448, b"b" * 1448, b"c" * 1200], gap=20_000, ack_delay=300_000)
    a, _ = result(c)
    r = a["rtt"]
    assert r["count"] == 4 and r["method"] == "exact"
    # HERALD 200 µs; data: 340, 321, 302 µs
    assert r["min"] == pytest.approx(200e-6) and r["max"] == pytest.approx(340e-6)
    assert r["median"] == pytest.approx(302e-6)
    assert sum(h["count"] for h in r["histogram"]) == 4


def test_goodput_is_unique_bytes_over_time_to_dump():
    a, _ = result(clean(n_buffers=2))
    tl = a["timeline"]
    assert tl["goodput"] == pytest.approx(2 * 65536 / tl["time_to_dump"], rel=1e-3)
    assert tl["udp_bytes"] > tl["unique_bytes"]


# -- retransmissions -----------------------------------------------------------------------

def lossy(ack_lost: bool):
    """One 46-packet buffer; packet 10 is unacknowledged (no copy reached the server, or
    its ACK did not reach the client) and is resent after ~1 s."""
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    data = image(65536)
    sent = c.burst(V, [data[i:i + 1448] for i in range(0, 65536, 1448)], acks=False)
    for i, d in enumerate(sent):
        if i != 10 or ack_lost:
            c.ack(seq_of(d), step=1_000)
    c.resend(sent[10], after=1_002 * MS)
    c.tail(65536)
    return c, sent


def test_needed_retransmission_no_ack_was_captured():
    c, sent = lossy(ack_lost=False)
    a, _ = result(c)
    r = a["retransmissions"]
    assert (r["total"], r["needed"], r["spurious"], r["rounds"]) == (1, 1, 0, 1)
    assert r["by_type"]["VMCORE"]["needed"] == 1
    assert r["timeout"]["min"] == pytest.approx(1.002, abs=0.001)
    (w,) = a["bursts"]["worst"]
    assert w["rounds"] == 1 and w["packets"] == 46 and w["seqno"] == [2, 47]
    assert a["bursts"]["rounds_to_spare"] == 10
    # Karn: the resent message gives no RTT sample
    assert a["rtt"]["count"] == 1 + 45 + 2
    assert a["acks"]["duplicate"] == 0


def test_spurious_retransmission_ack_was_already_captured():
    c, sent = lossy(ack_lost=True)
    a, _ = result(c)
    r = a["retransmissions"]
    assert (r["total"], r["needed"], r["spurious"], r["rounds"]) == (1, 0, 1, 1)
    assert a["acks"]["duplicate"] == 1 and a["acks"]["duplicate_unexplained"] == 0
    (stall,) = a["stalls"]["first"]
    assert "was captured" in stall["cause"] and stall["burst"] == 2
    kinds = [p["kind"] for p in a["problems"]]
    assert "spurious retransmissions" in kinds


def test_rounds_count_every_resend_of_the_unacked_packets():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    sent = c.burst(V, [b"x" * 1448, b"y" * 1448, b"z" * 1200], acks=False)
    c.ack(seq_of(sent[0]))
    for _ in range(3):  # three rounds of the two unACKed packets, no ACK
        c.raw(sent[1].payload, step=1_001 * MS)
        c.raw(sent[2].payload, step=20_000)
    c.ack(seq_of(sent[1]))
    c.ack(seq_of(sent[2]))
    a, _ = result(c)
    r = a["retransmissions"]
    assert (r["total"], r["needed"], r["rounds"]) == (6, 6, 3)
    assert a["bursts"]["max_rounds"] == 3 and a["bursts"]["worst"][0]["timeouts"] == [
        pytest.approx(1.0011), pytest.approx(1.001), pytest.approx(1.001)]


def test_herald_retransmissions_and_eleven_rounds_abort():
    c = Dump()
    h = c.send(MsgType.HERALD)
    for _ in range(11):
        c.raw(h.payload, step=1_001 * MS, dport=20023)
    a, _ = result(c)
    assert a["retransmissions"]["by_type"]["HERALD"]["retransmitted"] == 11
    assert a["bursts"]["max_rounds"] == 11 and a["bursts"]["rounds_to_spare"] == 0
    assert a["outcome"] == "aborted after 11 resend rounds"
    top = a["problems"][0]
    assert top["severity"] == "error"
    assert any(p["kind"] == "retransmission rounds" and p["severity"] == "error"
               for p in a["problems"])
    assert a["acks"]["never_acknowledged"] == 1


def test_hidden_resend_first_copy_never_captured():
    """A server-side capture never sees the lost copy: the resend is the first it shows."""
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    data = image(65536)
    payloads = [data[i:i + 1448] for i in range(0, 65536, 1448)]
    sent = []
    for i, p in enumerate(payloads):
        msg = build_message(V, 2 + i, i * 1448, p)
        if i == 7:
            sent.append(msg)  # lost before the capture point
            c.t += 20_000
            continue
        sent.append(c.raw(msg, step=20_000).payload)
    for i in range(46):
        if i != 7:
            c.ack(2 + i, step=1_000)
    c.raw(sent[7], step=1_002 * MS)
    c.ack(9)
    c.seq = 48
    c.tail(65536)
    a, sa = result(c)
    r = a["retransmissions"]
    assert (r["total"], r["needed"], r["spurious"], r["rounds"]) == (1, 1, 0, 1)
    assert a["bursts"]["count"] == 4  # not split by the missing packet
    assert sa.holes.count == 0
    assert next(c for c in a["checks"] if c["name"] == "seqno continuity from 1")["ok"]


# -- ACK accounting -----------------------------------------------------------------------

def test_ack_anomalies():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    sent = c.burst(V, [b"a" * 1448, b"b" * 1448, b"c" * 1200], acks=False)
    c.ack(seq_of(sent[0]))
    c.ack(seq_of(sent[0]))  # duplicate with no resend behind it
    c.ack(seq_of(sent[1]), sport=40999)  # from another port
    c.ack(seq_of(sent[2]))
    c.ack(200)  # never sent, and >= base + 64
    c.ack(5)  # seqno 5 not captured yet (the client's next packet)
    c.burst(V, [b"d" * 1200], offset=4096, acks=False)  # seqno 5 shows after its ACK
    c.tail(8192, finished=True, ack_finished=False)
    a, _ = result(c)
    k = a["acks"]
    assert k["duplicate"] == 1 and k["duplicate_unexplained"] == 1
    assert k["unexpected_port"] == 1 and k["unexpected_port_examples"][0]["port"] == 40999
    assert k["too_far_in_future"] == 1 and k["too_far_in_future_examples"][0]["seqno"] == 200
    assert k["for_unseen_messages"] == 2
    assert k["never_acknowledged"] == 1  # FINISHED
    # the server had ACKed a copy of seqno 5 the capture missed: the one it shows is a resend
    r = a["retransmissions"]
    assert (r["total"], r["spurious"], r["hidden"]) == (1, 1, 1)
    fin = next(c for c in a["checks"] if c["name"] == "finished acknowledged")
    assert fin["ok"] is False
    assert a["outcome"] == "finished, never acknowledged"
    assert a["problems"][0]["severity"] == "error"


# -- stalls --------------------------------------------------------------------------------

def test_stall_nothing_on_the_wire_and_waiting_for_acks():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    c.buffer(0)
    c.t += 3_300 * MS  # client silent with everything ACKed
    c.buffer(65536, ack_delay=700 * MS)  # the server takes 0.7 s to ACK
    c.buffer(131072)
    c.tail(3 * 65536)
    a, _ = result(c, stall_threshold=0.5)
    s = a["stalls"]
    assert s["count"] == 2
    first, second = s["first"]
    assert first["duration"] == pytest.approx(3.3, abs=0.01)
    assert first["cause"].startswith("nothing on the wire") and first["burst"] == 2
    assert second["cause"].startswith("waiting for ACKs: the server took")
    assert s["longest"][0] == first
    a2, _ = result(c, stall_threshold=5.0)
    assert a2["stalls"]["count"] == 0


# -- protocol checks -----------------------------------------------------------------------

def check(a, name):
    return next(c for c in a["checks"] if c["name"] == name)


def test_seqno_gap_misaligned_burst_and_oversized_payload():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    c.buffer(0, size=8192)
    c.seq += 3  # three seqnos never captured
    c.burst(V, [b"q" * 5000], offset=10000)  # unaligned, above 4096
    c.tail(15000)
    a, sa = result(c)
    assert sa.holes.count == 3
    assert "3 seqnos never captured" in check(a, "seqno continuity from 1")["detail"]
    assert check(a, "burst offsets 4096-aligned")["ok"] is False
    assert check(a, "payload at most 4096")["ok"] is False
    assert a["generation"]["candidates"] == ["13.x", "main"]


def test_kdh_checks():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    c.buffer(0, size=8192)
    bad = bytearray(build_kdh(dumplength=12288, blocksize=512, version=4))
    bad[100] ^= 1  # parity broken
    c.burst(MsgType.KDH, [bytes(bad)])
    c.burst(MsgType.FINISHED, [b""])
    c.burst(V, [b"late" * 100], offset=8192)  # after FINISHED
    a, _ = result(c)
    assert check(a, "kdh parity")["ok"] is False
    assert check(a, "kdh blocksize")["ok"] is False
    assert check(a, "kdh dumplength matches data")["ok"] is False
    assert check(a, "kdh version")["ok"] is True
    assert check(a, "nothing after finished")["ok"] is False
    assert check(a, "kdh after all data")["ok"] is False


def test_key_size_against_kdh_dumpkeysize():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    c.buffer(0, size=8192)
    c.burst(MsgType.KDH, [build_kdh(dumplength=8192, blocksize=4096, dumpkeysize=4096)])
    blob = build_kdk(2, b"\x11" * 32, b"\x22" * 256)
    c.burst(MsgType.EKCD_KEY, [blob[0:1448], blob[1448:2896]])  # last packet missing
    c.burst(MsgType.FINISHED, [b""])
    a, _ = result(c)
    assert check(a, "key size matches kdh dumpkeysize")["ok"] is False


# -- generation ----------------------------------------------------------------------------

def test_generation_12x_small_neighbouring_bursts_not_batched():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    off = 0
    for size in (4096, 4096, 4096, 65536):  # header page, then single pages: 12.x writes
        c.buffer(off, size=size)
        off += size
    c.tail(off)
    a, _ = result(c)
    g = a["generation"]
    assert g["guess"] == "12.x" and any("each sent alone" in r for r in g["reasons"])


def test_generation_main_key_after_herald():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    blob = build_kdk(2, b"\x11" * 32, b"\x22" * 256)
    c.burst(MsgType.EKCD_KEY, [blob[o:o + 1448] for o in range(0, 4096, 1448)])
    c.buffer(0, size=4096)
    c.buffer(4096)
    c.buffer(4096 + 65536, size=8192)
    c.burst(MsgType.KDH, [build_kdh(dumplength=77824, blocksize=4096, dumpkeysize=4096)])
    c.burst(MsgType.FINISHED, [b""])
    a, _ = result(c)
    assert a["generation"]["guess"] == "main"


def test_generation_13x_key_after_kdh_and_batching():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    # the minidump header page merged with the writes after it: batching, so 13.0 or later
    data = b"minidump FreeBSD/amd64\0\0" + image(36864 - 24, seed=5)
    c.burst(V, [data[i:i + 1448] for i in range(0, len(data), 1448)], offset=0)
    c.buffer(36864)
    c.tail(36864 + 65536, key=True)
    a, _ = result(c)
    assert a["generation"]["guess"] == "13.x", a["generation"]


def test_generation_large_writes_exclude_no_generation_by_batching():
    # a lone header page, then 64 KiB writes: 12.x writes so, and 13.x flushes the header
    # page alone when the next write would not fit in its 64 KiB buffer
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    c.buffer(0, size=4096)
    c.buffer(4096)
    c.buffer(69632, size=40960)
    c.buffer(110592)
    c.tail(176128, key=True)
    a, _ = result(c)
    assert a["generation"]["candidates"] == ["12.x", "13.x"], a["generation"]


def test_generation_jumbo_payload_is_13_or_later():
    c = Dump()
    c.burst(MsgType.HERALD, [b""])
    c.buffer(0, chunk=8948)
    c.tail(65536)
    a, _ = result(c)
    assert "12.x" not in a["generation"]["candidates"]
    assert check(a, "payload at most 4096")["ok"] is False


# -- the JSON report --------------------------------------------------------------------------

def test_add_to_report_only_adds_audit_keys():
    from analyzer.report import build_report
    c = clean(n_buffers=1)
    sink = AuditSink()
    an = Analysis(sinks=[sink])
    an.run(c.items)
    an.finish()
    report = build_report([], an.records, an.recovery.capture_anomalies)
    before = {k: dict(s) for k, s in zip(range(9), report["sessions"])}
    sink.add_to_report(report)
    (s,) = report["sessions"]
    assert set(s) - set(before[0]) == {"audit"}
    assert all(s[k] == v for k, v in before[0].items())
    import json
    json.dumps(report)  # serialisable


def test_every_icmp_port_unreachable_is_counted_not_only_the_first_fifty():
    import socket

    from analyzer.datagram import Unreachable
    c = Conversation()
    c.herald()
    c.data(image(8192))
    c.kdh(8192)
    c.finished(ack=False)
    for i in range(60):  # the client resends FINISHED to the closed port, 60 times
        c.t += 1_000_000_000
        c.items.append(Unreachable(len(c.items) + 1, c.t, socket.inet_aton(c.server),
                                   socket.inet_aton(c.client), socket.inet_aton(c.client),
                                   socket.inet_aton(c.server), 20024, c.data_port))
    a, _ = result(c)
    check = next(k for k in a["checks"] if k["name"] == "no icmp port-unreachable")
    assert check["detail"].startswith("60 ICMP port-unreachable"), check
