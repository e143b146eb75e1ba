"""Optional compiled helpers (``_speedups.c``), when they were built.

Built at install time when a C compiler and the Python headers are there; without them (or
with NETDUMP_ANALYZER_PURE=1) pure Python does the same work with the same results:

- the inner loops of the pcap and pcapng walkers (used through ``analyzer.capture.speedups``),
  about five times faster than the Python loops;
- :func:`new_tuple`, the protocol core's constructor for its event named tuples.
"""
from __future__ import annotations

import os

try:
    if os.environ.get("NETDUMP_ANALYZER_PURE") == "1":
        raise ImportError("disabled by NETDUMP_ANALYZER_PURE=1")
    from analyzer import _speedups as compiled
except ImportError:
    compiled = None

_tuple_new = tuple.__new__


def pure_new_tuple(cls, *items):
    """An instance of the tuple subclass ``cls`` holding ``items``."""
    return _tuple_new(cls, items)


new_tuple = compiled.new_tuple if compiled is not None else pure_new_tuple
