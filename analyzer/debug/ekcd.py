"""The EKCD key file: which cipher, the IV, and the dump key the operator's RSA key unwraps.

As decryptcore does: RSA OAEP first (13.x and later), then PKCS#1 v1.5 (12.x); the unwrapped
key must be exactly 64 bytes. The key never leaves this process: errors name the file, never
a byte of the key.
"""
from __future__ import annotations

from typing import NamedTuple

from analyzer.exits import EXIT_USAGE, Failure
from analyzer.wire import (DUMP_KEY_SIZE, ENCRYPTED_KEY_MAX, ENCRYPTION_NAMES, KDK_HEAD,
                           parse_kdk)


class DumpKey(NamedTuple):
    encryption: int  # 1 AES-256-CBC, 2 ChaCha20
    iv: bytes  # kdk_iv, 32 bytes
    key: bytes  # the unwrapped 64-byte key (both ciphers use its first 32 bytes)
    padding: str  # "oaep" or "pkcs1v15": how it was wrapped

    def __repr__(self) -> str:  # never show the key
        return f"DumpKey({ENCRYPTION_NAMES.get(self.encryption)}, {self.padding})"


def read_key_file(path: str, missing=()) -> tuple[int, bytes, bytes]:
    """(encryption, iv, wrapped key) from a key file; a short or holed one is refused."""
    try:
        with open(path, "rb") as f:
            raw = f.read(KDK_HEAD.size + ENCRYPTED_KEY_MAX)
    except OSError as exc:
        raise Failure(f"{path}: {exc.strerror}", EXIT_USAGE) from None
    if len(raw) < KDK_HEAD.size:
        raise Failure(f"{path}: truncated key file ({len(raw)} bytes)", EXIT_USAGE)
    head = parse_kdk(raw)
    size = head["encryptedkeysize"]
    if head["encryption"] not in ENCRYPTION_NAMES:
        raise Failure(f"{path}: unknown encryption {head['encryption']} (not a dump key file?)",
                      EXIT_USAGE)
    if not 0 < size <= ENCRYPTED_KEY_MAX:
        raise Failure(f"{path}: wrapped key size {size} is not a dump key's", EXIT_USAGE)
    end = KDK_HEAD.size + size
    if len(raw) < end:
        raise Failure(f"{path}: truncated key file ({len(raw)} of {end} bytes)", EXIT_USAGE)
    lost = [(a, b) for a, b in missing if a < end and b > 0]
    if lost:
        a, b = lost[0]
        raise Failure(f"{path}: the capture lacks bytes [{a}, {b}) of the key; "
                      "the dump key cannot be unwrapped", EXIT_USAGE)
    fixed = KDK_HEAD.parse(raw)
    return fixed.encryption, fixed.iv, raw[KDK_HEAD.size:end]


def load_private_key(pem_path: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    try:
        with open(pem_path, "rb") as f:
            data = f.read(1 << 20)
    except OSError as exc:
        raise Failure(f"{pem_path}: {exc.strerror}", EXIT_USAGE) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise Failure(f"{pem_path}: not an unencrypted PEM private key", EXIT_USAGE) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise Failure(f"{pem_path}: not an RSA private key", EXIT_USAGE)
    return key


def unwrap(private_key, wrapped: bytes) -> tuple[bytes, str]:
    """The 64-byte dump key and the padding that worked; Failure (exit 2) otherwise."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(),
                        label=None)
    for name, pad in (("oaep", oaep), ("pkcs1v15", padding.PKCS1v15())):
        try:
            key = private_key.decrypt(wrapped, pad)
        except ValueError:
            continue
        if len(key) == DUMP_KEY_SIZE:
            return key, name
    raise Failure("the private key does not unwrap this dump key (wrong private key, "
                  "or a key file of another dump)", EXIT_USAGE)


def dump_key(key_path: str, pem_path: str, key_missing=()) -> DumpKey:
    encryption, iv, wrapped = read_key_file(key_path, key_missing)
    private_key = load_private_key(pem_path)
    if (private_key.key_size + 7) // 8 != len(wrapped):
        raise Failure(f"{key_path}: the wrapped key is {len(wrapped)} bytes, the private key "
                      f"is {private_key.key_size} bits: wrong private key", EXIT_USAGE)
    key, pad = unwrap(private_key, wrapped)
    return DumpKey(encryption, iv, key, pad)
