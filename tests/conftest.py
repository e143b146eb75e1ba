"""Shared fixtures."""
from __future__ import annotations

import pytest

from analyzer.capture import speedups


@pytest.fixture(params=["compiled", "python"])
def walker(request, monkeypatch):
    """Runs a test once with the compiled walker loops and once with the Python walkers
    alone (in this process and in the command-line runs it starts)."""
    if request.param == "python":
        monkeypatch.setattr(speedups, "compiled", None)
        monkeypatch.setenv("NETDUMP_ANALYZER_PURE", "1")
    elif speedups.compiled is None:
        pytest.skip("the compiled walker loops are not built (no C compiler at install)")
    return request.param
