"""Tiny builders for capture files and frames, used by the capture reader tests.

Everything returns bytes; nothing here reads the code under test.
"""
from __future__ import annotations

import gzip
import socket
import struct

CLIENT = socket.inet_aton("10.0.0.2")
SERVER = socket.inet_aton("10.0.0.1")
CLIENT_MAC = bytes.fromhex("02000000aa01")
SERVER_MAC = bytes.fromhex("02000000bb01")


# -- checksums --------------------------------------------------------------------------

def csum(data: bytes) -> int:
    """Internet checksum (RFC 1071), computed the slow obvious way."""
    if len(data) % 2:
        data += b"\x00"
    s = 0
    for i in range(0, len(data), 2):
        s += data[i] << 8 | data[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# -- layer 3/4 ----------------------------------------------------------------------------

def udp(sport: int, dport: int, payload: bytes, src: bytes = CLIENT, dst: bytes = SERVER,
        checksum: int | str = "auto", length: int | None = None) -> bytes:
    """UDP header + payload. checksum: "auto", "bad", "offload" or a fixed value (0 = none)."""
    ulen = 8 + len(payload) if length is None else length
    hdr = struct.pack("!HHHH", sport, dport, ulen, 0)
    if checksum in ("auto", "bad"):
        c = csum(src + dst + struct.pack("!BBH", 0, 17, ulen) + hdr + payload) or 0xFFFF
        if checksum == "bad":
            c ^= 0x5A5A
    elif checksum == "offload":  # pseudo-header sum only, as a sender with offload leaves it
        c = ~csum(src + dst + struct.pack("!BBH", 0, 17, ulen)) & 0xFFFF
    else:
        c = int(checksum)
    return struct.pack("!HHHH", sport, dport, ulen, c) + payload


def ipv4(payload: bytes, src: bytes = CLIENT, dst: bytes = SERVER, proto: int = 17,
         ident: int = 0, df: bool = True, mf: bool = False, frag_offset: int = 0,
         options: bytes = b"", ttl: int = 255, total_length: int | None = None,
         bad_checksum: bool = False, zero_checksum: bool = False) -> bytes:
    """IPv4 header (with options padded to 4 bytes) + payload; frag_offset in bytes."""
    options += b"\x00" * (-len(options) % 4)
    ihl = 5 + len(options) // 4
    tl = ihl * 4 + len(payload) if total_length is None else total_length
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tl, ident, flags, ttl, proto, 0, src, dst) + options
    c = 0 if zero_checksum else csum(hdr)
    if bad_checksum:
        c ^= 0x1111
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def udp_ip(sport: int, dport: int, payload: bytes, src: bytes = CLIENT, dst: bytes = SERVER,
           checksum="auto", **ip) -> bytes:
    return ipv4(udp(sport, dport, payload, src, dst, checksum), src, dst, **ip)


def fragments(ip_packet: bytes, size: int) -> list[bytes]:
    """Split an IPv4 packet (no options) into fragments of ``size`` payload bytes (multiple of 8)."""
    hdr = ip_packet[:20]
    ident = struct.unpack_from("!H", hdr, 4)[0]
    src, dst = hdr[12:16], hdr[16:20]
    payload = ip_packet[20:]
    out = []
    for off in range(0, len(payload), size):
        part = payload[off:off + size]
        out.append(ipv4(part, src, dst, ident=ident, df=False,
                        mf=off + size < len(payload), frag_offset=off))
    return out


# -- layer 2 ------------------------------------------------------------------------------

def ether(ip_packet: bytes, src: bytes = CLIENT_MAC, dst: bytes = SERVER_MAC,
          vlans: list[tuple[int, int]] = (), ethertype: int = 0x0800, pad_to: int = 60) -> bytes:
    """Ethernet frame; vlans: list of (tpid, vlan id), outermost first; padded to 60 bytes."""
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    frame = dst + src + tags + struct.pack("!H", ethertype) + ip_packet
    if len(frame) < pad_to:
        frame += b"\x00" * (pad_to - len(frame))
    return frame


