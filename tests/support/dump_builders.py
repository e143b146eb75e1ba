"""Test dumps built from the spec's layouts: minidumps, msgbuf rings, EKCD encryption.

Independent of ``analyzer.debug``: the tests compare what it reads with what was built here
(the ciphers through ``cryptography`` directly, the kernel's way: CBC chained over 4096-byte
chunks from offset 0 with IV kdk_iv[0:16]; ChaCha20 with nonce kdk_iv[0:8], counter 0).
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field

from analyzer.wire import MINIDUMP_HEADERS, build_kdk

PAGE = 4096


def round_page(n: int) -> int:
    return -(-n // PAGE) * PAGE


# -- the message buffer ----------------------------------------------------------------------

BOOT = ("---<<BOOT>>---\n"
        "Copyright (c) 1992-2024 The FreeBSD Project.\n"
        "FreeBSD 14.1-RELEASE releng/14.1-n267679-10e31f0946d8 GENERIC amd64\n"
        "CPU: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz (2400.06-MHz K8-class CPU)\n")
PANIC = ("Fatal trap 12: page fault while in kernel mode\n"
         "panic: page fault\n"
         "cpuid = 1\n"
         "time = 1718000000\n"
         "KDB: stack backtrace:\n"
         "#0 0xffffffff80b9002d at kdb_backtrace+0x5d\n"
         "#1 0xffffffff80b43132 at vpanic+0x132\n"
         "Uptime: 3d2h1m\n"
         "netdump in progress. searching for server...\n"
         "netdumping to 10.0.0.1 (00:11:22:33:44:55)\n"
         "Dumping 812 out of 16335 MB:")


def console_ring(size: int, wrapped: bool, filler_lines: int = 0) -> tuple[bytes, str]:
    """(ring bytes, the text oldest first): unwrapped = text then NULs; wrapped = the text
    rotated so the write position is in the middle."""
    device = "".join(f"da{i}: <ATA disk {i}> Fixed Direct Access SPC-3 SCSI device\n"
                     for i in range(filler_lines))
    text = (BOOT + device + PANIC).encode()
    if not wrapped:
        assert len(text) <= size
        return text + bytes(size - len(text)), text.decode()
    assert len(text) > size, "not enough text to wrap"
    kept = text[-size:]
    pos = size // 3  # where the write position lands
    ring = kept[size - pos:] + kept[: size - pos]
    return ring, kept.decode()


# -- minidumps -------------------------------------------------------------------------------

@dataclass
class Minidump:
    image: bytes
    pages_offset: int
    page_pa: list[int]  # physical address of the k-th dumped page
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)


def build_minidump(arch: str = "amd64", version: int = 3, ring: bytes = b"",
                   avail: list[tuple[int, int]] | None = None, bits: list[int] = (),
                   kernbase: int = 0xFFFFFFFF80000000, pmap_pages: int = 1) -> Minidump:
    """A minidump laid out as dump-formats.md §4-§5 says, pages filled with their own PA."""
    avail = avail if avail is not None else [(0, 0x9F000), (0x100000, 0x4000000)]
    nbits = max(bits, default=0) + 1
    bitmap = bytearray(round_page(max(8, -(-nbits // 64) * 8)))
    for b in bits:
        bitmap[b // 8] |= 1 << (b % 8)
    da = b"".join(struct.pack("<QQ", s, e) for s, e in avail) + bytes(16)
    hdr = dict(magic=f"minidump FreeBSD/{arch}".encode(), version=version,
               msgbufsize=len(ring), bitmapsize=len(bitmap), pmapsize=pmap_pages * PAGE,
               kernbase=kernbase, dmapbase=0xFFFFF80000000000, dmapend=0xFFFFFC0000000000,
               dumpavailsize=len(da) if version >= 3 else 0)
    if arch == "arm64":
        hdr["dmapphys"] = 0x40000000
    head = MINIDUMP_HEADERS[arch].build(**hdr)
    parts = [("header", head.ljust(PAGE, b"\0")), ("msgbuf", ring.ljust(round_page(len(ring)),
                                                                        b"\0"))]
    if version >= 3:
        parts.append(("dump_avail", da.ljust(round_page(len(da)), b"\0")))
    pmap = b"".join(struct.pack("<Q", (0x200000 * i) | 0x83) for i in range(pmap_pages * 512))
    parts += [("bitmap", bytes(bitmap)), ("pmap", pmap)]
    page_pa = [bit_to_pa(b, avail if version >= 3 else None) for b in sorted(bits)]
    pages = b"".join(struct.pack("<Q", pa) * (PAGE // 8) for pa in page_pa)
    parts.append(("pages", pages))
    sections, pos = {}, 0
    for name, data in parts:
        sections[name] = (pos, len(data))
        pos += len(data)
    return Minidump(b"".join(d for _, d in parts), sections["pages"][0], page_pa, sections)


def bit_to_pa(bit: int, avail: list[tuple[int, int]] | None) -> int:
    """The physical address of a bitmap bit, walking dump_avail one range at a time."""
    if avail is None:
        return bit * PAGE
    for start, end in avail:
        n = -(-end // PAGE) - start // PAGE
        if bit < n:
            return start // PAGE * PAGE + bit * PAGE
        bit -= n
    raise ValueError("bit past dump_avail")


def lost_pa(md: Minidump, missing: list[tuple[int, int]]) -> list[list[int]]:
    """Brute force: every dumped page a missing byte touches, as coalesced PA ranges."""
    lost = sorted({md.page_pa[k] for a, b in missing for k in range(len(md.page_pa))
                   if a < md.pages_offset + (k + 1) * PAGE and b > md.pages_offset + k * PAGE})
    out: list[list[int]] = []
    for pa in lost:
        if out and out[-1][1] == pa:
            out[-1][1] = pa + PAGE
        else:
            out.append([pa, pa + PAGE])
    return out


# -- EKCD ------------------------------------------------------------------------------------

def rsa_pair(bits: int = 2048):
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def pem(private_key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return private_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption())


def wrap(public_key, key: bytes, oaep: bool = True) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    pad = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None) \
        if oaep else padding.PKCS1v15()
    return public_key.encrypt(key, pad)


def encrypt(encryption: int, key: bytes, iv: bytes, data: bytes) -> bytes:
    """As the kernel: AES-256-CBC chained over 4096-byte chunks, or one ChaCha20 stream."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    if encryption == 2:
        enc = Cipher(algorithms.ChaCha20(key[:32], bytes(8) + iv[:8]), mode=None).encryptor()
        return enc.update(data)
    out, prev = [], iv[:16]
    for pos in range(0, len(data), PAGE):
        enc = Cipher(algorithms.AES(key[:32]), modes.CBC(prev)).encryptor()
        chunk = enc.update(data[pos:pos + PAGE]) + enc.finalize()
        out.append(chunk)
        prev = chunk[-16:]
    return b"".join(out)


