"""What readers hand to the protocol core: decoded UDP datagrams and capture notices.

Plain tuples on purpose: millions of them go by, and the core reads them by position.
Addresses are 4-byte packed IPv4 (``socket.inet_ntoa`` turns them into text).
"""
from __future__ import annotations

from typing import Any, NamedTuple


class Datagram(NamedTuple):
    frame: int  # 1-based frame number across all capture files of the run
    ts: int  # capture time, integer nanoseconds since the epoch
    src: bytes  # packed IPv4 source address
    dst: bytes
    sport: int
    dport: int
    payload: bytes  # UDP payload as captured
    missing: int = 0  # UDP payload bytes the capture lost (snap length or a cut file)
    link: Any = None  # link-layer identity (source MAC, VLAN tags), for telling hosts apart
    bad_checksum: bool = False  # UDP or IP checksum verified wrong (not zero, not offload-looking)


class Unreachable(NamedTuple):
    """An ICMP port-unreachable quoting a netdump datagram: its destination port was closed
    (after FINISHED, netdumpd has closed the session's socket)."""

    frame: int
    ts: int
    src: bytes  # the host that sent the ICMP message
    dst: bytes
    orig_src: bytes  # the quoted datagram's addresses and ports
    orig_dst: bytes
    orig_sport: int
    orig_dport: int


class Notice(NamedTuple):
    """Something a reader saw that is not a datagram: an anomaly with no session yet."""

    kind: str  # one of the stable anomaly keywords
    frame: int
    detail: str
    ts: int = 0