def sll(ip_packet: bytes, addr: bytes = CLIENT_MAC, protocol: int = 0x0800, pkttype: int = 0) -> bytes:
    return struct.pack("!HHH", pkttype, 1, len(addr)) + addr.ljust(8, b"\x00") + struct.pack("!H", protocol) + ip_packet


def sll2(ip_packet: bytes, addr: bytes = CLIENT_MAC, protocol: int = 0x0800, ifindex: int = 2) -> bytes:
    return (struct.pack("!HHIHBB", protocol, 0, ifindex, 1, 0, len(addr)) + addr.ljust(8, b"\x00")
            + ip_packet)


def null(ip_packet: bytes, byteorder: str = "little", family: int = 2) -> bytes:
    return family.to_bytes(4, byteorder) + ip_packet


# -- classic pcap -------------------------------------------------------------------------

def pcap(records, linktype: int = 1, endian: str = "<", nano: bool = False, snaplen: int = 65535,
         magic: int | None = None, version: tuple = (2, 4), record_extra: bytes = b"",
         lengths_swapped: bool = False) -> bytes:
    """records: iterable of (ts_ns, data) or (ts_ns, data, origlen). ``magic`` and
    ``record_extra`` (bytes after each standard record header) make the modified
    (Kuznetzov) layouts; ``version`` (2, 2) with ``lengths_swapped`` the old one AIX writes."""
    if magic is None:
        magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, *version, 0, 0, snaplen, linktype)]
    for rec in records:
        ts, data = rec[0], rec[1]
        orig = rec[2] if len(rec) > 2 else len(data)
        sec, ns = divmod(ts, 1_000_000_000)
        frac = ns if nano else ns // 1000
        lengths = (orig, len(data)) if lengths_swapped else (len(data), orig)
        out.append(struct.pack(endian + "IIII", sec, frac, *lengths) + record_extra + data)
    return b"".join(out)


# -- pcapng -------------------------------------------------------------------------------

def _opt(endian: str, code: int, value: bytes) -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def block(endian: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    blen = len(body) + 12
    return struct.pack(endian + "II", btype, blen) + body + struct.pack(endian + "I", blen)


def shb(endian: str = "<", options: bytes = b"") -> bytes:
    return block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options)


def idb(endian: str = "<", linktype: int = 1, snaplen: int = 0, tsresol: int | None = None,
        tsoffset: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += _opt(endian, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += _opt(endian, 14, struct.pack(endian + "q", tsoffset))
    if opts:
        opts += _opt(endian, 0, b"")
    return block(endian, 1, struct.pack(endian + "HHI", linktype, 0, snaplen) + opts)


def epb(endian: str, iface: int, ts_units: int, data: bytes, origlen: int | None = None,
        options: bytes = b"") -> bytes:
    orig = len(data) if origlen is None else origlen
    body = struct.pack(endian + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), orig)
    body += data + b"\x00" * (-len(data) % 4) + options
    return block(endian, 6, body)


def spb(endian: str, data: bytes, origlen: int | None = None) -> bytes:
    orig = len(data) if origlen is None else origlen
    return block(endian, 3, struct.pack(endian + "I", orig) + data)


def pb(endian: str, iface: int, ts_units: int, data: bytes) -> bytes:
    body = struct.pack(endian + "HHIIII", iface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), len(data))
    return block(endian, 2, body + data)


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


# -- netdump-ish payloads -----------------------------------------------------------------

def msg(mtype: int, seqno: int, offset: int = 0, payload: bytes = b"") -> bytes:
    return struct.pack(">IIQII", mtype, seqno, offset, len(payload), 0) + payload


def ack(seqno: int) -> bytes:
    return struct.pack(">I", seqno)


def write(tmp_path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)
