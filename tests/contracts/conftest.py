"""Running the installed command as a user would: a new process, its exit status, its text."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


class Result:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"exit {self.code}\nstdout: {self.out[-2000:]}\nstderr: {self.err[-2000:]}"


def run_tool(*args, cwd=None, stdin=None, input_bytes=None, env=None, timeout=120) -> Result:
    """``netdump-analyzer ARGS`` in a fresh process; text output, never a traceback."""
    full_env = {**os.environ, "COLUMNS": "100", **(env or {})}
    full_env.pop("NETDUMP_ANALYZER_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], cwd=cwd,
                          stdin=stdin, input=input_bytes, capture_output=True, env=full_env,
                          timeout=timeout)
    res = Result(proc)
    res.out = proc.stdout.decode("utf-8", "replace")
    res.err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in res.err, res
    return res


@pytest.fixture
def run():
    return run_tool


@pytest.fixture
def tmp(tmp_path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
def rsa():
    """The operator's RSA key pair (tests make their own, as dumpon's user would)."""
    from tests.contracts.dump_build import rsa_key
    return rsa_key()


@pytest.fixture(scope="session")
def other_rsa():
    from tests.contracts.dump_build import rsa_key
    return rsa_key()
