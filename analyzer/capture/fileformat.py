"""Recognising a capture file: magic numbers, file headers, the first pcapng blocks."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from analyzer.capture.decode import LINKTYPE_NAMES, SUPPORTED_LINKTYPES
from analyzer.capture.source import CaptureError, GzipSource, open_source

MAX_CAPLEN = 256 * 1024  # no record may hold more (Wireshark's limit for most link types)
MAX_BLOCK = 16 * 1024 * 1024  # pcapng blocks larger than this are taken as corruption
SNIFF = 64 * 1024  # bytes read when a file is opened

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
SHB_TYPE = 0x0A0D0D0A
BOM_LE = b"\x4d\x3c\x2b\x1a"
BOM_BE = b"\x1a\x2b\x3c\x4d"

_PCAP_HDR = struct.Struct("IHHiIII")  # magic, major, minor, zone, sigfigs, snaplen, network


@dataclass
class Opened:
    path: str
    source: object
    size: int  # bytes on disk
    fmt: str  # "pcap" or "pcapng"
    buf: bytes  # first bytes of the (decompressed) capture
    pos: int  # where the walker starts in ``buf``
    endian: str = "<"
    nano: bool = False
    snaplen: int = 0
    linktype: int = 0
    compressed: bool = False
    notes: list = field(default_factory=list)

    def close(self) -> None:
        self.source.close()


def linktype_name(lt: int) -> str:
    return LINKTYPE_NAMES.get(lt, f"link type {lt}")


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


def open_capture(path: str) -> Opened:
    """Open and recognise one capture file; raise CaptureError when it cannot be used."""
    src, size = open_source(path)
    try:
        return _recognise(path, src, size)
    except BaseException:
        src.close()
        raise


def _recognise(path: str, src, size: int) -> Opened:
    compressed = isinstance(src, GzipSource)
    what = "gzip-compressed file" if compressed else "file"
    buf = _read_at_least(src, SNIFF)
    if len(buf) < 4:
        if compressed and src.error:
            raise CaptureError(f"{path}: unreadable gzip data: {src.error}")
        if not buf:
            raise CaptureError(f"{path}: empty {what}")
        raise CaptureError(f"{path}: {what} too short to be a capture ({len(buf)} bytes)")
    magic4 = buf[:4]
    for endian in "<>":
        (magic,) = struct.unpack(endian + "I", magic4)
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            return _pcap_header(path, src, size, buf, endian, magic == PCAP_MAGIC_NS, compressed)
    if struct.unpack("<I", magic4)[0] == SHB_TYPE:
        return _pcapng_header(path, src, size, buf, compressed)
    if magic4 in (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34"):
        raise CaptureError(f"{path}: modified (Kuznetzov) pcap format is not supported")
    raise CaptureError(
        f"{path}: not a pcap or pcapng capture{' inside the gzip data' if compressed else ''} "
        f"(starts with {magic4.hex(' ')})")


def _pcap_header(path, src, size, buf, endian, nano, compressed) -> Opened:
    if len(buf) < 24:
        raise CaptureError(f"{path}: pcap file header cut short ({len(buf)} of 24 bytes)")
    _magic, major, minor, _zone, _sig, snaplen, network = struct.unpack_from(endian + _PCAP_HDR.format, buf)
    if major != 2:
        raise CaptureError(f"{path}: unsupported pcap version {major}.{minor}")
    lt = network & 0xFFFF  # upper bits may carry FCS information
    if lt not in SUPPORTED_LINKTYPES:
        raise CaptureError(f"{path}: unsupported link type {lt} (no IPv4 frames can be read)")
    return Opened(path, src, size, "pcap", buf, 24, endian=endian, nano=nano, snaplen=snaplen,
                  linktype=lt, compressed=compressed)


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
    if major != 1:
        raise CaptureError(f"{path}: unsupported pcapng version {major}.{minor}")
    if blen < 28 or blen % 4 or blen > MAX_BLOCK:
        raise CaptureError(f"{path}: pcapng section header has a bad length ({blen})")
    # Look at the interfaces described before the first packet: if there are some and none
    # has a link type we can read, the file is of no use.
    pos = 0
    lts = []
    end_hdr = struct.Struct(endian + "II")
    while pos + 12 <= len(buf):
        btype, bl = end_hdr.unpack_from(buf, pos)
        if btype == SHB_TYPE and pos:
            break
        if bl < 12 or bl % 4 or pos + bl > len(buf):
            break
        if btype == 1 and bl >= 20:
            lts.append(struct.unpack_from(endian + "H", buf, pos + 8)[0])
        elif btype in (2, 3, 6):
            break
        pos += bl
    if lts and not any(lt in SUPPORTED_LINKTYPES for lt in lts):
        names = ", ".join(sorted({str(lt) for lt in lts}))
        raise CaptureError(f"{path}: unsupported link type {names} (no IPv4 frames can be read)")
    return Opened(path, src, size, "pcapng", buf, 0, endian=endian, compressed=compressed)
