"""Decompressing gzip and zstd dumps up to the first hole, with the reached point reported,
and restarting only where a new zstd frame can be proven and placed."""
from __future__ import annotations

import json

import pytest
import zstandard

from analyzer.debug.compressed import decompress
from analyzer.debug.derive import decompress_path
from analyzer.exits import Failure
from tests.debug.conftest import run_cli
from tests.support.dump_builders import (build_minidump, console_ring, kernel_gzip,
                                         write_dump_dir, zeroed)


def _minidump():
    ring, _ = console_ring(8192, wrapped=False)
    return build_minidump("amd64", 3, ring, bits=list(range(0, 300, 3)))


def _run(kind, stream, missing):
    holed = zeroed(stream, missing)
    out = bytearray()

    def write(pos, data):
        out[len(out):pos + len(data)] = bytes(max(0, pos + len(data) - len(out)))
        out[pos:pos + len(data)] = data

    result = decompress(kind, lambda p, n: holed[p:p + n], len(holed), missing, write)
    return result, bytes(out)


def test_the_kernels_gzip_with_block_padding_decodes_whole():
    md = _minidump()
    stream, length = kernel_gzip(md.image)
    result, out = _run("gzip", stream, [])
    assert out == md.image and result.complete and result.stopped_at is None
    assert any("padding" in n for n in result.notes) and len(stream) > length


def test_gzip_stops_at_the_first_hole_and_says_where():
    md = _minidump()
    stream, _ = kernel_gzip(md.image)
    hole = (len(stream) // 2, len(stream) // 2 + 4096)
    result, out = _run("gzip", stream, [hole])
    assert result.stopped_at == hole[0] and not result.complete
    assert 0 < result.reached < len(md.image) and out[:result.reached] == md.image[:result.reached]
    assert any("no restart is provable" in n for n in result.notes)


def test_zstd_restarts_at_the_next_frame_when_the_lost_one_declares_its_size():
    md = _minidump()
    cut = len(md.image) // 2
    frames = [zstandard.ZstdCompressor(write_content_size=True).compress(part)
              for part in (md.image[:cut], md.image[cut:])]
    stream = frames[0] + frames[1] + bytes(100)
    hole = (len(frames[0]) // 2, len(frames[0]) // 2 + 10)
    result, out = _run("zstd", stream, [hole])
    assert result.stopped_at == hole[0]
    assert out[cut:] == md.image[cut:] and result.length == len(md.image)
    assert result.missing == [(result.reached, cut)]
    assert out[:result.reached] == md.image[:result.reached]
    assert any("restarted at the next frame" in n for n in result.notes)


def test_zstd_without_content_sizes_stops_at_the_hole():
    md = _minidump()
    stream = zstandard.ZstdCompressor(write_content_size=False).compress(md.image)
    hole = (len(stream) // 2, len(stream) // 2 + 10)
    result, out = _run("zstd", stream, [hole])
    assert result.missing == [] and result.length == result.reached < len(md.image)
    assert out == md.image[:result.reached]


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_the_command_writes_the_plain_vmcore_with_its_map(tmp_path, suffix):
    md = _minidump()
    stream = kernel_gzip(md.image)[0] if suffix == ".gz" else \
        zstandard.ZstdCompressor().compress(md.image)
    paths = write_dump_dir(tmp_path, "10.0.0.3", 1, stream, suffix=suffix)
    proc = run_cli("decompress", paths["vmcore"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "vmcore.10.0.0.3.1").read_bytes() == md.image
    sidecar = json.loads((tmp_path / "vmcore.10.0.0.3.1.missing").read_text())
    assert sidecar["missing"] == [] and sidecar["derived_from"] == f"vmcore.10.0.0.3.1{suffix}"
    assert run_cli("decompress", paths["vmcore"]).returncode != 0  # never overwritten


def test_a_holed_stream_gives_the_full_length_with_the_lost_tail_mapped(tmp_path):
    md = _minidump()
    stream, _ = kernel_gzip(md.image)
    hole = (len(stream) - 3000, len(stream) - 2000)
    paths = write_dump_dir(tmp_path, "10.0.0.3", 1, stream, suffix=".gz", missing=[hole])
    derived = decompress_path(paths["vmcore"])
    out = (tmp_path / "vmcore.10.0.0.3.1").read_bytes()
    assert len(out) == len(md.image)  # the minidump layout gives the length
    (a, b), = derived.missing
    assert b == len(md.image) and out[:a] == md.image[:a] and out[a:] == bytes(b - a)
    assert json.loads((tmp_path / "vmcore.10.0.0.3.1.missing").read_text())["missing"] == \
        [[a, b]]


def test_a_file_that_is_no_stream_is_refused(tmp_path):
    paths = write_dump_dir(tmp_path, "10.0.0.3", 1, b"not compressed" * 10, suffix=".gz")
    with pytest.raises(Failure, match="not a gzip or zstd stream"):
        decompress_path(paths["vmcore"])
    assert not (tmp_path / "vmcore.10.0.0.3.1").exists()
