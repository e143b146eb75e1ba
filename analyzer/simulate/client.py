"""What a FreeBSD netdump client of each generation hands its transport, call by call.

Generations (protocol reference §4.2):

* ``"12"``  12.x ``netdump_send``: per-packet payload min(4096, MTU-52); no buffering, one
  send call per dumper write; EKCD key after the KDH.
* ``"13"``  13.x / main 2020-21 (``debugnet_send``): payload MTU-52, contiguous writes merged
  into a 64 KiB buffer that is sent when the next write would not fit; key after the KDH.
* ``"main"`` current main: like 13, but the EKCD key goes right after the HERALD.

A call is (type, start offset, bytes); ``packetize`` splits it into packets exactly as the
kernel does. Sequence numbers are assigned by the engine (+1 per packet, HERALD = 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from analyzer.wire import DATASIZE, MsgType, build_kdh

from .ekcd import DumpKey
from .image import MAXIO, PAGE, DumpStream, _mix
from .minidump import build_image, kdh_architecture

GENERATIONS = ("12", "13", "main")
UDPIP_HDR = 28
MSG_HDR_LEN = 24

VERSION_STRINGS = {
    "12": "FreeBSD 12.4-RELEASE r372781 GENERIC\n",
    "13": "FreeBSD 13.0-RELEASE #0 releng/13.0-n244733-ea31abc261f: Fri Apr  9 04:24:09 UTC 2021\n",
    "main": "FreeBSD 15.0-CURRENT #0 main-n265390-0a3e1b4c7d21: Thu Sep 14 10:02:11 UTC 2023\n",
}


def max_payload(generation: str, mtu: int) -> int:
    n = mtu - UDPIP_HDR - MSG_HDR_LEN
    if generation == "12":
        n = min(n, DATASIZE)
    if n <= 0:
        raise ValueError(f"MTU {mtu} leaves no room for a payload")
    return n


def packetize(start: int, data: bytes, maxp: int) -> list[tuple[int, bytes]]:
    """(offset, payload) of each packet of one send call; one empty packet for empty data."""
    if not data:
        return [(start, b"")]
    return [(start + i, data[i:i + maxp]) for i in range(0, len(data), maxp)]


@dataclass
class DumpMaterial:
    """Everything one dump attempt sends, built from its spec."""

    stream: DumpStream
    herald_payload: bytes
    key_blob: bytes | None
    kdh_fields: dict

    def kdh(self) -> bytes:
        self.stream.ensure_done()
        fields = dict(self.kdh_fields)
        fields["dumplength"] = self.stream.dumplength
        return build_kdh(4, **fields)


def make_material(*, generation: str, size: int, seed: int, compress: str, encrypt: bool,
                  path: str | None, hostname: str, panic: str, dumptime: int,
                  versionstring: str | None, content: dict | None = None) -> DumpMaterial:
    """``content``: image and key options (``minidump.CONTENT_FIELDS``); default: the legacy
    image, the dump key wrapped with the simulated operator's key."""
    content = content or {}
    if versionstring is None:
        versionstring = VERSION_STRINGS[generation]
    image = build_image(size, seed, content, panic=panic, versionstring=versionstring)
    dkey = None
    if encrypt:
        # 12.x: AES-256-CBC, PKCS#1 v1.5; later: ChaCha20 by default, OAEP.
        dkey = DumpKey(_mix(seed, -9), generation, content.get("cipher"),
                       content.get("public_key"), compressed=compress != "none")
    stream = DumpStream(image, compress, dkey, stale_pad=(generation == "12"))
    key = dkey.blob if dkey is not None else None
    herald = (path.encode() + b"\0") if path else b""
    arch, archver = kdh_architecture(image)
    fields = dict(
        architecture=arch, architectureversion=archver, dumptime=dumptime,
        dumpkeysize=4096 if encrypt else 0, blocksize=4096, hostname=hostname,
        versionstring=versionstring,
        panicstring=panic, compression={"none": 0, "gzip": 1, "zstd": 2}[compress],
        dumpextent=size,
    )
    return DumpMaterial(stream, herald, key, fields)


def _writes_12(stream: DumpStream) -> Iterator[tuple[int, bytes]]:
    """The dumper writes as 12.x sends them: the compressor's final flush goes out as its
    whole 4 KiB blocks, then (dump_finish) the residual bytes as one padded block of their
    own (kern_shutdown.c); 13.0 and later merge the two in their buffer."""
    last = None
    for w in stream.writes():
        if last is not None:
            yield last
        last = w
    if last is None:
        return
    off, data = last
    if stream.dumplength != stream.wire_length and len(data) > PAGE:
        yield off, data[:-PAGE]
        last = off + len(data) - PAGE, data[-PAGE:]
    yield last


def client_calls(generation: str, material: DumpMaterial,
                 stop_after: int | None = None) -> Iterator[tuple[int, int, bytes]]:
    """The send calls of one dump attempt: (type, start offset, data).

    ``stop_after``: end the attempt (no KDH, no FINISHED) once this many VMCORE bytes have been
    handed to the transport, as when the kernel restarts the dump with a new HERALD.
    """
    if generation not in GENERATIONS:
        raise ValueError(f"unknown generation {generation!r}")
    yield MsgType.HERALD, 0, material.herald_payload
    if material.key_blob is not None and generation == "main":
        yield MsgType.EKCD_KEY, 0, material.key_blob
    sent = 0
    if generation == "12":
        for off, data in _writes_12(material.stream):
            yield MsgType.VMCORE, off, data
            sent += len(data)
            if stop_after is not None and sent >= stop_after:
                return
    else:
        buf = bytearray()
        buf_off = 0
        for off, data in material.stream.writes():
            if buf and (len(buf) + len(data) > MAXIO or buf_off + len(buf) != off):
                yield MsgType.VMCORE, buf_off, bytes(buf)
                sent += len(buf)
                buf.clear()
                if stop_after is not None and sent >= stop_after:
                    return
            if not buf:
                buf_off = off
            buf += data
        if buf:
            yield MsgType.VMCORE, buf_off, bytes(buf)
            sent += len(buf)
            if stop_after is not None and sent >= stop_after:
                return
    yield MsgType.KDH, 0, material.kdh()
    if material.key_blob is not None and generation != "main":
        yield MsgType.EKCD_KEY, 0, material.key_blob
    yield MsgType.FINISHED, 0, b""
