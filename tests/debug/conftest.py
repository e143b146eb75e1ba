"""Shared fixtures of the debug tests: RSA key pairs made once per session."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.dump_builders import rsa_pair


@pytest.fixture(scope="session")
def rsa_key():
    return rsa_pair()


@pytest.fixture(scope="session")
def other_rsa_key():
    return rsa_pair()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)],
                          capture_output=True, text=True)
