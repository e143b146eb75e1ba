"""The compiled inner loops of the capture walkers, when they were built.

``_speedups.c`` walks the records that make up nearly all of a netdump capture (Ethernet,
untagged or VLAN-tagged, IPv4 without options, whole UDP datagrams) about ten times faster
than the Python loop, and hands every other record back to the Python walker. It is built
at install time when a C compiler is there; without it (or with NETDUMP_ANALYZER_PURE=1)
the Python walkers do all the work, with the same results.
"""
from __future__ import annotations

import os

try:
    if os.environ.get("NETDUMP_ANALYZER_PURE") == "1":
        raise ImportError("disabled by NETDUMP_ANALYZER_PURE=1")
    from analyzer.capture import _speedups as compiled
except ImportError:
    compiled = None


def port_bitmap(ports) -> bytes:
    """The 65536-bit set of ports the compiled loops keep datagrams of."""
    bits = bytearray(8192)
    for p in ports:
        bits[p >> 3] |= 1 << (p & 7)
    return bytes(bits)


def link_cache() -> list:
    """The compiled loops' memory of the last two link identities (key, link tuple)."""
    return [b"", None, b"", None]
