"""The sans-I/O core: sessions, retransmissions, ACKs and anomalies from datagrams alone."""
from analyzer.protocol.core import NetdumpTracker
from analyzer.protocol.events import Ack, Anomaly, Message, ServerPort, SessionEnded, SessionStarted
from analyzer.wire import MsgType

from tests.support.datagrams import Conversation, clean_dump


def run(items):
    t = NetdumpTracker()
    events = []
    for it in items:
        events += t.feed(it)
    events += t.close()
    return events


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_clean_dump_is_one_session_with_every_message_and_ack():
    c, img = clean_dump(size=8192)
    ev = run(c.items)
    (start,) = of(ev, SessionStarted)
    assert start.client == "192.0.2.7" and start.herald_seen and start.herald_path == b"crash/web1\0"
    assert of(ev, ServerPort)[0].port == 40001
    msgs = of(ev, Message)
    assert [m.type for m in msgs].count(MsgType.VMCORE) == 6
    assert not any(m.retransmit for m in msgs)
    acks = of(ev, Ack)
    assert len(acks) == len(msgs) and not any(a.duplicate for a in acks)
    assert all(a.message_frame for a in acks)
    assert of(ev, SessionEnded)[0].reason == "end-of-capture"
    assert not of(ev, Anomaly)


def test_retransmission_keeps_seqno_and_points_to_first_copy():
    c = Conversation()
    c.herald()
    first = c.send(MsgType.VMCORE, offset=0, payload=b"a" * 100)
    again = c.send(MsgType.VMCORE, seqno=2, offset=0, payload=b"a" * 100)
    ev = run(c.items)
    m = of(ev, Message)[-1]
    assert m.retransmit and m.first_frame == first.frame and m.frame == again.frame
    assert not m.conflict


def test_conflicting_retransmission_is_reported_with_both_frames():
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=0, payload=b"a" * 100)
    c.send(MsgType.VMCORE, seqno=2, offset=0, payload=b"b" * 100)
    ev = run(c.items)
    (a,) = [a for a in of(ev, Anomaly) if a.kind == "conflicting-retransmit"]
    assert "frame 4 differs from frame 3" in a.detail
    assert of(ev, Message)[-1].conflict


def test_capture_duplicate_is_not_a_retransmission():
    c = Conversation()
    c.herald()
    d = c.send(MsgType.VMCORE, offset=0, payload=b"a" * 100)
    c.items.append(d._replace(frame=d.frame + 1))
    ev = run(c.items)
    assert len(of(ev, Message)) == 2  # HERALD and one VMCORE


def test_repeated_herald_before_data_is_the_same_session():
    c = Conversation()
    c.herald(ack=False)
    c.send(MsgType.HERALD, seqno=1, payload=b"crash/web1\0")
    c.ack(1)
    ev = run(c.items)
    assert len(of(ev, SessionStarted)) == 1
    assert of(ev, Message)[1].retransmit


def test_herald_after_data_starts_a_new_dump():
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=0, payload=b"a" * 100)
    c.seq = 1
    c.herald()
    ev = run(c.items)
    starts = of(ev, SessionStarted)
    assert len(starts) == 2
    assert of(ev, SessionEnded)[0].reason == "restarted"


def test_capture_starting_after_the_herald_learns_the_port_from_the_client():
    c = Conversation()
    c.seq = 5
    c.send(MsgType.VMCORE, offset=4096, payload=b"x" * 10)
    ev = run(c.items)
    assert not of(ev, SessionStarted)[0].herald_seen
    assert of(ev, ServerPort)[0].port == 40001
    assert "herald-missing" in [a.kind for a in of(ev, Anomaly)]


def test_malformed_datagrams_are_anomalies_not_messages():
    c = Conversation()
    c.herald()
    c.raw(b"short")
    c.raw(b"\0\0\0\3" + b"\0" * 20 + b"extra")  # mh_len 0 but 5 payload bytes
    c.send(9, offset=0)
    ev = run(c.items)
    kinds = [a.kind for a in of(ev, Anomaly)]
    assert kinds == ["runt", "bad-length", "unknown-type"]
    assert len(of(ev, Message)) == 1


def test_duplicate_ack_and_ack_for_unseen_message():
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=0, payload=b"a")
    c.ack(2)
    c.ack(2)
    c.ack(9)
    ev = run(c.items)
    acks = of(ev, Ack)
    assert [a.duplicate for a in acks] == [False, False, True, False]
    assert acks[2].first_ack_frame == acks[1].frame
    assert acks[3].message_frame == 0


def test_many_clients_are_kept_apart():
    a = Conversation(client="10.0.0.1")
    b = Conversation(client="10.0.0.2", data_port=40002)
    a.herald()
    b.herald()
    items = sorted(a.items + b.items, key=lambda d: d.ts)
    items = [d._replace(frame=i + 1) for i, d in enumerate(items)]
    ev = run(items)
    assert {s.client for s in of(ev, SessionStarted)} == {"10.0.0.1", "10.0.0.2"}


