"""Issue 9, item by item: decrypt, decompress, and extract's ready-to-debug dumps.

Inputs come from ``wire_build`` and ``dump_build`` (the spec's layouts, real RSA, the kernel's
cipher and stream conventions), never from the project's simulator.
"""
from __future__ import annotations

import os

import pytest

from tests.contracts import dump_build as D
from tests.contracts import wire_build as W
from tests.contracts.steps import (ENTRY_KEYS, IP, encrypted_capture, extract,
                                   missing_map, pem_file, plain_capture)


# ---- decrypt -------------------------------------------------------------------------

def test_decrypt_aes256cbc_oaep_writes_vmcore_name_byte_identical(tmp, run, rsa):
    md = D.minidump()
    cap, _ = encrypted_capture(tmp, rsa, md.image, D.AES)
    extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0",
              "--private-key", pem_file(tmp, rsa))
    assert res.code == 0, res
    assert (tmp / "o" / f"vmcore.{IP}.0").read_bytes() == md.image
    assert missing_map(tmp / "o" / f"vmcore.{IP}.0") == []


def test_decrypt_pkcs1v15_wrapped_key_of_12x(tmp, run, rsa):
    md = D.minidump()
    cap, _ = encrypted_capture(tmp, rsa, md.image, D.AES, oaep=False)
    extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0",
              "--private-key", pem_file(tmp, rsa))
    assert res.code == 0, res
    assert (tmp / "o" / f"vmcore.{IP}.0").read_bytes() == md.image


def test_decrypt_chacha20_compressed_keeps_gz_suffix(tmp, run, rsa):
    md = D.minidump()
    stream = D.kernel_gzip(md.image)
    cap, _ = encrypted_capture(tmp, rsa, D.padded(stream), D.CHACHA, compression=1,
                                length=len(stream))
    extract(run, cap, tmp / "o")
    src = tmp / "o" / f"vmcore_encrypted.{IP}.0.gz"
    assert src.exists(), os.listdir(tmp / "o")
    res = run("decrypt", src, "--private-key", pem_file(tmp, rsa))
    assert res.code == 0, res
    assert (tmp / "o" / f"vmcore.{IP}.0.gz").read_bytes() == stream


def test_decrypt_key_option_and_output_option(tmp, run, rsa):
    md = D.minidump()
    cap, _ = encrypted_capture(tmp, rsa, md.image, D.CHACHA)
    extract(run, cap, tmp / "o")
    (tmp / "elsewhere").mkdir()
    moved = tmp / "elsewhere" / "core.enc"
    os.rename(tmp / "o" / f"vmcore_encrypted.{IP}.0", moved)
    res = run("decrypt", moved, "--private-key", pem_file(tmp, rsa),
              "--key", tmp / "o" / f"key.{IP}.0", "-o", tmp / "plain.core")
    assert res.code == 0, res
    assert (tmp / "plain.core").read_bytes() == md.image


def test_decrypt_chacha20_every_captured_byte_decrypts_and_holes_stay_holes(tmp, run, rsa):
    md = D.minidump()
    hole = (65536 + 3 * 1448, 65536 + 4 * 1448)
    cap, _ = encrypted_capture(tmp, rsa, md.image, D.CHACHA, lose={(W.VMCORE, hole[0])})
    extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0",
              "--private-key", pem_file(tmp, rsa))
    assert res.code == 0, res
    out = (tmp / "o" / f"vmcore.{IP}.0").read_bytes()
    assert missing_map(tmp / "o" / f"vmcore.{IP}.0") == [list(hole)]
    assert out[:hole[0]] == md.image[:hole[0]] and out[hole[1]:] == md.image[hole[1]:]


