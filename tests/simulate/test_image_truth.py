"""The ground truth of a loss: which physical pages and msgbuf lines the capture's holes
destroy, computed again here by walking bitmap and dump_avail as libkvm does."""
from __future__ import annotations

import re

import pytest

from analyzer.simulate import CaptureSpec, DumpSpec, simulate_frames
from analyzer.wire import MSG_HDR, MsgType, parse_kdh
from tests.support import kvm_walk

PAGE = 4096
H = MSG_HDR.struct


def _frames_at(spec, seed, offsets):
    """1-based capture frame numbers of the first client VMCORE frames covering ``offsets``."""
    frames, _ = simulate_frames(spec, seed=seed)
    want = set(offsets)
    out = []
    for n, f in enumerate(frames, 1):
        if f[1] != 0:
            continue
        mtype, _seq, off, length, _ = H.unpack_from(f[6])
        hit = {o for o in want if mtype == MsgType.VMCORE and off <= o < off + length}
        if hit:
            out.append(n)
            want -= hit
    return tuple(out)


def _coalesce(pas):
    out = []
    for pa in sorted(pas):
        if out and out[-1][1] == pa:
            out[-1][1] = pa + PAGE
        else:
            out.append([pa, pa + PAGE])
    return out


def _expected_lost_pages(data, lost):
    lay, pages = kvm_walk.page_map(data)
    by_offset = {off: pa for pa, off in pages.items()}
    hit = {by_offset[o // PAGE * PAGE] for s, e in lost for o in range(s, e)
           if o >= lay["offsets"]["pages"]}
    return _coalesce(hit)


def _expected_lost_lines(data, lost):
    h = kvm_walk.header(data)
    ring = data[PAGE:PAGE + h["msgbufsize"]]
    m = list(re.finditer(rb"Dumping \d+ out of \d+ MB:", ring))[-1]
    wrapped = b"\0" not in ring
    start = m.end() if wrapped else 0
    order = list(range(start, len(ring))) + list(range(0, start)) if wrapped \
        else list(range(m.end()))
    gone = {o - PAGE for s, e in lost for o in range(s, e) if PAGE <= o < PAGE + len(ring)}
    lines, current, damaged = [], [], False
    for pos in order:
        if ring[pos] == 0x0A:
            lines.append((bytes(current).decode(), damaged))
            current, damaged = [], False
        else:
            current.append(ring[pos])
            damaged |= pos in gone
    lines.append((bytes(current).decode(), damaged))
    return "\n".join(t for t, _ in lines), [t for t, d in lines if d]


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("wrapped", [False, True])
def test_lost_pages_and_msgbuf_lines_match_an_independent_walk(arch, version, wrapped):
    size = 512 << 10
    spec = DumpSpec(size=size, image="minidump", arch=arch, minidump_version=version,
                    msgbuf_wrapped=wrapped, panic="sleeping thread 0xfffff80003 owns a mutex")
    # Lose one frame in the msgbuf and two among the pages.
    drop = _frames_at(spec, 8, [PAGE + 5000, size // 2, size - 3 * PAGE])
    _frames, truth = simulate_frames(spec, capture=CaptureSpec(drop_frames=drop), seed=8)
    dump = truth.to_json()["dumps"][0]
    entry = dump["image"]
    lost = [tuple(r) for r in dump["capture"]["missing"]]
    assert len(lost) == 3 and entry["missing"] == [list(r) for r in lost]
    data = truth.dumps[0].material.stream.image.read(0, size)
    assert entry["lost_pages_pa"] == _expected_lost_pages(data, lost)
    assert entry["pages_lost"] == sum(e - s for s, e in entry["lost_pages_pa"]) // PAGE > 0
    text, damaged = _expected_lost_lines(data, lost)
    mb = entry["msgbuf"]
    assert mb["text"] == text and mb["wrapped"] == wrapped
    assert [x["text"] for x in mb["lost_lines"]] == damaged and damaged
    assert mb["panic"] == "sleeping thread 0xfffff80003 owns a mutex"
    assert ("\npanic: " + mb["panic"] + "\n") in text
    kdh_version = parse_kdh(truth.dumps[0].session.kdh_raw[0])["versionstring"]
    if wrapped:
        assert mb["version_line"] is None
    else:
        assert mb["version_line"] == kdh_version.split("\n")[0]
        assert mb["version_line"] in text.split("\n")
    lost_text = "".join(text.encode()[s:e].decode() for s, e in mb["missing"])
    assert sum(e - s for s, e in mb["missing"]) == len(lost_text) > 0
    assert entry["kgdb"] == "degraded"
    by_name = {s["name"]: s["missing_bytes"] for s in entry["sections"]}
    assert by_name["msgbuf"] > 0 and by_name["pages"] > 0 and by_name["header"] == 0


def test_a_lost_bitmap_makes_the_dump_unusable_for_kgdb():
    spec = DumpSpec(size=256 << 10, image="minidump")
    _frames, truth = simulate_frames(spec, seed=2)
    sections = {s["name"]: s for s in truth.to_json()["dumps"][0]["image"]["sections"]}
    drop = _frames_at(spec, 2, [sections["bitmap"]["offset"]])
    _frames, truth = simulate_frames(spec, capture=CaptureSpec(drop_frames=drop), seed=2)
    entry = truth.to_json()["dumps"][0]["image"]
    assert entry["kgdb"] == "unusable"
    assert {s["name"] for s in entry["sections"] if s["missing_bytes"]} >= {"bitmap"}


def test_without_a_kdh_everything_past_the_capture_is_lost():
    spec = DumpSpec(size=256 << 10, image="minidump", restart_after=64 << 10)
    _frames, truth = simulate_frames(spec, seed=3)
    first = truth.to_json()["dumps"][0]
    assert first["capture"]["kdh_frames"] == 0
    end = first["capture"]["length"]
    assert first["image"]["missing"][-1] == [end, 256 << 10]
    assert first["image"]["msgbuf"]["panic"] == "page fault"


def test_a_compressed_stream_is_lost_from_its_first_hole():
    spec = DumpSpec(size=512 << 10, image="minidump", compress="gzip")
    drop = _frames_at(spec, 4, [20000])
    _frames, truth = simulate_frames(spec, capture=CaptureSpec(drop_frames=drop), seed=4)
    dump = truth.to_json()["dumps"][0]
    comp = dump["image"]["compression"]
    assert comp["stopped_at"] == dump["capture"]["missing"][0][0]
    import zlib
    wire = truth.file_bytes(truth.dumps[0].session.core_name)
    got = zlib.decompressobj(31).decompress(wire[:comp["stopped_at"]])
    assert comp["decoded_bytes"] == len(got)
    assert got == truth.dumps[0].material.stream.image.read(0, len(got))
    assert dump["image"]["missing"] == [[len(got), 512 << 10]]