def test_a_session_silent_for_600_seconds_times_out_like_netdumpd():
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=0, payload=b"a")
    c.t += 601 * 10**9
    c.send(MsgType.VMCORE, offset=1, payload=b"b")
    ev = run(c.items)
    assert of(ev, SessionEnded)[0].reason == "timeout"
    assert len(of(ev, SessionStarted)) == 2


def test_a_flood_of_heralds_is_bounded_and_real_dumps_survive():
    from analyzer.datagram import Datagram
    from analyzer.wire import build_message
    from tests.support.datagrams import ip
    t = NetdumpTracker(max_sessions=8)
    events = []
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=0, payload=b"a")
    for d in c.items:
        events += t.feed(d)
    for i in range(100):
        d = Datagram(100 + i, c.t + i, bytes([10, 9, i // 256, i % 256]), ip("192.0.2.1"),
                     20024, 20023, build_message(1, 1))
        events += t.feed(d)
    assert len(t.sessions) == 8
    assert c.items[0].src in t.sessions  # the dump with data was kept
    assert sum(1 for e in events if isinstance(e, Anomaly) and e.kind == "session-limit") >= 90


def _with_link(items, mac, vlans=()):
    return [d._replace(link=(mac if d.sport == 20024 else b"\xaa" * 6, vlans)) for d in items]


def test_same_address_on_two_vlans_is_two_dumps():
    a, b = Conversation(), Conversation(data_port=40002)
    a.herald()
    a.send(MsgType.VMCORE, offset=0, payload=b"a")
    b.herald()
    b.send(MsgType.VMCORE, offset=0, payload=b"b")
    items = _with_link(a.items, b"\x01" * 6, (10,)) + _with_link(b.items, b"\x01" * 6, (20,))
    items = [d._replace(frame=i + 1) for i, d in enumerate(sorted(items, key=lambda d: d.ts))]
    ev = run(items)
    assert len(of(ev, SessionStarted)) == 2
    assert not [e for e in of(ev, Anomaly) if e.kind == "dump-restarted"]


def test_two_hosts_claiming_one_address_are_reported_and_kept_apart():
    a, b = Conversation(), Conversation(data_port=40002)
    a.herald()
    a.send(MsgType.VMCORE, offset=0, payload=b"a" * 10)
    b.herald()
    b.send(MsgType.VMCORE, offset=0, payload=b"b" * 10)
    items = _with_link(a.items, b"\x01" * 6) + _with_link(b.items, b"\x02" * 6)
    items = [d._replace(frame=i + 1) for i, d in enumerate(sorted(items, key=lambda d: d.ts))]
    ev = run(items)
    sessions = {e.session for e in of(ev, Message)}
    assert len(sessions) == 2
    assert "ip-conflict" in [e.kind for e in of(ev, Anomaly)]
    acks = of(ev, Ack)
    assert {a.session for a in acks} == sessions  # each ACK went to the host on its port
    assert not [m for m in of(ev, Message) if m.retransmit or m.conflict]


def test_ack_from_a_second_server_port_is_reported():
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=0, payload=b"a")
    c.ack(2, sport=50000)
    ev = run(c.items)
    assert "server-port-changed" in [a.kind for a in of(ev, Anomaly)]


def test_bad_checksum_data_is_not_trusted():
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=0, payload=b"a", bad_checksum=True)
    ev = run(c.items)
    assert [m.type for m in of(ev, Message)] == [MsgType.HERALD]
    assert "bad-checksum" in [a.kind for a in of(ev, Anomaly)]


def test_next_dump_after_a_finished_one_is_not_a_restart():
    c, _img = clean_dump(size=3000)
    c.seq = 1
    c.herald()
    ev = run(c.items)
    assert [e.reason for e in of(ev, SessionEnded)] == ["finished", "end-of-capture"]
    assert "dump-restarted" not in [a.kind for a in of(ev, Anomaly)]


def test_the_record_a_cut_file_ends_in_is_truncated_capture_only():
    from analyzer.datagram import Notice
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=0, payload=b"x" * 1448)
    c.send(MsgType.VMCORE, offset=1448, payload=b"y" * 1448)
    *whole, last = c.items
    cut = last._replace(payload=last.payload[:-100], missing=100)
    ev = NetdumpTracker().feed_many([*whole, Notice("truncated-capture", cut.frame, "cut"), cut])
    assert [a.kind for a in of(ev, Anomaly)] == ["truncated-capture"]
    assert of(ev, Message)[-1].payload == b"y" * 1348


def test_a_frame_cut_by_the_snap_length_is_still_snaplen_truncated():
    c = Conversation()
    c.herald()
    d = c.send(MsgType.VMCORE, offset=0, payload=b"x" * 1448)
    c.items[-1] = d._replace(payload=d.payload[:-100], missing=100)
    ev = NetdumpTracker().feed_many(c.items)
    assert [a.kind for a in of(ev, Anomaly)] == ["snaplen-truncated"]
