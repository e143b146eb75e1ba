"""Issue 9's inspect, item by item: the stable JSON keys, lost_pages_pa and the msgbuf against
the builders' truth (amd64 v2/v3, arm64 v2/v3, wrapped and unwrapped rings), kgdb's verdict,
the text report, and full ELF dumps."""
from __future__ import annotations

import pytest

from tests.contracts import dump_build as D
from tests.contracts import wire_build as W
from tests.contracts.steps import (ENTRY_KEYS, IP, MINIDUMP_KEYS, encrypted_capture, extract,
                                   inspect, plain_capture, plain_capture_of)


def test_inspect_json_has_the_stable_keys(tmp, run):
    md = D.minidump()
    extract(run, plain_capture(tmp, md), tmp / "o")
    res, entry = inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    assert res.code == 0
    assert ENTRY_KEYS <= set(entry)
    assert MINIDUMP_KEYS <= set(entry["minidump"])
    assert {"text", "missing", "panic", "version_line"} <= set(entry["msgbuf"])
    assert [s["name"] for s in entry["minidump"]["sections"]] == [
        "header", "msgbuf", "dump_avail", "bitmap", "pmap", "pages"]
    for s in entry["minidump"]["sections"]:
        assert {"name", "offset", "length", "missing_bytes"} <= set(s)
        assert (s["offset"], s["length"]) == md.sections[s["name"]]
    assert entry["format"] == "minidump" and entry["arch"] == "amd64"
    assert entry["kgdb"] == "ok" and entry["missing"] == []
    assert entry["minidump"]["pages_total"] == len(md.pages_pa)
    assert entry["minidump"]["length_ok"] is True
    assert entry["kdh"] is not None


CASES = [("amd64", 3, False), ("amd64", 3, True), ("amd64", 2, False), ("amd64", 2, True),
         ("arm64", 3, False), ("arm64", 3, True)]


@pytest.mark.parametrize("arch,version,wrapped", CASES,
                         ids=[f"{a}-v{v}-{'wrapped' if w else 'unwrapped'}" for a, v, w in CASES])
def test_inspect_lost_pages_pa_and_msgbuf_equal_the_truth(tmp, run, arch, version, wrapped):
    md = D.minidump(arch, version, wrapped=wrapped)
    pages = md.sections["pages"][0]
    lose = {(W.VMCORE, 65536 + 3 * 1448), (W.VMCORE, 65536 + 20 * 1448)}
    holes = [(o, o + 1448) for _t, o in lose]
    assert all(a >= pages for a, _b in holes)
    extract(run, plain_capture(tmp, md, lose, arch=arch), tmp / "o")
    res, entry = inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    assert res.code == 3
    mdj = entry["minidump"]
    assert mdj["version"] == version
    assert mdj["lost_pages_pa"] == md.lost_pa(holes)
    assert mdj["pages_lost"] == sum(b - a for a, b in md.lost_pa(holes)) // 4096
    assert entry["kgdb"] == "degraded"
    mb = entry["msgbuf"]
    assert mb["text"] == md.msgbuf_text and mb["missing"] == []
    assert mb["panic"] == "page fault"
    want_version = None if wrapped else \
        "FreeBSD 14.1-RELEASE releng/14.1-n267679-10e31f0946d8 GENERIC amd64"
    assert mb["version_line"] == want_version  # overwritten in a wrapped ring: never guessed


@pytest.mark.parametrize("kernel_layout", [True, False], ids=["with-dump_avail",
                                                             "dumpavailsize-0"])
def test_inspect_arm64_v2_as_the_kernel_wrote_it(tmp, run, kernel_layout):
    """arm64's minidump.h added dumpavailsize (and the dump_avail page) in its version 2;
    version 3 only added the page-size flags. A v2 header that says 0 has no section."""
    md = D.minidump("arm64", 2, kernel_arm64_v2=kernel_layout)
    lose = {(W.VMCORE, 65536 + 3 * 1448)}
    extract(run, plain_capture(tmp, md, lose, arch="arm64"), tmp / "o")
    _res, entry = inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    mdj = entry["minidump"]
    assert [s["name"] for s in mdj["sections"]] == list(md.sections)
    assert mdj["pages_total"] == len(md.pages_pa) and mdj["length_ok"] is True
    assert mdj["lost_pages_pa"] == md.lost_pa([(65536 + 3 * 1448, 65536 + 4 * 1448)])
    assert entry["msgbuf"]["text"] == md.msgbuf_text


