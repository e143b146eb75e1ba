"""Dump images built from dump-formats.md alone, with their own truth, for the contract tests.

Minidumps (amd64 v2/v3, arm64 v3) with a message buffer, the EKCD key wrapped with real RSA,
the two ciphers as §2 says the kernel applies them, and the kernel's gzip and zstd streams.
Independent of ``analyzer`` and ``analyzer.simulate``.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

PAGE = 4096


def round_page(n: int) -> int:
    return -(-n // PAGE) * PAGE


# ---- the message buffer (§7) -----------------------------------------------------------

BOOT = ("---<<BOOT>>---\n"
        "Copyright (c) 1992-2024 The FreeBSD Project.\n"
        "FreeBSD 14.1-RELEASE releng/14.1-n267679-10e31f0946d8 GENERIC amd64\n"
        "CPU: QEMU Virtual CPU version 2.5+ (2394.45-MHz K8-class CPU)\n")
PANIC_TAIL = ("Fatal trap 12: page fault while in kernel mode\n"
              "cpuid = 1; apic id = 01\n"
              "panic: page fault\n"
              "cpuid = 1\n"
              "KDB: stack backtrace:\n"
              "#0 0xffffffff80b9009d at kdb_backtrace+0x5d\n"
              "#1 0xffffffff80b43132 at vpanic+0x132\n"
              "#2 0xffffffff80b42ff3 at panic+0x43\n"
              "Uptime: 3m12s\n"
              "netdump in progress. searching for server...\n"
              "netdumping to 192.0.2.1 (02:00:00:00:bb:02)\n"
              "Dumping 12 out of 1015 MB:")


def console_text(filler_lines: int) -> str:
    body = "".join(f"em0: link state changed to UP ({i})\n" for i in range(filler_lines))
    return BOOT + body + PANIC_TAIL


def msgbuf_ring(text: str, size: int) -> tuple[bytes, str]:
    """(the ring as the kernel leaves it, the text it holds oldest first)."""
    raw = text.encode()
    if len(raw) <= size:
        return raw.ljust(size, b"\0"), text
    ring = bytearray(size)
    for i, byte in enumerate(raw[-size:], start=len(raw) - size):
        ring[i % size] = byte
    return bytes(ring), raw[-size:].decode()


# ---- minidumps (§4, §5) ----------------------------------------------------------------

@dataclass
class Minidump:
    image: bytes
    arch: str
    version: int
    msgbuf_text: str
    pages_pa: list  # PA of the k-th dumped page
    pages_offset: int  # file offset of the pages section
    sections: dict  # name -> (offset, length)

    def lost_pa(self, holes) -> list[list[int]]:
        """Coalesced PA ranges of the dumped pages any missing byte touches."""
        lost = set()
        for a, b in holes:
            for k, pa in enumerate(self.pages_pa):
                p0 = self.pages_offset + k * PAGE
                if a < p0 + PAGE and b > p0:
                    lost.add(pa)
        out: list[list[int]] = []
        for pa in sorted(lost):
            if out and out[-1][1] == pa:
                out[-1][1] = pa + PAGE
            else:
                out.append([pa, pa + PAGE])
        return out


AVAIL = [(0x1000, 0x9F000), (0x100000, 0x400000)]  # two ranges, the first not at 0


def _bit_of(pa: int, avail) -> int:
    """libkvm's bit number of a PA: pages of the earlier ranges, then the offset in its own."""
    adj = 0
    for start, end in avail:
        if pa < end:
            return pa // PAGE - start // PAGE + adj
        adj += -(-end // PAGE) - start // PAGE
    raise ValueError(pa)


def minidump(arch: str = "amd64", version: int = 3, npages: int = 24,
             msgbufsize: int = 8192, wrapped: bool = False, seed: int = 1,
             text: str | None = None, kernel_arm64_v2: bool = False) -> Minidump:
    """``kernel_arm64_v2``: an arm64 version 2 as the kernel wrote it (it has dump_avail:
    sys/arm64/include/minidump.h at version 2); without it, version 2 has none (the issue's
    "v1/v2 have no dump_avail", true of amd64)."""
    if text is None:
        text = console_text(400 if wrapped else 3)
        assert (len(text.encode()) > msgbufsize) == wrapped
    ring, held = msgbuf_ring(text, msgbufsize)
    with_avail = version >= 3 or kernel_arm64_v2
    avail = AVAIL if with_avail else None
    # Pages: a few in the low range, the rest in the high range (v2: bit x 4096).
    pas = [0x2000, 0x3000, 0x9E000] + [0x200000 + i * PAGE for i in range(npages - 3)]
    bits = [_bit_of(pa, avail) if avail else pa // PAGE for pa in pas]
    nbits = max(bits) + 1
    bitmap = bytearray(round_page(-(-nbits // 64) * 8))
    for b in bits:
        bitmap[b // 8] |= 1 << (b % 8)
    # Pages go in bitmap order: sort the PAs by bit.
    pas = [pa for _b, pa in sorted(zip(bits, pas))]
    kernbase = 0xFFFFFFFF80000000 if arch == "amd64" else 0xFFFF000000000000
    pmap = bytearray(PAGE)
    for i in range(8):  # 2 MiB PDEs with PG_V|PG_PS (amd64); L3 page entries (arm64)
        struct.pack_into("<Q", pmap, 8 * i, (0x200000 + i * 0x200000) | (0x83 if arch ==
                                                                        "amd64" else 0x3))
    dump_avail = bytearray(PAGE)
    for i, (a, b) in enumerate(AVAIL):
        struct.pack_into("<QQ", dump_avail, 16 * i, a, b)
    head = bytearray(PAGE)
    magic = f"minidump FreeBSD/{arch}".encode().ljust(24, b"\0")
    if arch == "amd64":
        struct.pack_into("<24sIIIIQQQ", head, 0, magic, version, msgbufsize, len(bitmap),
                         len(pmap), kernbase, 0xFFFFF80000000000, 0xFFFFFC0000000000)
        if version >= 3:
            struct.pack_into("<I", head, 64, PAGE)
    else:
        struct.pack_into("<24sIIIIQQQQII", head, 0, magic, version, msgbufsize, len(bitmap),
                         len(pmap), kernbase, 0x40000000, 0xFFFFA00000000000,
                         0xFFFFA0FFFFFFFFFF, PAGE if with_avail else 0, 0)
    rnd = __import__("random").Random(seed)
    # Each page: its PA, then 4 KiB of a random 512-byte pattern (compressible, like memory).
    pages = b"".join(struct.pack("<Q", pa) + (rnd.randbytes(512) * 8)[:PAGE - 8] for pa in pas)
    parts = [("header", bytes(head)), ("msgbuf", ring.ljust(round_page(msgbufsize), b"\0"))]
    if with_avail:
        parts.append(("dump_avail", bytes(dump_avail)))
    parts += [("bitmap", bytes(bitmap)), ("pmap", bytes(pmap)), ("pages", pages)]
    sections, pos = {}, 0
    for name, data in parts:
        sections[name] = (pos, len(data))
        pos += len(data)
    image = b"".join(d for _n, d in parts)
    return Minidump(image, arch, version, held, pas, sections["pages"][0], sections)


# ---- EKCD (§2 of dump-formats.md, §8 of the protocol) ---------------------------------

def rsa_key(bits: int = 2048):
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def pem(private_key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return private_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption())


def key_file(private_key, cipher: int, dump_key: bytes, iv: bytes, oaep: bool = True) -> bytes:
    """struct kerneldumpkey padded to 4096: encryption, iv[32], BE wrapped size, wrapped."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    pad = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None) \
        if oaep else padding.PKCS1v15()
    wrapped = private_key.public_key().encrypt(dump_key, pad)
    blob = struct.pack(">B32sI", cipher, iv, len(wrapped)) + wrapped
    return blob.ljust(PAGE, b"\0")


AES, CHACHA = 1, 2


def encrypt(cipher: int, dump_key: bytes, iv: bytes, plain: bytes) -> bytes:
    """As the kernel does: one CBC chain (IV iv[0:16]) or one ChaCha20 keystream (nonce
    iv[0:8], counter 0) over the whole body from offset 0, key[0:32], no padding."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    if cipher == AES:
        enc = Cipher(algorithms.AES(dump_key[:32]), modes.CBC(iv[:16])).encryptor()
        out = b"".join(enc.update(plain[i:i + 4096]) for i in range(0, len(plain), 4096))
    else:
        enc = Cipher(algorithms.ChaCha20(dump_key[:32], bytes(8) + iv[:8]), None).encryptor()
        out = enc.update(plain)
    return out + enc.finalize()


def new_dump_key() -> tuple[bytes, bytes]:
    return os.urandom(64), os.urandom(32)


# ---- compressed streams (§3) -----------------------------------------------------------

def kernel_gzip(plain: bytes, level: int = 6) -> bytes:
    """The kernel's minimal 10-byte header, raw deflate, CRC-32 and ISIZE."""
    c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = c.compress(plain) + c.flush()
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + body +
            struct.pack("<II", zlib.crc32(plain), len(plain) & 0xFFFFFFFF))


def kernel_zstd(plain: bytes) -> bytes:
    import zstandard
    return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(plain)


def padded(stream: bytes, stale: bool = False) -> bytes:
    """The last block padded to 4096: zeros (current main) or stale bytes (12.1)."""
    n = -len(stream) % PAGE
    return stream + (bytes(range(256)) * 16)[:n] if stale else stream + bytes(n)
