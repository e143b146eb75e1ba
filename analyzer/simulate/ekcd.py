"""Encrypted kernel crash dumps (EKCD) as dumpon(8) and the kernel make them.

dumpon draws a 64-byte key, wraps it with the operator's RSA public key (OAEP with OpenSSL's
defaults, SHA-1 and MGF1-SHA-1, on 13.x and later; PKCS#1 v1.5 on 12.x) and hands the kernel
a ``struct kerneldumpkey``. The kernel encrypts the dump body with the first 32 bytes of the
key: AES-256-CBC (IV ``kdk_iv[0:16]``, one CBC stream from offset 0, no padding) or ChaCha20
(nonce ``kdk_iv[0:8]``, block counter 0). Facts: dump-formats.md §1-§2, protocol reference §8.

Everything random comes from the simulation's seeded RNG, so a seed gives the same bytes
every time: the RSA padding is therefore applied here (RFC 8017 encodings) and only the RSA
operation itself is a plain modular power. When no public key is given, the simulated
operator's key is used: one deterministic RSA-2048 pair (``seeded_private_key(OPERATOR)``),
made once per process. Its private half stays in memory unless the caller writes it
somewhere on purpose. The 64-byte dump key never leaves this object.
"""
from __future__ import annotations

import hashlib
import random
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from analyzer.wire import build_kdk

CIPHERS = {"aes256-cbc": 1, "chacha20": 2}  # KERNELDUMP_ENC_* numbers
PADDINGS = ("oaep", "pkcs1v15")
KEY_SIZE = 64  # KERNELDUMP_KEY_MAX_SIZE: what dumpon draws and wraps
_E = 65537
OPERATOR = 4242  # seed of the simulated operator's RSA key pair
_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p ** 0.5) + 1))]


def _probably_prime(n: int, rng: random.Random, rounds: int = 16) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng: random.Random, bits: int) -> int:
    while True:  # the top two bits set make the product exactly 2 * bits long
        c = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if (c - 1) % _E and _probably_prime(c, rng):
            return c


@lru_cache(maxsize=8)
def seeded_private_key(seed: int, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A deterministic RSA key pair for ``seed`` (a simulation fixture, never a real key)."""
    rng = random.Random(seed)
    p = _prime(rng, bits // 2)
    q = _prime(rng, bits // 2)
    while q == p:
        q = _prime(rng, bits // 2)
    d = pow(_E, -1, (p - 1) * (q - 1))
    pub = rsa.RSAPublicNumbers(_E, p * q)
    return rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                 rsa.rsa_crt_iqmp(p, q), pub).private_key()


def _mgf1_sha1(seed: bytes, length: int) -> bytes:
    out = b"".join(hashlib.sha1(seed + i.to_bytes(4, "big")).digest()
                   for i in range(-(-length // 20)))
    return out[:length]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _encode(message: bytes, k: int, padding: str, rng: random.Random) -> bytes:
    """The RFC 8017 encoded message EM (k bytes) before the RSA operation."""
    if padding == "oaep":  # EME-OAEP, SHA-1, empty label
        db = hashlib.sha1(b"").digest() + bytes(k - len(message) - 42) + b"\x01" + message
        seed = rng.randbytes(20)
        masked_db = _xor(db, _mgf1_sha1(seed, k - 21))
        return b"\0" + _xor(seed, _mgf1_sha1(masked_db, 20)) + masked_db
    filler = bytes(rng.randrange(1, 256) for _ in range(k - len(message) - 3))
    return b"\0\x02" + filler + b"\0" + message  # EME-PKCS1-v1_5


def wrap(public_key: rsa.RSAPublicKey, message: bytes, padding: str, rng: random.Random) -> bytes:
    """RSA-encrypt ``message`` as dumpon does, with seeded padding randomness."""
    nums = public_key.public_numbers()
    k = (nums.n.bit_length() + 7) // 8
    m = int.from_bytes(_encode(message, k, padding, rng), "big")
    return pow(m, nums.e, nums.n).to_bytes(k, "big")


class DumpKey:
    """One dump's EKCD material: the key blob sent as EKCD_KEY, and the body cipher.

    ``generation`` picks the wrapping (12: PKCS#1 v1.5, else OAEP) and the default cipher
    (12: AES-256-CBC, the only one it has; else ChaCha20).
    """

    def __init__(self, seed: int, generation: str, cipher: str | None = None,
                 public_key_pem: bytes | str | None = None, compressed: bool = False):
        cipher = cipher or ("aes256-cbc" if generation == "12" else "chacha20")
        if cipher not in CIPHERS:
            raise ValueError(f"unknown cipher {cipher!r} (aes256-cbc or chacha20)")
        if generation == "12" and cipher != "aes256-cbc":
            raise ValueError("FreeBSD 12.x encrypts dumps with AES-256-CBC only")
        if cipher == "aes256-cbc" and compressed:
            raise ValueError("AES-256-CBC cannot be combined with compression (dumpon refuses it)")
        rng = random.Random(seed)
        self.cipher = cipher
        self.padding = "pkcs1v15" if generation == "12" else "oaep"
        self._private = None
        if public_key_pem is None:
            self._private = seeded_private_key(OPERATOR)
            public = self._private.public_key()
        else:
            if isinstance(public_key_pem, str):
                public_key_pem = public_key_pem.encode()
            try:
                public = serialization.load_pem_public_key(public_key_pem)
            except ValueError:
                raise ValueError("the public key is not a PEM RSA public key") from None
            if not isinstance(public, rsa.RSAPublicKey):
                raise ValueError("the public key is not an RSA key")
        if public.key_size < 2048:
            raise ValueError("the RSA key must have at least 2048 bits (dumpon refuses less)")
        self._key = rng.randbytes(KEY_SIZE)
        self.iv = rng.randbytes(32)
        self.wrapped = wrap(public, self._key, self.padding, rng)
        self.blob = build_kdk(CIPHERS[cipher], self.iv, self.wrapped)

    def private_key_pem(self) -> bytes | None:
        """The generated private key (PKCS#8 PEM), or None when the caller gave the key."""
        if self._private is None:
            return None
        return self._private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())

    def encryptor(self):
        """A function (offset, data) -> ciphertext for one pass over the body, in order."""
        key = self._key[:32]
        if self.cipher == "chacha20":
            def chacha(offset: int, data: bytes) -> bytes:
                assert offset % 64 == 0
                nonce = (offset // 64).to_bytes(8, "little") + self.iv[:8]
                return Cipher(algorithms.ChaCha20(key, nonce), None).encryptor().update(data)
            return chacha
        cbc = Cipher(algorithms.AES(key), modes.CBC(self.iv[:16])).encryptor()
        expected = [0]

        def aes(offset: int, data: bytes) -> bytes:
            # One CBC chain over the whole body: each chunk continues the previous one.
            if offset != expected[0]:
                raise ValueError("AES-CBC dump bodies are encrypted in order from offset 0")
            expected[0] = offset + len(data)
            return cbc.update(data)
        return aes

    def summary(self) -> dict:
        """What the ground truth may say about the key (never the key itself)."""
        return {"cipher": self.cipher, "encryption": CIPHERS[self.cipher],
                "padding": self.padding, "iv": self.iv.hex(),
                "encryptedkeysize": len(self.wrapped),
                "private_key": "generated" if self._private is not None else "given"}
