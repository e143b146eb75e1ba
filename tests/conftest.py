"""Shared fixtures."""
from __future__ import annotations

import pytest

from analyzer import speedups as helpers
from analyzer.capture import speedups
from analyzer.protocol import core


@pytest.fixture(params=["compiled", "python"])
def walker(request, monkeypatch):
    """Runs a test once with the compiled helpers (walker loops, event constructor) and once
    with pure Python alone (in this process and in the command-line runs it starts)."""
    if request.param == "python":
        monkeypatch.setattr(speedups, "compiled", None)
        monkeypatch.setattr(core, "_new", helpers.pure_new_tuple)
        monkeypatch.setenv("NETDUMP_ANALYZER_PURE", "1")
    elif speedups.compiled is None:
        pytest.skip("the compiled walker loops are not built (no C compiler at install)")
    return request.param
