"""The simulated netdumpd writes its info file from the protocol reference, with code of its
own; it must agree with the recovery side's info file on every header, valid or not."""
from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.recovery import infofile
from analyzer.simulate import infotext
from analyzer.wire import KDH_SIZE, build_kdh


def _agree(payload: bytes) -> None:
    view = infotext.KdhView(payload)
    assert view.lines == infofile.kdh_block(payload)
    if len(payload) >= KDH_SIZE:
        theirs = infofile.server_view(payload[:KDH_SIZE])
        assert (view.encrypted, view.suffix, view.truncate_to) == tuple(theirs)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_any_payload_gives_the_same_info_lines(payload):
    _agree(payload)


@settings(max_examples=200, deadline=None)
@given(version=st.sampled_from([0, 1, 2, 3, 4, 0x04000000]), keysize=st.sampled_from([0, 4096]),
       compression=st.integers(0, 255), dumplength=st.integers(0, 2**64 - 1),
       dumptime=st.integers(0, 2**64 - 1), host=st.binary(max_size=64),
       version_text=st.binary(max_size=192), panic=st.binary(max_size=175),
       bad_parity=st.booleans())
def test_headers_near_the_edges_agree(version, keysize, compression, dumplength, dumptime, host,
                                      version_text, panic, bad_parity):
    raw = build_kdh(4, architecture="amd64", architectureversion=2, dumplength=dumplength,
                    dumptime=dumptime, dumpkeysize=keysize, blocksize=4096, hostname=host,
                    versionstring=version_text, panicstring=panic, compression=compression)
    raw = raw[:32] + struct.pack(">I", version) + raw[36:]
    if bad_parity:
        raw = raw[:-1] + bytes([raw[-1] ^ 1])
    _agree(raw)


def test_status_lines_and_first_line_are_netdumpd_s():
    assert infotext.COMPLETE == infofile.STATUS_COMPLETE
    assert infotext.TIMED_OUT == infofile.STATUS_TIMED_OUT
    assert infotext.header_line("10.0.0.1", "10.0.0.1") == infofile.first_line("10.0.0.1",
                                                                               "10.0.0.1")


def test_the_simulator_imports_nothing_it_checks():
    import ast
    from pathlib import Path
    root = Path(infotext.__file__).parent
    allowed = {"analyzer.wire", "analyzer.intervals"}
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("analyzer") and not name.startswith("analyzer.simulate"):
                    assert name in allowed, f"{path.name} imports {name}"
