"""The minidump layout and its lost pages, checked against a brute-force walk of the
bitmap and dump_avail (amd64 v2 and v3, arm64)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from analyzer.debug import minidump
from analyzer.debug.files import coalesce
from analyzer.debug.inspect import verdict
from tests.support.dump_builders import PAGE, build_minidump, console_ring, lost_pa

AVAIL = [(0x1000, 0x9F000), (0x100000, 0x180000), (0x40000000, 0x40100000)]


def _interpret(md, missing=(), length=None):
    image = md.image
    length = len(image) if length is None else length
    return minidump.interpret(lambda p, n: image[p:p + n] if p < length else b"",
                              length, sorted(missing))


@pytest.mark.parametrize("arch,version", [("amd64", 2), ("amd64", 3), ("arm64", 3)])
def test_sections_follow_the_spec_layout(arch, version):
    ring, _ = console_ring(12000, wrapped=False)
    md = build_minidump(arch, version, ring, AVAIL, bits=[0, 1, 2, 200, 201, 541])
    out, problems, _missing = _interpret(md)
    assert problems == []
    assert [(s["name"], s["offset"], s["length"]) for s in out["sections"]] == \
        [(n, o, ln) for n, (o, ln) in md.sections.items()]
    assert out["pages_total"] == 6 and out["pages_lost"] == 0 and out["lost_pages_pa"] == []
    assert out["length_ok"] and out["version"] == version
    assert verdict(out) == "ok"


def test_v3_pages_are_placed_through_dump_avail_and_v2_at_bit_times_4096():
    bits = [0, 158, 159, 160]  # bit 158 is the first page of the second dump_avail range
    v3 = build_minidump("amd64", 3, b"x" * 4096, AVAIL, bits)
    v2 = build_minidump("amd64", 2, b"x" * 4096, AVAIL, bits)
    hole = lambda md: [(md.pages_offset + PAGE, md.pages_offset + 2 * PAGE + 1)]
    assert _interpret(v3, hole(v3))[0]["lost_pages_pa"] == [[0x100000, 0x102000]]
    assert _interpret(v2, hole(v2))[0]["lost_pages_pa"] == [[158 * PAGE, 160 * PAGE]]


bit_sets = st.sets(st.integers(0, 541), min_size=1, max_size=120).map(sorted)


@settings(max_examples=40, deadline=None)
@given(bit_sets, st.lists(st.tuples(st.integers(0, 130), st.integers(1, 3 * PAGE)),
                          max_size=4), st.sampled_from([("amd64", 2), ("amd64", 3),
                                                        ("arm64", 3)]))
def test_lost_pages_equal_a_brute_force_walk(bits, holes, kind):
    arch, version = kind
    md = build_minidump(arch, version, b"m" * 4096, AVAIL, bits)
    missing = [(md.pages_offset + k * 1000, md.pages_offset + k * 1000 + n) for k, n in holes]
    missing = [(a, min(b, len(md.image))) for a, b in missing if a < len(md.image)]
    out, _problems, _ = _interpret(md, coalesce(missing))
    assert out["lost_pages_pa"] == lost_pa(md, missing)
    touched = {k for a, b in missing for k in range(len(bits))
               if a < md.pages_offset + (k + 1) * PAGE and b > md.pages_offset + k * PAGE}
    assert out["pages_lost"] == len(touched)
    assert verdict(out) == ("degraded" if touched else "ok")


@pytest.mark.parametrize("section", ["header", "dump_avail", "bitmap", "pmap"])
def test_a_hole_in_the_metadata_makes_kgdb_unusable(section):
    md = build_minidump("amd64", 3, b"m" * 4096, AVAIL, list(range(10)))
    start, _length = md.sections[section]
    out, problems, _ = _interpret(md, [(start + 8, start + 16)])
    if section == "header":
        assert out is None and problems == ["the minidump header was not captured"]
    else:
        assert verdict(out) == "unusable"
        assert {s["name"]: s["missing_bytes"] for s in out["sections"]}[section] == 8


def test_a_header_page_with_its_fields_captured_is_still_interpreted_but_unusable():
    md = build_minidump("amd64", 3, b"m" * 4096, AVAIL, list(range(10)))
    out, problems, _ = _interpret(md, [(1448, 2896)])
    assert out["pages_total"] == 10 and verdict(out) == "unusable"
    assert problems == ["the header page lacks bytes after the header fields"]


def test_a_lost_msgbuf_page_only_degrades():
    md = build_minidump("amd64", 3, b"m" * 8192, AVAIL, list(range(10)))
    start, _ = md.sections["msgbuf"]
    out, _problems, _ = _interpret(md, [(start, start + 100)])
    assert verdict(out) == "degraded" and out["pages_lost"] == 0


def test_a_short_file_loses_its_tail_pages_and_its_length():
    md = build_minidump("arm64", 3, b"m" * 4096, AVAIL, list(range(10)))
    cut = md.pages_offset + 7 * PAGE
    out, problems, missing = _interpret(md, [], length=cut)
    assert missing == [(cut, len(md.image))]
    assert out["pages_lost"] == 3 and not out["length_ok"]
    assert out["lost_pages_pa"] == lost_pa(md, missing)
    assert any("layout gives" in p for p in problems)


def test_other_architectures_get_their_magic_only():
    page = b"minidump FreeBSD/i386".ljust(24, b"\0") + bytes(PAGE - 24)
    assert minidump.minidump_arch(page) == "i386" and minidump.parse_header(page) is None


def test_a_header_with_implausible_sizes_is_reported_not_read():
    md = build_minidump("amd64", 3, b"m" * 4096, AVAIL, list(range(10)))
    image = md.image[:32] + (1 << 31).to_bytes(4, "little") + md.image[36:]  # bitmapsize
    out, problems, _ = minidump.interpret(lambda p, n: image[p:p + n], len(image), [])
    assert out is None and "bitmapsize 2147483648 is over" in problems[0]
