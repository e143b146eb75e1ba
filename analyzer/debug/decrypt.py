"""Decrypting an EKCD dump that has holes, as the kernel encrypted it.

ChaCha20 (nonce kdk_iv[0:8], counter 0) is one keystream over the whole body: any captured
byte decrypts at its own position. AES-256-CBC (IV kdk_iv[0:16]) is one chained stream from
offset 0: a block needs the ciphertext block before it, so the 16-byte block right after a
hole is lost too (and every block a hole touches). Bytes that cannot be decrypted are never written.
"""
from __future__ import annotations

import os
import struct
from typing import Callable, Iterator

from analyzer.debug.ekcd import DumpKey
from analyzer.debug.files import Ranges, coalesce, present
from analyzer.exits import EXIT_USAGE, Failure

AES_CBC, CHACHA20 = 1, 2
BLOCK = 16
CHUNK = 1 << 20
# What a decrypted dump starts with: a minidump, an ELF full dump, a gzip or zstd stream.
KNOWN_STARTS = (b"minidump FreeBSD", b"\x7fELF", b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd")


def plaintext_missing(encryption: int, missing: Ranges, length: int) -> Ranges:
    """The plaintext ranges that cannot be recovered, given the missing ciphertext.

    AES-CBC: P[i] = D(C[i]) xor C[i-1]. A block whose ciphertext lost any byte is lost
    whole, and so is the whole block after it (its chaining input was that block), as
    decryptcore's rule states it; every other block decrypts. (Where a hole ends inside a
    block, a few bytes of the next block could be had by the byte-wise xor; they are counted
    lost, so that a report's missing ranges stay whole blocks.)
    """
    holes = coalesce((max(0, a), min(b, length)) for a, b in missing)
    if encryption == CHACHA20:
        return holes
    lost = []
    for a, b in holes:
        lost.append((a - a % BLOCK, min(length, -(-b // BLOCK) * BLOCK + BLOCK)))
    if length % BLOCK:
        lost.append((length - length % BLOCK, length))  # no padding: a partial block is lost
    return coalesce(lost)


def _cipher(dk: DumpKey, start: int, prev_block: bytes | None):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    key = dk.key[:32]
    if dk.encryption == CHACHA20:
        nonce = struct.pack("<Q", start // 64) + dk.iv[:8]
        dec = Cipher(algorithms.ChaCha20(key, nonce), mode=None).decryptor()
        dec.update(bytes(start % 64))  # move the keystream to the byte's own position
        return dec
    iv = dk.iv[:BLOCK] if prev_block is None else prev_block
    return Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()


def decrypt_ranges(dk: DumpKey, read: Callable[[int, int], bytes], missing: Ranges,
                   length: int) -> Iterator[tuple[int, bytes]]:
    """(offset, plaintext) for every recoverable piece, in offset order."""
    if dk.encryption not in (AES_CBC, CHACHA20):
        raise Failure(f"unknown dump encryption {dk.encryption}", EXIT_USAGE)
    lost = plaintext_missing(dk.encryption, missing, length)
    for a, b in present(lost, length):
        if dk.encryption == CHACHA20:
            start, end, prev = a, b, None
        else:  # whole blocks; the chaining input may have holes only where output is lost
            start, end = a - a % BLOCK, -(-b // BLOCK) * BLOCK
            prev = read(start - BLOCK, BLOCK) if start else None
        dec = _cipher(dk, start, prev)
        for pos in range(start, end, CHUNK):
            n = min(end, pos + CHUNK) - pos
            plain = dec.update(read(pos, n).ljust(n, b"\0"))
            lo, hi = max(a, pos), min(b, pos + n)
            yield lo, plain[lo - pos:hi - pos]


def check_start(dk: DumpKey, read: Callable[[int, int], bytes], missing: Ranges,
                length: int) -> bool:
    """Whether the first bytes decrypt to a known dump start (False: they were not captured).

    A key of another dump decrypts to noise: refuse it before writing anything.
    """
    head = min(length, 32)
    lost = plaintext_missing(dk.encryption, missing, length)
    if head < BLOCK or (lost and lost[0][0] < head):
        return False
    plain = _cipher(dk, 0, None).update(read(0, head - head % BLOCK))
    if not any(plain.startswith(magic) for magic in KNOWN_STARTS):
        raise Failure("the key does not decrypt this dump (a key file of another dump, "
                      "or the wrong private key)", EXIT_USAGE)
    return True


def decrypt_file(src: str, dst: str, dk: DumpKey, missing: Ranges) -> tuple[Ranges, bool]:
    """Write the plaintext of ``src`` to the new file ``dst`` (holes left as holes).

    Returns (missing plaintext ranges, whether the key was checked against the dump).
    """
    from analyzer.newfiles import create_exclusive
    fd_in = os.open(src, os.O_RDONLY)
    try:
        length = os.fstat(fd_in).st_size

        def read(pos: int, n: int) -> bytes:
            return os.pread(fd_in, n, pos)

        checked = check_start(dk, read, missing, length)
        fd_out = create_exclusive(dst)
        try:
            os.ftruncate(fd_out, length)
            for pos, plain in decrypt_ranges(dk, read, missing, length):
                view = memoryview(plain)
                while view:
                    n = os.pwrite(fd_out, view, pos)
                    view, pos = view[n:], pos + n
            os.fsync(fd_out)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
    return plaintext_missing(dk.encryption, missing, length), checked
