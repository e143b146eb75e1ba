"""Issue 9, item by item: decrypt, decompress, inspect, and extract's ready-to-debug dumps.

Inputs come from ``wire_build`` and ``dump_build`` (the spec's layouts, real RSA, the kernel's
cipher and stream conventions), never from the project's simulator.
"""
from __future__ import annotations

import json
import os

import pytest

from tests.contracts import dump_build as D
from tests.contracts import wire_build as W

IP = "192.0.2.7"


@pytest.fixture(scope="module")
def rsa():
    return D.rsa_key()


@pytest.fixture(scope="module")
def other_rsa():
    return D.rsa_key()


def _pem(tmp, key, name="op.pem"):
    p = tmp / name
    p.write_bytes(D.pem(key))
    return p


def _encrypted_capture(tmp, rsa, image, cipher, *, oaep=True, compression=0, lose=(),
                       length=None):
    """A capture of one encrypted dump; returns (capture path, ciphertext, dumplength)."""
    dk, iv = D.new_dump_key()
    enc = D.encrypt(cipher, dk, iv, image)
    n = len(image) if length is None else length
    s = W.Session(dump=enc, kdh=W.kdh(n, keysize=4096, compression=compression),
                  key=D.key_file(rsa, cipher, dk, iv, oaep=oaep), lose=set(lose))
    cap = tmp / "enc.pcap"
    W.write_capture(cap, [s])
    return cap, enc


def _extract(run, cap, out, *extra):
    res = run("extract", cap, "-o", out, "--json", out.parent / "report.json", *extra)
    assert res.code in (0, 3), res
    return json.loads((out.parent / "report.json").read_text())


def _missing_map(path) -> list:
    return json.loads(open(str(path) + ".missing").read())["missing"]


# ---- decrypt -------------------------------------------------------------------------

def test_decrypt_aes256cbc_oaep_writes_vmcore_name_byte_identical(tmp, run, rsa):
    md = D.minidump()
    cap, _ = _encrypted_capture(tmp, rsa, md.image, D.AES)
    _extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0", "--private-key", _pem(tmp, rsa))
    assert res.code == 0, res
    assert (tmp / "o" / f"vmcore.{IP}.0").read_bytes() == md.image
    assert _missing_map(tmp / "o" / f"vmcore.{IP}.0") == []


def test_decrypt_pkcs1v15_wrapped_key_of_12x(tmp, run, rsa):
    md = D.minidump()
    cap, _ = _encrypted_capture(tmp, rsa, md.image, D.AES, oaep=False)
    _extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0", "--private-key", _pem(tmp, rsa))
    assert res.code == 0, res
    assert (tmp / "o" / f"vmcore.{IP}.0").read_bytes() == md.image


def test_decrypt_chacha20_compressed_keeps_gz_suffix(tmp, run, rsa):
    md = D.minidump()
    stream = D.kernel_gzip(md.image)
    cap, _ = _encrypted_capture(tmp, rsa, D.padded(stream), D.CHACHA, compression=1,
                                length=len(stream))
    _extract(run, cap, tmp / "o")
    src = tmp / "o" / f"vmcore_encrypted.{IP}.0.gz"
    assert src.exists(), os.listdir(tmp / "o")
    res = run("decrypt", src, "--private-key", _pem(tmp, rsa))
    assert res.code == 0, res
    assert (tmp / "o" / f"vmcore.{IP}.0.gz").read_bytes() == stream


def test_decrypt_key_option_and_output_option(tmp, run, rsa):
    md = D.minidump()
    cap, _ = _encrypted_capture(tmp, rsa, md.image, D.CHACHA)
    _extract(run, cap, tmp / "o")
    (tmp / "elsewhere").mkdir()
    moved = tmp / "elsewhere" / "core.enc"
    os.rename(tmp / "o" / f"vmcore_encrypted.{IP}.0", moved)
    res = run("decrypt", moved, "--private-key", _pem(tmp, rsa),
              "--key", tmp / "o" / f"key.{IP}.0", "-o", tmp / "plain.core")
    assert res.code == 0, res
    assert (tmp / "plain.core").read_bytes() == md.image


