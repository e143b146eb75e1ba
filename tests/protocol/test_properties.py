"""Property tests: the core never raises, and packet order never changes the recovered bytes."""
import hashlib
import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from analyzer.datagram import Datagram
from analyzer.intervals import IntervalSet
from analyzer.pipeline import Analysis
from analyzer.recovery.hashing import StreamingHash

from tests.support.datagrams import clean_dump, ip


@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 60)), max_size=60))
def test_interval_set_matches_a_plain_set(ranges):
    s, ref = IntervalSet(), set()
    for start, n in ranges:
        added = s.add(start, start + n)
        assert added == len(set(range(start, start + n)) - ref)
        ref |= set(range(start, start + n))
    assert s.total == len(ref)
    assert all(s.contains(v) == (v in ref) for v in range(0, 400))
    gaps = {v for a, b in s.gaps(0, 400) for v in range(a, b)}
    assert gaps == set(range(400)) - ref
    starts = [a for a, _ in s]
    assert starts == sorted(starts)


@given(st.permutations(list(range(12))), st.data())
def test_streaming_hash_is_order_independent(order, data):
    chunks = [bytes([i]) * (100 + i) for i in range(12)]
    offsets = [sum(len(c) for c in chunks[:i]) for i in range(12)]
    h = StreamingHash()
    for i in order:
        h.feed(offsets[i], chunks[i])
        if data.draw(st.booleans()):
            h.feed(offsets[i], chunks[i])  # a harmless resend
    whole = b"".join(chunks)
    assert h.digest(len(whole)) == hashlib.sha256(whole).hexdigest()


_ports = st.sampled_from([20023, 20024, 40001])
_addr = st.sampled_from([ip("192.0.2.7"), ip("192.0.2.1"), ip("10.0.0.9")])


@st.composite
def datagrams(draw):
    kind = draw(st.integers(0, 2))
    if kind == 0:
        payload = draw(st.binary(max_size=80))
    elif kind == 1:
        body = draw(st.binary(max_size=40))
        payload = struct.pack(">IIQII", draw(st.integers(0, 7)), draw(st.integers(0, 2**32 - 1)),
                              draw(st.integers(0, 2**64 - 1)),
                              draw(st.sampled_from([len(body), len(body) + 1, 2**32 - 1])),
                              0) + body
    else:
        payload = struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
    return (draw(_addr), draw(_addr), draw(_ports), draw(_ports), payload,
            draw(st.integers(0, 3)))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(datagrams(), max_size=40))
def test_arbitrary_datagrams_never_raise(tmp_path_factory, items):
    out = tmp_path_factory.mktemp("out")
    feed = [Datagram(i + 1, i * 1000, src, dst, sp, dp, pl, missing)
            for i, (src, dst, sp, dp, pl, missing) in enumerate(items)]
    a = Analysis(str(out))
    a.run(feed)
    a.finish()
    for rec in a.records:
        rec.vmcore_missing()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_order_or_duplication_of_a_dump_gives_the_same_bytes(tmp_path_factory, data):
    c, img = clean_dump(size=6 * 1448 + 100)
    herald, rest = c.items[:2], c.items[2:]
    rest = data.draw(st.permutations(rest))
    dups = data.draw(st.lists(st.sampled_from(rest), max_size=5))
    items = herald + list(rest) + dups
    items = [d._replace(frame=i + 1, ts=10**9 + i * 1000) for i, d in enumerate(items)]
    out = tmp_path_factory.mktemp("out")
    a = Analysis(str(out))
    a.run(items)
    a.finish()
    (rec,) = a.records
    assert rec.complete
    assert (out / "crash/web1/vmcore.192.0.2.7.0").read_bytes() == img
    assert rec.sha256 == hashlib.sha256(img).hexdigest()


def _dump_like(draw):
    """A clean dump's datagrams, shuffled a little, some dropped, some doubled."""
    c, _img = clean_dump(size=draw(st.integers(1, 9)) * 1448 + draw(st.integers(0, 1447)))
    items = list(c.items)
    for _ in range(draw(st.integers(0, 6))):
        i, j = draw(st.integers(0, len(items) - 1)), draw(st.integers(0, len(items) - 1))
        op = draw(st.sampled_from(["swap", "drop", "double"]))
        if op == "swap":
            items[i], items[j] = items[j], items[i]
        elif op == "drop" and len(items) > 1:
            del items[i]
        else:
            items.insert(j, items[i])
    return [d._replace(frame=k + 1, ts=10**9 + k * 1000) for k, d in enumerate(items)]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_feed_many_in_any_batches_equals_feed_one_by_one(data):
    from analyzer.datagram import Notice
    from analyzer.protocol.core import NetdumpTracker
    items = _dump_like(data.draw)
    noisy = data.draw(st.lists(st.tuples(st.integers(0, len(items)),
                                         st.sampled_from(["truncated-capture",
                                                          "ip-fragments"])), max_size=3))
    for pos, kind in sorted(noisy, reverse=True):
        frame = items[pos - 1].frame if pos else 0
        items.insert(pos, Notice(kind, frame, "noise"))
    one = NetdumpTracker()
    expected = [e for item in items for e in one.feed(item)] + one.close()
    many = NetdumpTracker()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(items)), max_size=5)))
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(items)]):
        got += many.feed_many(items[a:b])
    assert got + many.close() == expected


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_recovery_takes_a_list_of_events_as_it_takes_them_one_by_one(data):
    from analyzer.protocol.core import NetdumpTracker
    from analyzer.recovery.dump import Recovery
    from analyzer.report import session_json
    items = _dump_like(data.draw)
    t = NetdumpTracker()
    events = t.feed_many(items) + t.close()
    whole, single = Recovery(), Recovery()
    whole.handle(events)
    for ev in events:
        single.handle([ev])
    assert [session_json(r) for r in whole.records.values()] == \
        [session_json(r) for r in single.records.values()]


@given(st.lists(st.tuples(st.integers(0, 2**66), st.integers(0, 2**64)), max_size=20))
def test_interval_set_keeps_offsets_past_64_bits(ranges):
    """Offsets come from 64-bit wire fields plus a length: the set (compiled too) takes
    them as Python ints, never as C integers that would wrap."""
    s, total = IntervalSet(), 0
    for start, n in ranges:
        total += s.add(start, start + n)
    assert s.total == total == sum(b - a for a, b in s)
    assert all(s.contains(a) and not s.contains(b) for a, b in s)
