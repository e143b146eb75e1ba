"""The compiled walker loops, when they were built (see ``analyzer.speedups``).

They walk the records that make up nearly all of a netdump capture (Ethernet, untagged or
VLAN-tagged, raw IPv4, Linux cooked SLL/SLL2 and BSD loopback; IPv4 without options; whole UDP
datagrams) and hand every other record back to the Python walker; ``CaptureReader(compiled=False)``
or NETDUMP_ANALYZER_PURE=1 leaves all of it to the Python walkers, with the same results.
"""
from __future__ import annotations

from analyzer.capture.links import (
    LT_ETHERNET, LT_IPV4, LT_LOOP, LT_NULL, LT_RAW, LT_RAW_BSD1, LT_RAW_BSD2, LT_SLL, LT_SLL2,
)
from analyzer.speedups import compiled

__all__ = ["compiled", "CompiledLoop", "LINKTYPES", "link_cache", "port_bitmap"]

# link types the compiled loops take (the others go to the Python walkers whole)
LINKTYPES = frozenset({LT_ETHERNET, LT_RAW, LT_IPV4, LT_RAW_BSD1, LT_RAW_BSD2, LT_SLL, LT_SLL2,
                       LT_NULL, LT_LOOP})


def port_bitmap(ports) -> bytes:
    """The 65536-bit set of ports the compiled loops keep datagrams of."""
    bits = bytearray(8192)
    for p in ports:
        bits[p >> 3] |= 1 << (p & 7)
    return bytes(bits)


def link_cache() -> list:
    """The compiled loops' memory of the last two link identities (key, link tuple)."""
    return [None, None, None, None]


class CompiledLoop:
    """What a walker hands the compiled loop besides the buffer: the module, the ports as a
    bitmap, whether to verify checksums."""

    __slots__ = ("module", "bitmap", "verify")

    def __init__(self, module, ports, verify: bool):
        self.module = module
        self.bitmap = port_bitmap(ports)
        self.verify = verify