def test_decrypt_chacha20_every_captured_byte_decrypts_and_holes_stay_holes(tmp, run, rsa):
    md = D.minidump()
    hole = (65536 + 3 * 1448, 65536 + 4 * 1448)
    cap, _ = _encrypted_capture(tmp, rsa, md.image, D.CHACHA, lose={(W.VMCORE, hole[0])})
    _extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0", "--private-key", _pem(tmp, rsa))
    assert res.code == 0, res
    out = (tmp / "o" / f"vmcore.{IP}.0").read_bytes()
    assert _missing_map(tmp / "o" / f"vmcore.{IP}.0") == [list(hole)]
    assert out[:hole[0]] == md.image[:hole[0]] and out[hole[1]:] == md.image[hole[1]:]


def test_decrypt_aes_cbc_loses_the_block_after_a_hole_and_nothing_else(tmp, run, rsa):
    md = D.minidump()
    hole = (65536 + 3 * 1448, 65536 + 4 * 1448)  # not block-aligned at its start
    cap, _ = _encrypted_capture(tmp, rsa, md.image, D.AES, lose={(W.VMCORE, hole[0])})
    _extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0", "--private-key", _pem(tmp, rsa))
    assert res.code == 0, res
    out = (tmp / "o" / f"vmcore.{IP}.0").read_bytes()
    lost = _missing_map(tmp / "o" / f"vmcore.{IP}.0")
    # The block holding the hole's first byte, through the block right after the hole.
    want = [hole[0] - hole[0] % 16, -(-hole[1] // 16) * 16 + 16]
    assert lost == [want]
    assert out[:want[0]] == md.image[:want[0]] and out[want[1]:] == md.image[want[1]:]
    assert out[want[0]:want[1]] == bytes(want[1] - want[0])  # a hole reads as zeros


def test_decrypt_never_overwrites(tmp, run, rsa):
    md = D.minidump()
    cap, _ = _encrypted_capture(tmp, rsa, md.image, D.CHACHA)
    _extract(run, cap, tmp / "o")
    target = tmp / "o" / f"vmcore.{IP}.0"
    target.write_bytes(b"keep me")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0", "--private-key", _pem(tmp, rsa))
    assert res.code != 0 and res.err.startswith("error: ") and len(res.err.splitlines()) == 1
    assert target.read_bytes() == b"keep me"


def _refused(res, tmp, name):
    assert res.code == 2, res
    assert len(res.err.strip().splitlines()) == 1 and res.err.startswith("error: ")
    assert not (tmp / "o" / name).exists()
    assert not (tmp / "o" / (name + ".missing")).exists()


def test_decrypt_wrong_private_key_exit_2_nothing_written(tmp, run, rsa, other_rsa):
    cap, _ = _encrypted_capture(tmp, rsa, D.minidump().image, D.AES)
    _extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0",
              "--private-key", _pem(tmp, other_rsa, "wrong.pem"))
    _refused(res, tmp, f"vmcore.{IP}.0")


def test_decrypt_key_file_of_another_dump_exit_2_nothing_written(tmp, run, rsa):
    cap, _ = _encrypted_capture(tmp, rsa, D.minidump().image, D.CHACHA)
    _extract(run, cap, tmp / "o")
    dk, iv = D.new_dump_key()  # same operator key, another dump's dump key
    other = tmp / "other.key"
    other.write_bytes(D.key_file(rsa, D.CHACHA, dk, iv))
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0", "--private-key",
              _pem(tmp, rsa), "--key", other)
    _refused(res, tmp, f"vmcore.{IP}.0")


def test_decrypt_truncated_key_exit_2_nothing_written(tmp, run, rsa):
    cap, _ = _encrypted_capture(tmp, rsa, D.minidump().image, D.AES)
    _extract(run, cap, tmp / "o")
    short = tmp / "short.key"
    short.write_bytes((tmp / "o" / f"key.{IP}.0").read_bytes()[:37 + 100])
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0", "--private-key",
              _pem(tmp, rsa), "--key", short)
    _refused(res, tmp, f"vmcore.{IP}.0")