def test_decrypt_aes_cbc_loses_the_block_after_a_hole_and_nothing_else(tmp, run, rsa):
    md = D.minidump()
    hole = (65536 + 3 * 1448, 65536 + 4 * 1448)  # not block-aligned at its start
    cap, _ = encrypted_capture(tmp, rsa, md.image, D.AES, lose={(W.VMCORE, hole[0])})
    extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0",
              "--private-key", pem_file(tmp, rsa))
    assert res.code == 0, res
    out = (tmp / "o" / f"vmcore.{IP}.0").read_bytes()
    lost = missing_map(tmp / "o" / f"vmcore.{IP}.0")
    # The block holding the hole's first byte, through the block right after the hole.
    want = [hole[0] - hole[0] % 16, -(-hole[1] // 16) * 16 + 16]
    assert lost == [want]
    assert out[:want[0]] == md.image[:want[0]] and out[want[1]:] == md.image[want[1]:]
    assert out[want[0]:want[1]] == bytes(want[1] - want[0])  # a hole reads as zeros


def test_decrypt_never_overwrites(tmp, run, rsa):
    md = D.minidump()
    cap, _ = encrypted_capture(tmp, rsa, md.image, D.CHACHA)
    extract(run, cap, tmp / "o")
    target = tmp / "o" / f"vmcore.{IP}.0"
    target.write_bytes(b"keep me")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0",
              "--private-key", pem_file(tmp, rsa))
    assert res.code != 0 and res.err.startswith("error: ") and len(res.err.splitlines()) == 1
    assert target.read_bytes() == b"keep me"


def _refused(res, tmp, name):
    assert res.code == 2, res
    assert len(res.err.strip().splitlines()) == 1 and res.err.startswith("error: ")
    assert not (tmp / "o" / name).exists()
    assert not (tmp / "o" / (name + ".missing")).exists()


def test_decrypt_wrong_private_key_exit_2_nothing_written(tmp, run, rsa, other_rsa):
    cap, _ = encrypted_capture(tmp, rsa, D.minidump().image, D.AES)
    extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0",
              "--private-key", pem_file(tmp, other_rsa, "wrong.pem"))
    _refused(res, tmp, f"vmcore.{IP}.0")


def test_decrypt_key_file_of_another_dump_exit_2_nothing_written(tmp, run, rsa):
    cap, _ = encrypted_capture(tmp, rsa, D.minidump().image, D.CHACHA)
    extract(run, cap, tmp / "o")
    dk, iv = D.new_dump_key()  # same operator key, another dump's dump key
    other = tmp / "other.key"
    other.write_bytes(D.key_file(rsa, D.CHACHA, dk, iv))
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0", "--private-key",
              pem_file(tmp, rsa), "--key", other)
    _refused(res, tmp, f"vmcore.{IP}.0")


def test_decrypt_truncated_key_exit_2_nothing_written(tmp, run, rsa):
    cap, _ = encrypted_capture(tmp, rsa, D.minidump().image, D.AES)
    extract(run, cap, tmp / "o")
    short = tmp / "short.key"
    short.write_bytes((tmp / "o" / f"key.{IP}.0").read_bytes()[:37 + 100])
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0", "--private-key",
              pem_file(tmp, rsa), "--key", short)
    _refused(res, tmp, f"vmcore.{IP}.0")


def test_decrypt_errors_never_show_the_private_or_the_dump_key(tmp, run, rsa, other_rsa):
    cap, _ = encrypted_capture(tmp, rsa, D.minidump().image, D.AES)
    extract(run, cap, tmp / "o")
    pem_text = D.pem(other_rsa).decode()
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0",
              "--private-key", pem_file(tmp, other_rsa, "wrong.pem"))
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
    extract(run, tmp / "gz.pcap", tmp / "o")
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
    extract(run, tmp / "zst.pcap", tmp / "o")
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
    extract(run, tmp / "c.pcap", tmp / "o")
    suffix = ".gz" if kind == "gzip" else ".zst"
    res = run("decompress", tmp / "o" / f"vmcore.{IP}.0{suffix}")
    assert res.code == 0, res
    out = (tmp / "o" / f"vmcore.{IP}.0").read_bytes()
    lost = missing_map(tmp / "o" / f"vmcore.{IP}.0")
    first_lost = lost[0][0] if lost else len(out)
    assert first_lost > 0
    assert out[:first_lost] == md.image[:first_lost]
    # It says how far it got: the decompressed bytes and the compressed offset.
    assert str(first_lost) in res.out and str(hole0) in res.out, res


