"""Simulated minidumps are consistent the way libkvm reads them: header, bitmap, pmap, pages."""
from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.simulate import DumpSpec, simulate_frames
from analyzer.simulate.minidump import Minidump, image_from
from tests.support import kvm_walk

PAGE = 4096
KINDS = [(arch, version) for arch in ("amd64", "arm64") for version in (2, 3)]


@pytest.mark.parametrize("arch,version", KINDS)
@pytest.mark.parametrize("size", [96 << 10, 256 << 10, 3 << 20, 20 << 20])
def test_dumplength_is_the_sum_of_the_sections_and_the_bitmap_population(arch, version, size):
    data = Minidump(size, 7, arch=arch, version=version).read(0, size)
    lay = kvm_walk.layout(data)
    h = lay["header"]
    assert h["magic"] == b"minidump FreeBSD/" + arch.encode() and h["version"] == version
    assert (h["dumpavailsize"] > 0) == (version == 3)
    pages = len(kvm_walk.set_bits(data, lay))
    assert size == (PAGE + kvm_walk.round_page(h["msgbufsize"])
                    + kvm_walk.round_page(h["dumpavailsize"]) + h["bitmapsize"] + h["pmapsize"]
                    + pages * PAGE)
    assert h["bitmapsize"] % PAGE == 0 and h["pmapsize"] % PAGE == 0


@pytest.mark.parametrize("arch,version", KINDS)
def test_v3_pages_lie_in_dump_avail_and_v2_bits_are_page_frame_numbers(arch, version):
    img = Minidump(1 << 20, 3, arch=arch, version=version)
    data = img.read(0, img.size)
    lay, pages = kvm_walk.page_map(data)
    avail = kvm_walk.dump_avail(data, lay)
    if version == 3:
        assert avail and all(s % PAGE == 0 and e % PAGE == 0 for s, e in avail)
        assert all(any(s <= pa < e for s, e in avail) for pa in pages)
    else:
        assert avail == []
        # v2: bit i is PA i * 4096, so the set bits sit where memory is (PC: above the ISA
        # hole; arm64: from 1 GiB).
        first = min(pages)
        assert first >= (0x1000 if arch == "amd64" else 0x40000000)
    assert len(pages) == len(kvm_walk.set_bits(data, lay))


def _amd64_pdes(data, lay):
    base = lay["offsets"]["pmap"]
    return struct.unpack_from(f"<{lay['header']['pmapsize'] // 8}Q", data, base)


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("size", [256 << 10, 20 << 20])
def test_amd64_pdes_map_2mib_pages_or_page_table_pages_that_are_dumped(version, size):
    data = Minidump(size, 11, arch="amd64", version=version).read(0, size)
    lay, pages = kvm_walk.page_map(data)
    valid = [p for p in _amd64_pdes(data, lay) if p & 1]
    assert valid, "a kernel map with no valid PDE"
    ptes_checked = 0
    for pde in valid:
        frame = pde & 0x000FFFFFFFFFF000
        if pde & 0x80:  # PG_PS: a 2 MiB page, all of it dumped
            assert frame % (2 << 20) == 0
            assert all(frame + i * PAGE in pages for i in range(512))
            continue
        assert frame in pages, f"PDE {pde:#x} points at a page that is not dumped"
        off = pages[frame]
        for pte in struct.unpack_from("<512Q", data, off):
            if pte & 1:
                assert pte & 0x000FFFFFFFFFF000 in pages
                ptes_checked += 1
    assert ptes_checked > 0
    if size >= 16 << 20:
        assert any(p & 0x80 for p in valid)


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("size", [256 << 10, 20 << 20])
def test_arm64_pmap_is_one_l3_page_per_2mib_and_every_valid_entry_is_dumped(version, size):
    data = Minidump(size, 12, arch="arm64", version=version).read(0, size)
    lay, pages = kvm_walk.page_map(data)
    base, n = lay["offsets"]["pmap"], lay["header"]["pmapsize"] // PAGE
    valid = 0
    zero_pages = 0
    for i in range(n):
        ents = struct.unpack_from("<512Q", data, base + i * PAGE)
        zero_pages += not any(ents)
        for e in ents:
            if e & 3 == 3:  # L3_PAGE
                assert e & 0x0000FFFFFFFFF000 in pages
                valid += 1
            else:
                assert e == 0
    assert valid > 0 and zero_pages >= 1  # a hole in the kernel map is a zero page


