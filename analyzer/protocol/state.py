"""A session's states and their transitions, in one place (as h11 keeps its ``_state.py``).

A dump goes WAITING -> RECEIVING -> FINISHING -> OVER. Only the messages that matter move
it: dump data (VMCORE, KDH), FINISHED, and the server's ACK of that FINISHED. A HERALD does
not move it; what a HERALD does to a session depends on the state it is in. OVER is
netdumpd's "session closed": the dump is complete as far as the server goes, and late
copies the client still sends are only counted.
"""
from __future__ import annotations

import enum

from analyzer.wire import MsgType


class State(enum.IntEnum):
    WAITING = 0  # opened by a HERALD (or found from later packets); no dump data yet
    RECEIVING = 1  # a VMCORE or KDH arrived: netdumpd's any_data_rcvd
    FINISHING = 2  # the FINISHED arrived; its ACK has not been seen
    OVER = 3  # the FINISHED was ACKed (or seen in a one-way capture): the dump has ended


WAITING, RECEIVING, FINISHING, OVER = State

# Per state: the client message types that move a session, and where to. A type that is
# not listed leaves the state as it is (EKCD_KEY, HERALD, and everything once OVER).
MOVES: dict[State, dict[int, State]] = {
    WAITING: {MsgType.VMCORE: RECEIVING, MsgType.KDH: RECEIVING, MsgType.FINISHED: FINISHING},
    RECEIVING: {MsgType.FINISHED: FINISHING},
    FINISHING: {},
    OVER: {},
}


def after_finished_ack(state: State) -> State:
    """The server ACKed the FINISHED (or the capture is one-way): the dump is over."""
    return OVER if state is FINISHING else state


# What a new HERALD does, per state: None keeps the session (the first HERALD resent);
# otherwise the session ends with this reason and a new one opens (the client's next dump).
ON_HERALD: dict[State, str | None] = {
    WAITING: None,
    RECEIVING: "restarted",
    FINISHING: "finished",
    OVER: "finished",
}

# A session that may be closed to make room for a new one when the open-session limit is
# reached: it never carried data.
EVICTABLE = frozenset({WAITING})

# The sessions a capture cut short hurts: those still receiving their dump.
IN_FLIGHT = frozenset({WAITING, RECEIVING})

# The FINISHED was seen: an ICMP port-unreachable now means netdumpd closed the session.
FINISHED_SEEN = frozenset({FINISHING, OVER})