def test_decrypt_errors_never_show_the_private_or_the_dump_key(tmp, run, rsa, other_rsa):
    cap, _ = _encrypted_capture(tmp, rsa, D.minidump().image, D.AES)
    _extract(run, cap, tmp / "o")
    pem_text = D.pem(other_rsa).decode()
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0",
              "--private-key", _pem(tmp, other_rsa, "wrong.pem"))
    body = "".join(pem_text.splitlines()[1:-1])
    for line in pem_text.splitlines()[1:-1]:
        assert line not in res.err + res.out
    assert body[:40] not in res.err + res.out


# ---- decompress ----------------------------------------------------------------------

def test_decompress_gzip_with_the_kernels_minimal_header(tmp, run):
    md = D.minidump()
    stream = D.kernel_gzip(md.image)
    s = W.Session(dump=D.padded(stream), kdh=W.kdh(len(stream), compression=1))
    W.write_capture(tmp / "gz.pcap", [s])
    _extract(run, tmp / "gz.pcap", tmp / "o")
    src = tmp / "o" / f"vmcore.{IP}.0.gz"
    assert src.read_bytes() == stream  # netdumpd's truncation to dumplength
    res = run("decompress", src)
    assert res.code == 0, res
    assert (tmp / "o" / f"vmcore.{IP}.0").read_bytes() == md.image


@pytest.mark.parametrize("stale", [False, True], ids=["zero-padding", "stale-padding"])
def test_decompress_ignores_the_padding_after_the_stream(tmp, run, stale):
    md = D.minidump()
    (tmp / f"vmcore.{IP}.3.gz").write_bytes(D.padded(D.kernel_gzip(md.image), stale))
    res = run("decompress", tmp / f"vmcore.{IP}.3.gz")
    assert res.code == 0, res
    assert (tmp / f"vmcore.{IP}.3").read_bytes() == md.image


def test_decompress_zstd(tmp, run):
    md = D.minidump()
    stream = D.kernel_zstd(md.image)
    s = W.Session(dump=D.padded(stream), kdh=W.kdh(len(stream), compression=2))
    W.write_capture(tmp / "zst.pcap", [s])
    _extract(run, tmp / "zst.pcap", tmp / "o")
    res = run("decompress", tmp / "o" / f"vmcore.{IP}.0.zst", "-o", tmp / "plain")
    assert res.code == 0, res
    assert (tmp / "plain").read_bytes() == md.image


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_decompress_up_to_the_first_hole_reports_how_far(tmp, run, kind):
    md = D.minidump(npages=120)
    stream = D.kernel_gzip(md.image, 1) if kind == "gzip" else D.kernel_zstd(md.image)
    hole0 = 20 * 1448
    assert len(stream) > hole0 + 2 * 1448
    s = W.Session(dump=D.padded(stream), kdh=W.kdh(len(stream), compression=1 if kind ==
                                                   "gzip" else 2), lose={(W.VMCORE, hole0)})
    W.write_capture(tmp / "c.pcap", [s])
    _extract(run, tmp / "c.pcap", tmp / "o")
    suffix = ".gz" if kind == "gzip" else ".zst"
    res = run("decompress", tmp / "o" / f"vmcore.{IP}.0{suffix}")
    assert res.code == 0, res
    out = (tmp / "o" / f"vmcore.{IP}.0").read_bytes()
    lost = _missing_map(tmp / "o" / f"vmcore.{IP}.0")
    first_lost = lost[0][0] if lost else len(out)
    assert first_lost > 0
    assert out[:first_lost] == md.image[:first_lost]
    # It says how far it got: the decompressed bytes and the compressed offset.
    assert str(first_lost) in res.out and str(hole0) in res.out, res


# ---- inspect -------------------------------------------------------------------------

ENTRY_KEYS = {"file", "format", "arch", "length", "missing", "minidump", "msgbuf", "kdh",
              "kgdb", "problems"}
MINIDUMP_KEYS = {"version", "msgbufsize", "bitmapsize", "pmapsize", "dumpavailsize",
                 "kernbase", "dmapbase", "dmapend", "sections", "pages_total", "pages_lost",
                 "lost_pages_pa", "length_ok"}


def _plain_capture(tmp, md, lose=(), kdh=True, arch="amd64"):
    k = W.kdh(len(md.image), arch="amd64" if arch == "amd64" else "aarch64",
              archver=2 if arch == "amd64" else 1) if kdh else None
    s = W.Session(dump=md.image, kdh=k, lose=set(lose))
    W.write_capture(tmp / "p.pcap", [s])
    return tmp / "p.pcap"


