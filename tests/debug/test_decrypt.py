"""Decrypting EKCD dumps with holes: ChaCha20 byte for byte, AES-CBC losing the block after
each hole; wrong keys refused before anything is written."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from analyzer.debug.decrypt import decrypt_ranges, plaintext_missing
from analyzer.debug.ekcd import DumpKey
from analyzer.debug.derive import decrypt_path
from analyzer.exits import EXIT_USAGE, Failure
from tests.debug.conftest import run_cli
from tests.support.dump_builders import (build_minidump, console_ring, ekcd, encrypt, pem,
                                         write_dump_dir, zeroed)

KEY, IV = bytes(range(64)), bytes(range(100, 132))
PLAIN = bytes((i * 7 + i // 251) & 0xFF for i in range(3 * 4096 + 100))


def _decrypt_in_memory(encryption, data, missing):
    cipher = encrypt(encryption, KEY, IV, data)
    holed = zeroed(cipher, missing)
    out = bytearray(len(data))
    for pos, plain in decrypt_ranges(DumpKey(encryption, IV, KEY, "oaep"),
                                     lambda p, n: holed[p:p + n], missing, len(data)):
        out[pos:pos + len(plain)] = plain
    return bytes(out), plaintext_missing(encryption, missing, len(data))


holes = st.lists(st.tuples(st.integers(0, len(PLAIN) - 1), st.integers(1, 3000)),
                 max_size=4).map(lambda hs: [(a, min(a + n, len(PLAIN))) for a, n in hs])


def _inside(pos, ranges):
    return any(a <= pos < b for a, b in ranges)


@settings(max_examples=60, deadline=None)
@given(holes)
def test_chacha20_recovers_every_captured_byte_at_its_own_position(missing):
    out, lost = _decrypt_in_memory(2, PLAIN, missing)
    for pos in range(0, len(PLAIN), 97):
        if _inside(pos, missing):
            assert _inside(pos, lost) and out[pos] == 0
        else:
            assert not _inside(pos, lost) and out[pos] == PLAIN[pos]
    assert sum(b - a for a, b in lost) == len({p for a, b in missing for p in range(a, b)})


@settings(max_examples=60, deadline=None)
@given(holes)
def test_cbc_loses_the_blocks_a_hole_touches_and_the_block_right_after(missing):
    data = PLAIN[:3 * 4096]  # a plain dump is whole blocks
    missing = [(a, min(b, len(data))) for a, b in missing if a < len(data)]
    out, lost = _decrypt_in_memory(1, data, missing)
    for pos in range(0, len(data), 7):
        block = pos - pos % 16
        # P[i] = D(C[i]) xor C[i-1]: lost when this ciphertext block lost any byte, or when
        # the block before it did (its chaining input): whole blocks, as the rule says
        expect_lost = any(a < block + 16 and b > block - 16 for a, b in missing)
        assert _inside(pos, lost) == expect_lost, (pos, missing)
        assert out[pos] == (0 if expect_lost else data[pos])


def test_cbc_hole_on_block_boundaries_loses_exactly_one_more_block():
    assert plaintext_missing(1, [(4096, 8192)], 16384) == [(4096, 8208)]
    assert plaintext_missing(2, [(4096, 8192)], 16384) == [(4096, 8192)]
    assert plaintext_missing(1, [(0, 16)], 64) == [(0, 32)]


def test_cbc_unaligned_hole_loses_its_blocks_and_the_whole_block_after_them():
    # a 1448-byte packet lost: the blocks it touches, then the block they chained into
    assert plaintext_missing(1, [(1448, 2896)], 8192) == [(1440, 2912)]
    assert plaintext_missing(1, [(1448, 2900)], 8192) == [(1440, 2928)]
    # a small hole inside one block: that block and the next, whole
    assert plaintext_missing(1, [(5, 10)], 64) == [(0, 32)]
    # the block after the dump's end does not exist
    assert plaintext_missing(1, [(40, 48)], 48) == [(32, 48)]


def _encrypted_dump(tmp_path, encryption, oaep=True, missing=(), key_missing=()):
    ring, _text = console_ring(8192, wrapped=False)
    md = build_minidump("amd64", 3, ring, bits=list(range(24)))
    e = ekcd(encryption, oaep)
    cipher = encrypt(encryption, e.key, e.iv, md.image)
    paths = write_dump_dir(tmp_path, "10.0.0.2", 0, cipher, kind="vmcore_encrypted",
                           missing=missing, key=e.key_file, key_missing=key_missing)
    (tmp_path / "operator.pem").write_bytes(e.private_pem)
    return md, e, paths


@pytest.mark.parametrize("encryption", [1, 2])
@pytest.mark.parametrize("oaep", [True, False], ids=["oaep", "pkcs1v15"])
def test_a_whole_dump_decrypts_byte_identical_beside_the_input(tmp_path, encryption, oaep):
    md, _e, paths = _encrypted_dump(tmp_path, encryption, oaep)
    derived = decrypt_path(paths["vmcore"], str(tmp_path / "operator.pem"))
    assert derived.path == str(tmp_path / "vmcore.10.0.0.2.0")
    assert (tmp_path / "vmcore.10.0.0.2.0").read_bytes() == md.image
    sidecar = json.loads((tmp_path / "vmcore.10.0.0.2.0.missing").read_text())
    assert sidecar["missing"] == [] and sidecar["length"] == len(md.image)
    assert sidecar["derived_from"] == "vmcore_encrypted.10.0.0.2.0"


def test_holes_from_the_info_file_become_the_decrypted_files_map(tmp_path):
    hole = (40960 + 100, 40960 + 5000)
    md, _e, paths = _encrypted_dump(tmp_path, 1, missing=[hole])
    decrypt_path(paths["vmcore"], str(tmp_path / "operator.pem"))
    out = (tmp_path / "vmcore.10.0.0.2.0").read_bytes()
    lost = json.loads((tmp_path / "vmcore.10.0.0.2.0.missing").read_text())["missing"]
    assert lost == [[40960 + 96, 45968 + 16]]  # 45960 rounds up to 45968: then one more block
    a, b = lost[0]
    assert out[:a] == md.image[:a] and out[b:] == md.image[b:] and out[a:b] == bytes(b - a)


def test_the_command_writes_vmcore_and_never_overwrites(tmp_path):
    md, _e, paths = _encrypted_dump(tmp_path, 2)
    args = ("decrypt", paths["vmcore"], "--private-key", tmp_path / "operator.pem")
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "vmcore.10.0.0.2.0").read_bytes() == md.image
    again = run_cli(*args)
    assert again.returncode != 0 and "exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr


def test_wrong_private_key_is_refused_with_one_line_and_no_output(tmp_path, other_rsa_key):
    _md, _e, paths = _encrypted_dump(tmp_path, 2)
    (tmp_path / "wrong.pem").write_bytes(pem(other_rsa_key))
    proc = run_cli("decrypt", paths["vmcore"], "--private-key", tmp_path / "wrong.pem")
    assert proc.returncode == EXIT_USAGE
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "vmcore.10.0.0.2.0").exists()
    assert not (tmp_path / "vmcore.10.0.0.2.0.missing").exists()


def test_a_key_file_of_another_dump_is_refused(tmp_path, rsa_key):
    _md, _e, paths = _encrypted_dump(tmp_path, 2)
    other = ekcd(2, private_key=rsa_key)  # same operator key, another dump's key file
    (tmp_path / "operator.pem").write_bytes(other.private_pem)
    with open(paths["key"], "wb") as f:
        f.write(other.key_file)
    with pytest.raises(Failure) as err:
        decrypt_path(paths["vmcore"], str(tmp_path / "operator.pem"))
    assert err.value.code == EXIT_USAGE and "does not decrypt this dump" in str(err.value)
    assert not (tmp_path / "vmcore.10.0.0.2.0").exists()


@pytest.mark.parametrize("cut", [10, 37, 37 + 255])
def test_a_truncated_key_file_is_refused(tmp_path, cut):
    _md, e, paths = _encrypted_dump(tmp_path, 2)
    with open(paths["key"], "wb") as f:
        f.write(e.key_file[:cut])
    proc = run_cli("decrypt", paths["vmcore"], "--private-key", tmp_path / "operator.pem")
    assert proc.returncode == EXIT_USAGE and "truncated key" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_key_with_missing_bytes_is_refused(tmp_path):
    _md, _e, paths = _encrypted_dump(tmp_path, 2, key_missing=[(200, 1448)])
    with pytest.raises(Failure) as err:
        decrypt_path(paths["vmcore"], str(tmp_path / "operator.pem"))
    assert err.value.code == EXIT_USAGE and "[200, 1448)" in str(err.value)


def test_a_hole_in_the_key_files_padding_does_not_matter(tmp_path):
    md, _e, paths = _encrypted_dump(tmp_path, 2, key_missing=[(1448, 2896)])
    decrypt_path(paths["vmcore"], str(tmp_path / "operator.pem"))
    assert (tmp_path / "vmcore.10.0.0.2.0").read_bytes() == md.image


def test_no_secret_reaches_the_output_the_map_or_an_error(tmp_path, other_rsa_key):
    md, e, paths = _encrypted_dump(tmp_path, 1, missing=[(50000, 60000)])
    decrypt_path(paths["vmcore"], str(tmp_path / "operator.pem"))
    (tmp_path / "wrong.pem").write_bytes(pem(other_rsa_key))
    wrong = run_cli("decrypt", paths["vmcore"], "--private-key", tmp_path / "wrong.pem",
                    "-o", tmp_path / "other")
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("vmcore."))
    for secret in (e.key, e.key[:32], e.key.hex().encode()):
        assert secret not in written and secret.hex() not in wrong.stderr
    assert not os.path.exists(tmp_path / "other")