# ---- extract and summary --private-key / --decompress --------------------------------

def test_extract_private_key_writes_vmcore_beside_untouched_netdumpd_files(tmp, run, rsa):
    md = D.minidump()
    stream = D.kernel_zstd(md.image)
    cap, _ = encrypted_capture(tmp, rsa, D.padded(stream), D.CHACHA, compression=2,
                                length=len(stream))
    extract(run, cap, tmp / "plain-run")
    report = extract(run, cap, tmp / "o", "--private-key", pem_file(tmp, rsa), "--decompress")
    out = tmp / "o"
    assert (out / f"vmcore.{IP}.0").read_bytes() == md.image
    for name in (f"vmcore_encrypted.{IP}.0.zst", f"key.{IP}.0", f"info.{IP}.0"):
        assert (out / name).read_bytes() == (tmp / "plain-run" / name).read_bytes()
    entry = report["sessions"][0]["inspect"]
    assert entry["format"] == "minidump" and entry["kgdb"] == "ok"


def test_extract_report_inspects_every_plain_dump(tmp, run):
    md = D.minidump()
    report = extract(run, plain_capture(tmp, md, {(W.VMCORE, 65536 + 3 * 1448)}), tmp / "o")
    entry = report["sessions"][0]["inspect"]
    assert ENTRY_KEYS <= set(entry)
    assert entry["minidump"]["lost_pages_pa"] == md.lost_pa([(65536 + 3 * 1448,
                                                               65536 + 4 * 1448)])
    assert entry["msgbuf"]["panic"] == "page fault"


def test_extract_without_kdh_shows_panic_and_version_from_the_msgbuf(tmp, run):
    md = D.minidump()
    cap = plain_capture(tmp, md, kdh=False)
    res = run("extract", cap, "-o", tmp / "o")
    assert res.code == 3, res
    assert "page fault" in res.out + res.err
    assert "FreeBSD 14.1-RELEASE" in res.out + res.err


def test_summary_private_key_lists_no_files_and_inspects(tmp, run, rsa):
    md = D.minidump()
    cap, _ = encrypted_capture(tmp, rsa, md.image, D.AES)
    res = run("summary", cap, "--private-key", pem_file(tmp, rsa), "--json", "-")
    assert res.code == 0, res
    session = res.json()["sessions"][0]
    assert session["files"] == []
    assert session["inspect"]["format"] == "minidump"
    assert session["inspect"]["kgdb"] == "ok"


def test_decrypt_then_decompress_a_holed_chacha20_gzip_dump(tmp, run, rsa):
    md = D.minidump(npages=120)
    stream = D.kernel_gzip(md.image)
    hole = (20 * 1448, 21 * 1448)
    cap, _ = encrypted_capture(tmp, rsa, D.padded(stream), D.CHACHA, compression=1,
                                length=len(stream), lose={(W.VMCORE, hole[0])})
    extract(run, cap, tmp / "o")
    res = run("decrypt", tmp / "o" / f"vmcore_encrypted.{IP}.0.gz", "--private-key",
              pem_file(tmp, rsa))
    assert res.code == 0, res
    gz = tmp / "o" / f"vmcore.{IP}.0.gz"
    assert missing_map(gz) == [list(hole)]
    assert gz.read_bytes()[:hole[0]] == stream[:hole[0]]
    res = run("decompress", gz)
    assert res.code == 0, res
    out = (tmp / "o" / f"vmcore.{IP}.0").read_bytes()
    lost = missing_map(tmp / "o" / f"vmcore.{IP}.0")
    assert lost and out[:lost[0][0]] == md.image[:lost[0][0]]
    assert str(hole[0]) in res.out  # where decoding stopped, in compressed offsets
