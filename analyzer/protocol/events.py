"""Events the sans-I/O protocol core returns; sinks consume them in order."""
from __future__ import annotations

from typing import NamedTuple


class SessionStarted(NamedTuple):
    session: int  # id, unique in the run
    client: str  # dotted IPv4
    server: str
    server_port: int | None  # data port, once known
    herald_path: bytes | None  # HERALD payload with its NUL, None when no HERALD was captured
    frame: int
    ts: int
    herald_seen: bool


class ServerPort(NamedTuple):
    """The server's data port became known (first ACK, or the client's first data message)."""

    session: int
    port: int
    frame: int


class Message(NamedTuple):
    session: int
    frame: int
    ts: int
    type: int
    seqno: int
    offset: int
    length: int  # mh_len
    payload: bytes  # as captured; shorter than length when the capture cut it
    retransmit: bool  # this seqno was already sent in this session
    first_frame: int  # frame of the first transmission of this seqno (this frame if new)
    conflict: bool = False  # retransmission whose bytes differ from the previous copy


class Ack(NamedTuple):
    session: int
    frame: int
    ts: int
    seqno: int
    message_frame: int  # first transmission of the acked seqno, 0 when never captured
    duplicate: bool  # this seqno was acked before
    first_ack_frame: int  # first ACK of this seqno (this frame if new)
    sport: int


class Anomaly(NamedTuple):
    session: int | None
    kind: str
    frame: int
    detail: str


class DumpFinished(NamedTuple):
    """The server ACKed the FINISHED (or a one-way capture showed it): the dump is over and
    can be saved now. The session stays open for late copies until its SessionEnded."""

    session: int
    frame: int


class SessionEnded(NamedTuple):
    session: int
    reason: str  # "finished" (a FINISHED, then the client's next HERALD; or the session
    # limit closing a finished one), "restarted" (new
    # HERALD after data, no FINISHED), "timeout" (600 s silent, as netdumpd),
    # "evicted" (session limit reached, no data), "end-of-capture"
    frame: int