def _inspect(run, tmp, path):
    res = run("inspect", path, "--json", tmp / "inspect.json")
    assert res.code in (0, 3), res
    report = json.loads((tmp / "inspect.json").read_text())
    return res, report["dumps"][0]


def test_inspect_json_has_the_stable_keys(tmp, run):
    md = D.minidump()
    _extract(run, _plain_capture(tmp, md), tmp / "o")
    res, entry = _inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
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
    _extract(run, _plain_capture(tmp, md, lose, arch=arch), tmp / "o")
    res, entry = _inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
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
    _extract(run, _plain_capture(tmp, md, lose, arch="arm64"), tmp / "o")
    _res, entry = _inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    mdj = entry["minidump"]
    assert [s["name"] for s in mdj["sections"]] == list(md.sections)
    assert mdj["pages_total"] == len(md.pages_pa) and mdj["length_ok"] is True
    assert mdj["lost_pages_pa"] == md.lost_pa([(65536 + 3 * 1448, 65536 + 4 * 1448)])
    assert entry["msgbuf"]["text"] == md.msgbuf_text


def test_inspect_text_leads_with_panic_verdict_and_loss(tmp, run):
    md = D.minidump()
    lose = {(W.VMCORE, 65536 + 3 * 1448)}
    _extract(run, _plain_capture(tmp, md, lose), tmp / "o")
    res = run("inspect", tmp / "o" / f"vmcore.{IP}.0")
    assert res.code == 3
    head = res.out.splitlines()[:5]
    assert any("panic: page fault" in line for line in head), res.out
    assert any("degraded" in line for line in head), res.out
    assert any("MiB" in line and "pages" in line for line in head), res.out


def test_inspect_msgbuf_loss_is_marked_and_the_rest_is_text(tmp, run):
    md = D.minidump(wrapped=True)
    lose = {(W.VMCORE, 1448 * 4)}  # bytes [5792, 7240) of the file: msgbuf [1696, 3144)
    _extract(run, _plain_capture(tmp, md, lose), tmp / "o")
    _res, entry = _inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
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
    _extract(run, _plain_capture(tmp, md, {(W.VMCORE, offset)}), tmp / "o")
    _res, entry = _inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    assert entry["kgdb"] == "unusable"


def test_inspect_takes_the_info_file_of_a_dump(tmp, run):
    md = D.minidump()
    lose = {(W.VMCORE, 65536 + 3 * 1448)}
    _extract(run, _plain_capture(tmp, md, lose), tmp / "o")
    _res, entry = _inspect(run, tmp, tmp / "o" / f"info.{IP}.0")
    assert entry["format"] == "minidump"
    assert entry["missing"] == [[65536 + 3 * 1448, 65536 + 4 * 1448]]
    assert entry["kdh"] is not None


def test_inspect_names_an_encrypted_dump(tmp, run, rsa):
    cap, _ = _encrypted_capture(tmp, rsa, D.minidump().image, D.AES)
    _extract(run, cap, tmp / "o")
    _res, entry = _inspect(run, tmp, tmp / "o" / f"vmcore_encrypted.{IP}.0")
    assert entry["format"] == "encrypted"


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_inspect_names_a_compressed_dump(tmp, run, kind):
    md = D.minidump()
    stream = D.kernel_gzip(md.image) if kind == "gzip" else D.kernel_zstd(md.image)
    path = tmp / (f"vmcore.{IP}.0" + (".gz" if kind == "gzip" else ".zst"))
    path.write_bytes(stream)
    _res, entry = _inspect(run, tmp, path)
    assert entry["format"] == kind
    assert entry["minidump"]["pages_total"] == len(md.pages_pa)


# ---- extract and summary --private-key / --decompress --------------------------------