def test_pages_in_bitmap_order_hold_the_page_tables_the_pmap_names():
    """Reading a PT page through bitmap rank finds PTEs, not data: the order is right."""
    img = Minidump(512 << 10, 5, arch="amd64", version=3)
    data = img.read(0, img.size)
    lay, pages = kvm_walk.page_map(data)
    tables = [p & 0x000FFFFFFFFFF000 for p in _amd64_pdes(data, lay) if p & 1 and not p & 0x80]
    for frame in tables:
        ptes = struct.unpack_from("<512Q", data, pages[frame])
        assert all(p == 0 or p & 0x63 == 0x63 for p in ptes)


def test_dumper_writes_cover_the_image_in_order_with_single_page_table_writes():
    img = Minidump(1 << 20, 2, arch="amd64", version=3)
    writes = list(img.dumper_writes())
    pos = 0
    for off, n in writes:
        assert off == pos and 0 < n <= 64 << 10 and n % PAGE == 0
        pos += n
    assert pos == img.size
    lay = kvm_walk.layout(img.read(0, PAGE))["offsets"]
    pmap = [n for off, n in writes if lay["pmap"] <= off < lay["pages"]]
    assert pmap and set(pmap) == {PAGE}
    assert writes[0] == (0, PAGE)


@pytest.mark.parametrize("model", ["minidump", "legacy"])
def test_same_seed_same_image_and_the_truth_regenerates_it(model):
    extra = dict(arch="arm64", minidump_version=2, msgbuf_wrapped=True) if model == "minidump" \
        else {}
    spec = DumpSpec(size=256 << 10, image=model, compress="zstd", **extra)
    _frames, truth = simulate_frames(spec, seed=4)
    entry = truth.to_json()["dumps"][0]["image"]
    assert entry["model"] == model
    again = image_from(entry["regenerate"])
    assert hashlib.sha256(again.read(0, again.size)).hexdigest() == entry["sha256"]
    assert truth.dumps[0].material.stream.image.read(0, again.size) == again.read(0, again.size)


def test_kdh_names_the_architecture_of_the_minidump():
    from analyzer.wire import parse_kdh
    _frames, truth = simulate_frames(DumpSpec(size=128 << 10, image="minidump", arch="arm64"),
                                     seed=1)
    kdh = parse_kdh(truth.dumps[0].session.kdh_raw[0])
    assert (kdh["architecture"], kdh["architectureversion"]) == ("aarch64", 1)
    assert kdh["dumplength"] == 128 << 10


def test_too_small_or_unknown_minidumps_are_refused():
    with pytest.raises(ValueError, match="too small"):
        Minidump(16 << 10, 0)
    with pytest.raises(ValueError):
        Minidump(64 << 10, 0, arch="riscv")
    with pytest.raises(ValueError, match="legacy"):
        simulate_frames(DumpSpec(size=64 << 10, arch="arm64"))


@settings(max_examples=25, deadline=None)
@given(pages=st.integers(24, 1200), seed=st.integers(0, 2**32),
       arch=st.sampled_from(["amd64", "arm64"]), version=st.sampled_from([2, 3]),
       wrapped=st.booleans())
def test_any_size_and_seed_gives_a_consistent_minidump(pages, seed, arch, version, wrapped):
    size = pages * PAGE
    try:
        img = Minidump(size, seed, arch=arch, version=version, msgbuf_wrapped=wrapped)
    except ValueError as exc:
        assert "too small" in str(exc)
        return
    data = img.read(0, size)
    lay, mapped = kvm_walk.page_map(data)
    h = lay["header"]
    assert lay["offsets"]["pages"] + len(mapped) * PAGE == size == len(data)
    assert len(mapped) == len(kvm_walk.set_bits(data, lay))
    base, n = lay["offsets"]["pmap"], h["pmapsize"] // 8
    for e in struct.unpack_from(f"<{n}Q", data, base):
        if arch == "amd64" and e & 1 and not e & 0x80:
            assert e & 0x000FFFFFFFFFF000 in mapped
        elif arch == "arm64" and e & 3 == 3:
            assert e & 0x0000FFFFFFFFF000 in mapped
