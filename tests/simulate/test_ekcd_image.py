"""Simulated EKCD: the key file unwraps with the operator's private key and the dump body
decrypts, with the kernel's ciphers applied independently here, back to the plaintext."""
from __future__ import annotations

import json
import struct
import zlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from analyzer.simulate import DumpSpec, simulate_frames
from analyzer.simulate.ekcd import DumpKey

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


@pytest.fixture(scope="module")
def operator():
    """The test's own RSA key pair; the simulator only sees the public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem.decode()


def _key_file(blob: bytes):
    """struct kerneldumpkey: u8 cipher, iv[32], big-endian u32 size, wrapped key."""
    cipher, iv, n = blob[0], blob[1:33], struct.unpack(">I", blob[33:37])[0]
    return cipher, iv, blob[37:37 + n]


def _decrypt(cipher: int, key: bytes, iv: bytes, body: bytes) -> bytes:
    if cipher == 1:
        dec = Cipher(algorithms.AES(key[:32]), modes.CBC(iv[:16])).decryptor()
    else:
        dec = Cipher(algorithms.ChaCha20(key[:32], bytes(8) + iv[:8]), None).decryptor()
    return dec.update(body) + dec.finalize()


CASES = [  # generation, cipher, compression, image model
    ("12", None, "none", "minidump"),
    ("13", None, "none", "minidump"),
    ("main", "aes256-cbc", "none", "minidump"),
    ("main", "chacha20", "gzip", "minidump"),
    ("13", "chacha20", "zstd", "legacy"),
    ("12", None, "none", "legacy"),
]


@pytest.mark.parametrize("gen,cipher,comp,model", CASES)
def test_body_decrypts_to_the_plaintext_image(operator, gen, cipher, comp, model):
    private, pem = operator
    spec = DumpSpec(generation=gen, size=256 << 10, encrypt=True, cipher=cipher,
                    compress=comp, public_key=pem, image=model)
    _frames, truth = simulate_frames(spec, seed=9)
    att = truth.dumps[0]
    name = att.session.core_name
    assert name.startswith("vmcore_encrypted.")
    number, iv, wrapped = _key_file(truth.file_bytes(att.session.key_name))
    assert number == (1 if gen == "12" or cipher == "aes256-cbc" else 2)
    assert len(wrapped) == 256
    if gen == "12":
        key = private.decrypt(wrapped, padding.PKCS1v15())
        with pytest.raises(ValueError):
            private.decrypt(wrapped, OAEP)
    else:
        key = private.decrypt(wrapped, OAEP)
    assert len(key) == 64
    body = truth.file_bytes(name)
    plain = _decrypt(number, key, iv, body if comp == "none" else
                     body + bytes(-len(body) % 16))[:len(body)]
    image = att.material.stream.image.read(0, 256 << 10)
    if comp == "gzip":
        plain = zlib.decompressobj(31).decompress(plain)
    elif comp == "zstd":
        import zstandard
        plain = zstandard.ZstdDecompressor().decompressobj().decompress(plain)
    assert plain == image
    entry = truth.to_json()["dumps"][0]["image"]
    assert entry["ekcd"]["padding"] == ("pkcs1v15" if gen == "12" else "oaep")
    assert entry["ekcd"]["private_key"] == "given"


def test_the_same_seed_gives_the_same_key_file_and_ciphertext(operator):
    spec = DumpSpec(generation="13", size=64 << 10, encrypt=True, public_key=operator[1])
    runs = [simulate_frames(spec, seed=5)[1] for _ in range(2)]
    names = [r.dumps[0].session.key_name for r in runs]
    assert runs[0].file_bytes(names[0]) == runs[1].file_bytes(names[1])
    core = runs[0].dumps[0].session.core_name
    assert runs[0].file_bytes(core) == runs[1].file_bytes(core)


def test_without_a_public_key_the_generated_private_key_unwraps_it():
    _f, truth = simulate_frames(DumpSpec(generation="main", size=64 << 10, encrypt=True), seed=2)
    dkey = truth.dumps[0].material.stream.key
    private = serialization.load_pem_private_key(dkey.private_key_pem(), None)
    assert private.key_size == 2048
    _n, _iv, wrapped = _key_file(truth.file_bytes(truth.dumps[0].session.key_name))
    assert len(private.decrypt(wrapped, OAEP)) == 64
    assert truth.to_json()["dumps"][0]["image"]["ekcd"]["private_key"] == "generated"


def test_no_secret_reaches_the_truth(operator):
    private, pem = operator
    spec = DumpSpec(generation="main", size=64 << 10, encrypt=True)
    _f, truth = simulate_frames(spec, seed=3)
    text = json.dumps(truth.to_json())
    dkey = truth.dumps[0].material.stream.key
    _n, _iv, wrapped = _key_file(truth.file_bytes(truth.dumps[0].session.key_name))
    key = serialization.load_pem_private_key(dkey.private_key_pem(), None).decrypt(wrapped, OAEP)
    assert key.hex() not in text and key[:32].hex() not in text
    assert "PRIVATE" not in text


@pytest.mark.parametrize("hole,cbc_lost", [
    ((8192, 9000), (8192, 9024)),  # the blocks it touches, and the whole block after them
    ((1448, 2896), (1440, 2912)),  # packet boundaries are not block boundaries
    ((4096, 8192), (4096, 8208)),
])
def test_a_cbc_hole_costs_its_blocks_and_the_next_one_a_chacha_hole_only_itself(
        operator, hole, cbc_lost):
    from analyzer.simulate.imagetruth import plain_missing
    private = operator[0]
    for cipher, expected in (("aes256-cbc", cbc_lost), ("chacha20", hole)):
        spec = DumpSpec(generation="13", size=64 << 10, encrypt=True, cipher=cipher,
                        public_key=operator[1])
        _f, truth = simulate_frames(spec, seed=1)
        stream = truth.dumps[0].material.stream
        lost, _ = plain_missing(stream, [hole], 64 << 10)
        assert lost == [expected]
        # Independently: zero the hole in the ciphertext, decrypt, and see what differs.
        number, iv, wrapped = _key_file(truth.file_bytes(truth.dumps[0].session.key_name))
        body = bytearray(truth.file_bytes(truth.dumps[0].session.core_name))
        body[hole[0]:hole[1]] = bytes(hole[1] - hole[0])
        key = private.decrypt(wrapped, OAEP)
        plain = _decrypt(number, key, iv, bytes(body))
        image = stream.image.read(0, 64 << 10)
        wrong = [i for i in range(len(image)) if plain[i] != image[i]]
        assert expected[0] <= wrong[0] and wrong[-1] < expected[1]
        if cipher == "aes256-cbc":  # the damage really reaches the first and the last block
            assert wrong[0] // 16 == expected[0] // 16
            assert wrong[-1] // 16 == (expected[1] - 1) // 16


@pytest.mark.parametrize("kwargs,message", [
    (dict(generation="13", cipher="aes256-cbc", compressed=True), "compression"),
    (dict(generation="12", cipher="chacha20"), "AES-256-CBC only"),
    (dict(generation="13", cipher="des"), "unknown cipher"),
])
def test_combinations_dumpon_refuses_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DumpKey(1, **kwargs)


def test_a_short_rsa_key_is_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = small.public_bytes(serialization.Encoding.PEM,
                             serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError, match="2048"):
        DumpKey(1, "13", public_key_pem=pem)
    with pytest.raises(ValueError, match="PEM"):
        DumpKey(1, "13", public_key_pem=b"not a key")


def test_the_encrypted_sample_and_its_private_key_regenerate_byte_for_byte(tmp_path):
    import importlib.util
    from pathlib import Path

    from analyzer.simulate import simulate
    root = Path(__file__).resolve().parents[2] / "samples"
    spec = importlib.util.spec_from_file_location("make_samples", root / "make_samples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    name = "encrypted-main.pcap"
    out, truth = simulate(tmp_path / name, expected=tmp_path / "exp", **mod.SAMPLES[name])
    assert out.read_bytes() == (root / name).read_bytes()
    assert (tmp_path / "exp" / "SHA256SUMS").read_text() == \
        (root / "encrypted-main.expected" / "SHA256SUMS").read_text()
    pem = truth.dumps[0].material.stream.key.private_key_pem()
    assert pem == (root / "encrypted-main.private-key.pem").read_bytes()
