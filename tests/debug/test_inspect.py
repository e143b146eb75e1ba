"""inspect: the report's keys exactly as the issue states them, the answer first in the
text, and every kind of DUMP argument (plain, compressed, encrypted, ELF, info file)."""
from __future__ import annotations

import json
import struct

import pytest
import zstandard

from analyzer.debug.inspect import inspect_path
from analyzer.debug.elf import ELF_LAYOUTS
from analyzer.wire import MINIDUMP_HEADERS
from tests.debug.conftest import run_cli
from tests.support.schema_check import errors
from tests.support.dump_builders import (PAGE, build_minidump, console_ring, kernel_gzip,
                                         lost_pa, write_dump_dir)

ENTRY_KEYS = {"file", "format", "arch", "length", "missing", "minidump", "msgbuf", "kdh",
              "kgdb", "problems"}
MINIDUMP_KEYS = {"version", "msgbufsize", "bitmapsize", "pmapsize", "dumpavailsize",
                 "kernbase", "dmapbase", "dmapend", "sections", "pages_total", "pages_lost",
                 "lost_pages_pa", "length_ok"}
SECTION_KEYS = {"name", "offset", "length", "missing_bytes"}
MSGBUF_KEYS = {"text", "missing", "panic", "version_line"}


def _dump(tmp_path, missing=(), arch="amd64", wrapped=False):
    ring, text = console_ring(4096, wrapped=wrapped, filler_lines=80 if wrapped else 0)
    md = build_minidump(arch, 3, ring, bits=list(range(0, 120, 2)))
    paths = write_dump_dir(tmp_path, "10.0.0.2", 0, md.image, missing=missing)
    return md, text, paths


def test_the_json_report_has_exactly_the_contract_keys(tmp_path):
    md, text, paths = _dump(tmp_path, missing=[(0x9000, 0x9100)])
    proc = run_cli("inspect", paths["vmcore"], "--json", tmp_path / "r.json")
    assert proc.returncode == 3, proc.stderr  # something was lost
    report = json.loads((tmp_path / "r.json").read_text())
    assert errors(report, "inspect") == []
    assert set(report) == {"dumps"}
    entry, = report["dumps"]
    assert set(entry) == ENTRY_KEYS and set(entry["minidump"]) == MINIDUMP_KEYS
    assert set(entry["msgbuf"]) == MSGBUF_KEYS
    assert all(set(s) == SECTION_KEYS for s in entry["minidump"]["sections"])
    assert [s["name"] for s in entry["minidump"]["sections"]] == \
        ["header", "msgbuf", "dump_avail", "bitmap", "pmap", "pages"]
    assert entry["format"] == "minidump" and entry["arch"] == "amd64"
    assert entry["missing"] == [[0x9000, 0x9100]] and entry["kgdb"] == "degraded"
    assert entry["minidump"]["lost_pages_pa"] == lost_pa(md, [(0x9000, 0x9100)])
    assert entry["msgbuf"]["text"] == text and entry["msgbuf"]["panic"] == "page fault"


def test_the_text_leads_with_panic_verdict_and_loss(tmp_path):
    _md, _text, paths = _dump(tmp_path, missing=[(0x9000, 0x9100)])
    lines = run_cli("inspect", paths["vmcore"]).stdout.splitlines()
    assert lines[1] == "  panic: page fault"
    assert lines[2] == "  kgdb: degraded"
    # 256 bytes lost: a loss that small still reads as one, not as 0.00 MiB
    assert lines[3].startswith("  lost: 0.00024 MiB, 1 of 60 pages (physical [0x")


def test_a_complete_dump_is_ok_and_exits_0(tmp_path):
    _md, _text, paths = _dump(tmp_path)
    proc = run_cli("inspect", paths["info"], "--json", "-")
    assert proc.returncode == 0, proc.stderr
    entry, = json.loads(proc.stdout)["dumps"]
    assert entry["kgdb"] == "ok" and entry["missing"] == [] and entry["file"] == paths["vmcore"]


def test_an_info_file_names_its_dump_and_gives_the_kdh(tmp_path):
    _md, _text, paths = _dump(tmp_path)
    with open(paths["info"], "ab") as f:
        f.write(b"  Architecture: amd64\n  Architecture Version: 2\n"
                b"  Dump Length: 999B (0 MB)\n  Compression: none\n"
                b"  Panic String: page fault\n  Header Parity Check: Pass\n")
    entry = inspect_path(paths["info"])
    assert entry["file"] == paths["vmcore"]
    assert entry["kdh"]["architecture"] == "amd64" and entry["kdh"]["parity_ok"] is True
    assert any("KDH dumplength 999" in p for p in entry["problems"])
    assert not entry["minidump"]["length_ok"]