def test_inspect_text_leads_with_panic_verdict_and_loss(tmp, run):
    md = D.minidump()
    lose = {(W.VMCORE, 65536 + 3 * 1448)}
    extract(run, plain_capture(tmp, md, lose), tmp / "o")
    res = run("inspect", tmp / "o" / f"vmcore.{IP}.0")
    assert res.code == 3
    head = res.out.splitlines()[:5]
    assert any("panic: page fault" in line for line in head), res.out
    assert any("degraded" in line for line in head), res.out
    assert any("MiB" in line and "pages" in line for line in head), res.out


def test_inspect_msgbuf_loss_is_marked_and_the_rest_is_text(tmp, run):
    md = D.minidump(wrapped=True)
    lose = {(W.VMCORE, 1448 * 4)}  # bytes [5792, 7240) of the file: msgbuf [1696, 3144)
    extract(run, plain_capture(tmp, md, lose), tmp / "o")
    _res, entry = inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    mb = entry["msgbuf"]
    text, lost = mb["text"], mb["missing"]
    assert len(text) == len(md.msgbuf_text) and len(lost) == 1
    a, b = lost[0]
    assert b - a == 1448
    assert text[:a] == md.msgbuf_text[:a] and text[b:] == md.msgbuf_text[b:]
    assert entry["kgdb"] == "degraded"
    assert entry["minidump"]["lost_pages_pa"] == []


@pytest.mark.parametrize("what,offset", [("bitmap", 1448 * 11), ("pmap", 1448 * 14)])
def test_inspect_kgdb_unusable_when_bitmap_or_pmap_lost(tmp, run, what, offset):
    md = D.minidump()
    a, b = md.sections[what]
    assert offset < a + b and offset + 1448 > a
    extract(run, plain_capture(tmp, md, {(W.VMCORE, offset)}), tmp / "o")
    _res, entry = inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    assert entry["kgdb"] == "unusable"


def test_inspect_takes_the_info_file_of_a_dump(tmp, run):
    md = D.minidump()
    lose = {(W.VMCORE, 65536 + 3 * 1448)}
    extract(run, plain_capture(tmp, md, lose), tmp / "o")
    _res, entry = inspect(run, tmp, tmp / "o" / f"info.{IP}.0")
    assert entry["format"] == "minidump"
    assert entry["missing"] == [[65536 + 3 * 1448, 65536 + 4 * 1448]]
    assert entry["kdh"] is not None


def test_inspect_names_an_encrypted_dump(tmp, run, rsa):
    cap, _ = encrypted_capture(tmp, rsa, D.minidump().image, D.AES)
    extract(run, cap, tmp / "o")
    _res, entry = inspect(run, tmp, tmp / "o" / f"vmcore_encrypted.{IP}.0")
    assert entry["format"] == "encrypted"


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_inspect_names_a_compressed_dump(tmp, run, kind):
    md = D.minidump()
    stream = D.kernel_gzip(md.image) if kind == "gzip" else D.kernel_zstd(md.image)
    path = tmp / (f"vmcore.{IP}.0" + (".gz" if kind == "gzip" else ".zst"))
    path.write_bytes(stream)
    _res, entry = inspect(run, tmp, path)
    assert entry["format"] == kind
    assert entry["minidump"]["pages_total"] == len(md.pages_pa)


def _elf_core(segments):
    """A little-endian ELF64 core: header, PT_LOAD program headers, the segments' data."""
    import struct
    eh = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 4, 62, 1, 0,
                     64, 0, 0, 64, 56, len(segments), 0, 0, 0)
    ph = b"".join(struct.pack("<IIQQQQQQ", 1, 6, off, 0xFFFFF80000000000 + pa, pa, size,
                              size, 4096) for off, pa, size in segments)
    end = max(off + size for off, _pa, size in segments)
    return (eh + ph).ljust(4096, b"\0") + bytes(range(256)) * ((end - 4096) // 256)


def test_inspect_full_elf_dump_maps_missing_bytes_to_pt_load_and_physical(tmp, run):
    core = _elf_core([(4096, 0x100000, 8192), (12288, 0x800000, 8192)])
    extract(run, plain_capture_of(tmp, core, {(W.VMCORE, 1448 * 9)}), tmp / "o")
    _res, entry = inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    assert entry["format"] == "elf" and entry["kgdb"] == "degraded"
    a = 1448 * 9  # [13032, 14480): segment 1 from its byte 744
    text = " ".join(entry["problems"])
    assert "PT_LOAD 1" in text and f"{0x800000 + a - 12288:#x}" in text, text


def test_inspect_full_elf_dump_without_program_headers_is_unusable(tmp, run):
    core = _elf_core([(4096, 0x100000, 8192)])
    extract(run, plain_capture_of(tmp, core, {(W.VMCORE, 0)}), tmp / "o")
    _res, entry = inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    assert entry["kgdb"] == "unusable"