@dataclass
class Ekcd:
    private_pem: bytes
    key_file: bytes
    key: bytes
    iv: bytes


def ekcd(encryption: int, oaep: bool = True, private_key=None, seed: bytes | None = None) -> Ekcd:
    private_key = private_key or rsa_pair()
    key = seed or os.urandom(64)
    iv = os.urandom(32)
    blob = build_kdk(encryption, iv, wrap(private_key.public_key(), key, oaep))
    return Ekcd(pem(private_key), blob, key, iv)


# -- compressed streams ------------------------------------------------------------------------

def kernel_gzip(data: bytes, pad_to: int = PAGE) -> tuple[bytes, int]:
    """(stream padded to a block, its length without padding): the kernel's minimal header."""
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = c.compress(data) + c.flush()
    stream = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + body +
              struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))
    return stream + bytes(-len(stream) % pad_to), len(stream)


def zeroed(data: bytes, missing: list[tuple[int, int]]) -> bytes:
    """The file a capture with these holes leaves: the missing bytes read as zeros."""
    buf = bytearray(data)
    for a, b in missing:
        buf[a:b] = bytes(len(buf[a:b]))
    return bytes(buf)


def write_dump_dir(directory, host: str, index: int, vmcore: bytes, kind: str = "vmcore",
                   suffix: str = "", missing=(), key: bytes | None = None,
                   key_missing=()) -> dict[str, str]:
    """The files extract writes for one dump (info text with its Missing lines)."""
    from analyzer.recovery.infofile import missing_lines
    paths = {"vmcore": os.path.join(directory, f"{kind}.{host}.{index}{suffix}"),
             "info": os.path.join(directory, f"info.{host}.{index}")}
    with open(paths["vmcore"], "wb") as f:
        f.write(zeroed(vmcore, list(missing)))
    if key is not None:
        paths["key"] = os.path.join(directory, f"key.{host}.{index}")
        with open(paths["key"], "wb") as f:
            f.write(zeroed(key, list(key_missing)))
    text = f"Dump from {host} [{host}]\n".encode()
    if missing or key_missing:
        text += missing_lines(list(missing)) + missing_lines(list(key_missing), "key")
        text += b"Dump incomplete: the capture lacks part of the dump\n"
    else:
        text += b"Dump complete\n"
    with open(paths["info"], "wb") as f:
        f.write(text)
    return paths


def send_dump(body: bytes, key_file: bytes | None = None, kdh: bool = True,
              lose: set[int] = frozenset(), compression: int = 0, dumplength=None,
              path: bytes = b"crash") -> bytes:
    """A pcap of one netdump session carrying ``body`` (packets whose index is in ``lose``
    never arrive), optionally with an EKCD key and a KDH."""
    from analyzer.wire import MsgType, build_kdh
    from tests.support.capture_builders import ether, pcap, udp_ip
    from tests.support.datagrams import Conversation
    c = Conversation()
    c.herald(path)
    if key_file is not None:
        for o in range(0, len(key_file), 1448):
            d = c.send(MsgType.EKCD_KEY, offset=o, payload=key_file[o:o + 1448])
            c.ack(int.from_bytes(d.payload[4:8], "big"))
    for i, off in enumerate(range(0, len(body), 1448)):
        d = c.send(MsgType.VMCORE, offset=off, payload=body[off:off + 1448])
        if i in lose:
            c.items.pop()
        else:
            c.ack(int.from_bytes(d.payload[4:8], "big"))
    if kdh:
        raw = build_kdh(dumplength=len(body) if dumplength is None else dumplength,
                        architecture="amd64", architectureversion=2, blocksize=4096,
                        hostname="web1", versionstring="FreeBSD 14.1-RELEASE amd64\n",
                        panicstring="page fault", dumptime=1_700_000_000,
                        dumpkeysize=4096 if key_file is not None else 0,
                        compression=compression, dumpextent=len(body))
        d = c.send(MsgType.KDH, payload=raw)
        c.ack(int.from_bytes(d.payload[4:8], "big"))
    c.finished()
    return pcap((d.ts, ether(udp_ip(d.sport, d.dport, d.payload, d.src, d.dst)))
                for d in c.items)
