"""A session's states, as the core moves it through them: WAITING -> RECEIVING ->
FINISHING -> OVER, and what a HERALD does in each."""
from __future__ import annotations

from analyzer.protocol.core import NetdumpTracker
from analyzer.protocol.events import DumpFinished, SessionEnded, SessionStarted
from analyzer.protocol.state import FINISHING, OVER, RECEIVING, WAITING
from analyzer.wire import MsgType
from tests.support.datagrams import Conversation, image


def _states(items):
    """The client's state after each item, and every event."""
    t = NetdumpTracker()
    states, events = [], []
    for d in items:
        events += t.feed(d)
        s = next(iter(t.sessions.values()), None)
        states.append(s.state if s else None)
    return states, events


def test_a_dump_goes_through_its_states_in_order():
    c = Conversation()
    c.herald()
    c.data(image(2 * 1448))
    c.kdh(2 * 1448)
    fin = c.finished(ack=False)
    c.ack(int.from_bytes(fin.payload[4:8], "big"))
    states, events = _states(c.items)
    seen = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert seen == [WAITING, RECEIVING, FINISHING, OVER]
    assert [e.frame for e in events if type(e) is DumpFinished] == [c.items[-1].frame]


def test_the_finished_ack_ends_the_dump_once_and_late_copies_do_not_reopen_it():
    c = Conversation()
    c.herald()
    c.data(image(1448))
    c.kdh(1448)
    fin = c.finished()
    c.items.append(fin._replace(frame=len(c.items) + 1, ts=fin.ts + 10**9))  # resent FINISHED
    c.ack(int.from_bytes(fin.payload[4:8], "big"))
    states, events = _states(c.items)
    assert states[-1] is OVER
    assert sum(type(e) is DumpFinished for e in events) == 1
    assert sum(type(e) is SessionStarted for e in events) == 1


def test_a_resent_herald_keeps_a_waiting_session():
    c = Conversation()
    c.herald(ack=False)
    c.herald()
    _states_, events = _states(c.items)
    assert sum(type(e) is SessionStarted for e in events) == 1


def test_a_herald_after_data_restarts_and_after_finished_starts_the_next_dump():
    for finish, reason in ((False, "restarted"), (True, "finished")):
        c = Conversation()
        c.herald()
        c.data(image(1448))
        if finish:
            c.kdh(1448)
            c.finished()
        c.herald()
        _s, events = _states(c.items)
        assert [e.reason for e in events if type(e) is SessionEnded] == [reason]
        assert sum(type(e) is SessionStarted for e in events) == 2


def test_an_ekcd_key_does_not_move_a_waiting_session():
    c = Conversation()
    c.herald()
    c.key()
    states, _events = _states(c.items)
    assert states[-1] is WAITING
    c.send(MsgType.VMCORE, offset=0, payload=b"x" * 10)
    states, _events = _states(c.items)
    assert states[-1] is RECEIVING