def test_extract_private_key_writes_vmcore_beside_untouched_netdumpd_files(tmp, run, rsa):
    md = D.minidump()
    stream = D.kernel_zstd(md.image)
    cap, _ = _encrypted_capture(tmp, rsa, D.padded(stream), D.CHACHA, compression=2,
                                length=len(stream))
    _extract(run, cap, tmp / "plain-run")
    report = _extract(run, cap, tmp / "o", "--private-key", _pem(tmp, rsa), "--decompress")
    out = tmp / "o"
    assert (out / f"vmcore.{IP}.0").read_bytes() == md.image
    for name in (f"vmcore_encrypted.{IP}.0.zst", f"key.{IP}.0", f"info.{IP}.0"):
        assert (out / name).read_bytes() == (tmp / "plain-run" / name).read_bytes()
    entry = report["sessions"][0]["inspect"]
    assert entry["format"] == "minidump" and entry["kgdb"] == "ok"


def test_extract_report_inspects_every_plain_dump(tmp, run):
    md = D.minidump()
    report = _extract(run, _plain_capture(tmp, md, {(W.VMCORE, 65536 + 3 * 1448)}), tmp / "o")
    entry = report["sessions"][0]["inspect"]
    assert ENTRY_KEYS <= set(entry)
    assert entry["minidump"]["lost_pages_pa"] == md.lost_pa([(65536 + 3 * 1448,
                                                               65536 + 4 * 1448)])
    assert entry["msgbuf"]["panic"] == "page fault"


def test_extract_without_kdh_shows_panic_and_version_from_the_msgbuf(tmp, run):
    md = D.minidump()
    cap = _plain_capture(tmp, md, kdh=False)
    res = run("extract", cap, "-o", tmp / "o")
    assert res.code == 3, res
    assert "page fault" in res.out + res.err
    assert "FreeBSD 14.1-RELEASE" in res.out + res.err


def test_summary_private_key_lists_no_files_and_inspects(tmp, run, rsa):
    md = D.minidump()
    cap, _ = _encrypted_capture(tmp, rsa, md.image, D.AES)
    res = run("summary", cap, "--private-key", _pem(tmp, rsa), "--json", "-")
    assert res.code == 0, res
    session = res.json()["sessions"][0]
    assert session["files"] == []
    assert session["inspect"]["format"] == "minidump"
    assert session["inspect"]["kgdb"] == "ok"


def test_decrypt_then_decompress_a_holed_chacha20_gzip_dump(tmp, run, rsa):
    md = D.minidump(npages=120)
    stream = D.kernel_gzip(md.image)
    hole = (20 * 1448, 21 * 1448)
    cap, _ = _encrypted_capture(tmp, rsa, D.padded(stream), D.CHACHA, compression=1,
                                length=len(stream), lose={(W.VMCORE, hole[0])})
    _extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0.gz", "--private-key",
              _pem(tmp, rsa))
    assert res.code == 0, res
    gz = tmp / "o" / f"vmcore.{IP}.0.gz"
    assert _missing_map(gz) == [list(hole)]
    assert gz.read_bytes()[:hole[0]] == stream[:hole[0]]
    res = run("decompress", gz)
    assert res.code == 0, res
    out = (tmp / "o" / f"vmcore.{IP}.0").read_bytes()
    lost = _missing_map(tmp / "o" / f"vmcore.{IP}.0")
    assert lost and out[:lost[0][0]] == md.image[:lost[0][0]]
    assert str(hole[0]) in res.out  # where decoding stopped, in compressed offsets


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
    _extract(run, _plain_capture_of(tmp, core, {(W.VMCORE, 1448 * 9)}), tmp / "o")
    _res, entry = _inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    assert entry["format"] == "elf" and entry["kgdb"] == "degraded"
    a = 1448 * 9  # [13032, 14480): segment 1 from its byte 744
    text = " ".join(entry["problems"])
    assert "PT_LOAD 1" in text and f"{0x800000 + a - 12288:#x}" in text, text


def test_inspect_full_elf_dump_without_program_headers_is_unusable(tmp, run):
    core = _elf_core([(4096, 0x100000, 8192)])
    _extract(run, _plain_capture_of(tmp, core, {(W.VMCORE, 0)}), tmp / "o")
    _res, entry = _inspect(run, tmp, tmp / "o" / f"vmcore.{IP}.0")
    assert entry["kgdb"] == "unusable"


def _plain_capture_of(tmp, image, lose):
    s = W.Session(dump=image, kdh=W.kdh(len(image)), lose=set(lose))
    W.write_capture(tmp / "f.pcap", [s])
    return tmp / "f.pcap"
