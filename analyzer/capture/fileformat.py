"""Recognising a capture file: magic numbers, file headers, the first pcapng blocks."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from analyzer.anomalies import Kind
from analyzer.capture.links import SUPPORTED_LINKTYPES, linktype_name
from analyzer.capture.source import CaptureError, GzipSource, open_source
from analyzer.datagram import Notice

MAX_CAPLEN = 256 * 1024  # no record may hold more (Wireshark's limit for most link types)
MAX_BLOCK = 16 * 1024 * 1024  # pcapng blocks larger than this are taken as corruption
SNIFF = 64 * 1024  # bytes read when a file is opened
STREAM_SNIFF = 28  # from a pipe: no more than the file header (data may come slowly)

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_MODIFIED = 0xA1B2CD34  # Alexey Kuznetzov's patched libpcap: longer record headers
# AIX's libpcap writes version 2.2, its own interface type numbers and nanosecond times
AIX_LINKTYPES = {6: 1, 9: 6, 15: 10, 24: 0}  # ifType -> LINKTYPE (Ethernet, Token Ring, FDDI, loopback)
SHB_TYPE = 0x0A0D0D0A
BOM_LE = b"\x4d\x3c\x2b\x1a"
BOM_BE = b"\x1a\x2b\x3c\x4d"

_PCAP_HDR = struct.Struct("IHHiIII")  # magic, major, minor, zone, sigfigs, snaplen, network


@dataclass
class Opened:
    path: str
    source: Any
    size: int  # bytes on disk
    fmt: str  # "pcap" or "pcapng"
    buf: bytes  # first bytes of the (decompressed) capture
    pos: int  # where the walker starts in ``buf``
    endian: str = "<"
    nano: bool = False
    snaplen: int = 0
    linktype: int = 0
    compressed: bool = False
    notes: list = field(default_factory=list)  # notices to hand on before the first frame
    record_header: int = 16  # bytes of a pcap record header
    lengths_swapped: str | None = None  # pcap before 2.3: caplen and wirelen change places
    stream: bool = False  # a pipe, FIFO or device: read once, in order, never seeked
    started: bool = False  # a walker has begun reading past ``buf``
    decoded: frozenset = SUPPORTED_LINKTYPES

    def close(self) -> None:
        _HELD.pop(self.path, None)
        self.source.close()

    def release(self) -> None:
        """Done with it for now: a file is closed (it is opened again to be read); a stream
        cannot be opened twice, so it is kept, to be handed to the next open of its path."""
        if self.stream and not self.started:
            _HELD[self.path] = self
        else:
            self.close()


_HELD: dict[str, Opened] = {}  # streams opened and recognised, not yet read


def _read_at_least(src, n: int) -> bytes:
    parts = []
    got = 0
    while got < n:
        data = src.read(n - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def open_capture(path: str, follow=None, newer=None, f=None) -> Opened:
    """Open (or take the open file ``f`` of) and recognise one capture file; raise
    CaptureError when it cannot be used. ``follow``/``newer``: read it as it is written
    (see ``follow.py``)."""
    held = _HELD.pop(path, None)
    if held is not None:
        return held
    src, size, stream = open_source(path, follow, newer, f)
    try:
        o = _recognise(path, src, size, STREAM_SNIFF if stream or follow else SNIFF)
    except BaseException:
        src.close()
        raise
    o.stream = stream
    return o


def _recognise(path: str, src, size: int, sniff: int) -> Opened:
    compressed = isinstance(src, GzipSource)
    what = "gzip-compressed file" if compressed else "file"
    buf = _read_at_least(src, sniff)
    if len(buf) < 4:
        if compressed and src.error:
            raise CaptureError(f"{path}: unreadable gzip data: {src.error}")
        if not buf:
            raise CaptureError(f"{path}: empty {what}")
        raise CaptureError(f"{path}: {what} too short to be a capture ({len(buf)} bytes)")
    magic4 = buf[:4]
    for endian in "<>":
        (magic,) = struct.unpack(endian + "I", magic4)
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_MODIFIED):
            return _pcap_header(path, src, size, buf, endian, magic, compressed)
    if struct.unpack("<I", magic4)[0] == SHB_TYPE:
        return _pcapng_header(path, src, size, buf, compressed)
    raise CaptureError(
        f"{path}: not a pcap or pcapng capture{' inside the gzip data' if compressed else ''} "
        f"(starts with {magic4.hex(' ')})")


def _pcap_header(path, src, size, buf, endian, magic, compressed) -> Opened:
    if len(buf) < 24:
        raise CaptureError(f"{path}: pcap file header cut short ({len(buf)} of 24 bytes)")
    _magic, major, minor, _zone, _sig, snaplen, network = struct.unpack_from(endian + _PCAP_HDR.format, buf)
    if major != 2:
        raise CaptureError(f"{path}: unsupported pcap version {major}.{minor}")
    nano = magic == PCAP_MAGIC_NS
    lt = network & 0xFFFF  # upper bits may carry FCS information
    if minor == 2 and lt in AIX_LINKTYPES:  # as Wireshark tells AIX's files apart
        lt = AIX_LINKTYPES[lt]
        nano = True
    o = Opened(path, src, size, "pcap", buf, 24, endian=endian, nano=nano, snaplen=snaplen,
               linktype=lt, compressed=compressed,
               lengths_swapped="yes" if minor < 3 else "maybe" if minor == 3 else None)
    if magic == PCAP_MAGIC_MODIFIED:
        o.record_header = _modified_record_header(buf, endian)
    if lt not in SUPPORTED_LINKTYPES:
        o.notes.append(Notice(Kind.UNSUPPORTED_LINK, 1,
                              f"{path} has {linktype_name(lt)}, which is not read: its frames "
                              f"are counted, not decoded"))
    return o


def _modified_record_header(buf: bytes, endian: str) -> int:
    """24 bytes (the last of the patches: ifindex, protocol, packet type) unless the second
    record only makes sense with the 28 of the one before it (two CPU bytes and padding)."""
    rec = struct.Struct(endian + "IIII")
    for hlen in (24, 28):
        pos = 24
        ok = True
        for _ in range(2):
            if pos + hlen > len(buf):
                break
            _s, usec, caplen, wirelen = rec.unpack_from(buf, pos)
            if caplen > MAX_CAPLEN or caplen > wirelen or usec >= 1_000_000:
                ok = False
                break
            pos += hlen + caplen
        if ok:
            return hlen
    return 24


def _pcapng_header(path, src, size, buf, compressed) -> Opened:
    if len(buf) < 28:
        raise CaptureError(f"{path}: pcapng section header cut short ({len(buf)} bytes)")
    bom = buf[8:12]
    if bom == BOM_LE:
        endian = "<"
    elif bom == BOM_BE:
        endian = ">"
    else:
        raise CaptureError(f"{path}: pcapng section header with a bad byte-order magic ({bom.hex(' ')})")
    blen, _bom, major, minor = struct.unpack_from(endian + "IIHH", buf, 4)
    # interfaces of link types not decoded are skipped with a notice when they come
    # (pcapng.py): a file is never refused for its first interface
    if major != 1:
        raise CaptureError(f"{path}: unsupported pcapng version {major}.{minor}")
    if blen < 28 or blen % 4 or blen > MAX_BLOCK:
        raise CaptureError(f"{path}: pcapng section header has a bad length ({blen})")
    return Opened(path, src, size, "pcapng", buf, 0, endian=endian, compressed=compressed)