@pytest.mark.parametrize("suffix,kind", [(".gz", "gzip"), (".zst", "zstd")])
def test_a_compressed_dump_is_inspected_through_its_stream(tmp_path, suffix, kind):
    ring, text = console_ring(4096, wrapped=False)
    md = build_minidump("arm64", 3, ring, bits=list(range(40)))
    stream = kernel_gzip(md.image)[0] if suffix == ".gz" else \
        zstandard.ZstdCompressor().compress(md.image)
    paths = write_dump_dir(tmp_path, "10.0.0.2", 0, stream, suffix=suffix)
    entry = inspect_path(paths["vmcore"])
    assert entry["format"] == kind
    assert entry["arch"] == "arm64" and entry["kgdb"] == "ok"
    assert entry["msgbuf"]["text"] == text


def test_an_encrypted_dump_is_named_and_not_read(tmp_path):
    paths = write_dump_dir(tmp_path, "10.0.0.2", 0, bytes(range(256)) * 64,
                           kind="vmcore_encrypted", key=bytes(4096))
    entry = inspect_path(paths["vmcore"])
    assert entry["format"] == "encrypted" and entry["kgdb"] == "unusable"
    assert entry["minidump"] is None and entry["msgbuf"] is None


def _elf(loads):
    ehdr_t, phdr_t = ELF_LAYOUTS[1][2]
    phoff = ehdr_t.size
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    head = ehdr_t.build(ident=ident, type=4, machine=62, version=1, phoff=phoff,
                        ehsize=ehdr_t.size, phentsize=phdr_t.size, phnum=len(loads))
    table = b"".join(phdr_t.build(type=1, offset=off, paddr=pa, filesz=size, memsz=size)
                     for off, pa, size in loads)
    end = max(off + size for off, _pa, size in loads)
    return (head + table).ljust(end, b"\xaa")


def test_a_full_dump_maps_its_missing_bytes_to_pt_load_and_physical_addresses(tmp_path):
    image = _elf([(PAGE, 0x100000, 4 * PAGE), (5 * PAGE, 0x800000, 2 * PAGE)])
    paths = write_dump_dir(tmp_path, "10.0.0.2", 0, image,
                           missing=[(PAGE + 16, PAGE + 32), (6 * PAGE, 7 * PAGE)])
    entry = inspect_path(paths["vmcore"])
    assert entry["format"] == "elf" and entry["arch"] == "amd64"
    assert entry["kgdb"] == "degraded"
    assert "PT_LOAD 0 physical [0x100010, 0x100020)" in entry["problems"][0]
    assert "PT_LOAD 1 physical [0x801000, 0x802000)" in entry["problems"][1]


def test_a_full_dump_without_its_program_headers_is_unusable(tmp_path):
    image = _elf([(PAGE, 0x100000, 4 * PAGE)])
    paths = write_dump_dir(tmp_path, "10.0.0.2", 0, image, missing=[(64, 120)])
    assert inspect_path(paths["vmcore"])["kgdb"] == "unusable"


def test_another_architecture_gets_its_header_only(tmp_path):
    page = b"minidump FreeBSD/i386".ljust(24, b"\0") + struct.pack("<I", 2)
    paths = write_dump_dir(tmp_path, "10.0.0.2", 0, page.ljust(3 * PAGE, b"\0"))
    entry = inspect_path(paths["vmcore"])
    assert entry["format"] == "minidump" and entry["arch"] == "i386"
    assert entry["minidump"] is None
    assert any("sections not interpreted" in p for p in entry["problems"])


def test_a_file_that_is_no_dump_is_unknown(tmp_path):
    paths = write_dump_dir(tmp_path, "10.0.0.2", 0, b"hello" * 1000)
    entry = inspect_path(paths["vmcore"])
    assert entry["format"] == "unknown" and entry["kgdb"] == "unusable"


def test_an_arm64_dump_with_16k_pages_is_not_called_unusable_for_being_uninterpreted(tmp_path):
    md = build_minidump("arm64", 3, b"", bits=[0, 1])
    head = MINIDUMP_HEADERS["arm64"]
    fields = head.parse(md.image[:head.size])
    image = head.build(**{**fields._asdict(), "flags": 1}) + md.image[head.size:]  # 16 KiB
    paths = write_dump_dir(tmp_path, "10.0.0.2", 0, image)
    entry = inspect_path(paths["vmcore"])
    assert any("16 KiB pages" in p for p in entry["problems"])
    assert entry["kgdb"] == "ok"  # nothing is missing; the layout is merely not interpreted
    holed = write_dump_dir(tmp_path, "10.0.0.2", 1, image, missing=[(PAGE, 2 * PAGE)])
    assert inspect_path(holed["vmcore"])["kgdb"] == "degraded"
