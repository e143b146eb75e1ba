"""Captures of netdump traffic built from the spec alone, for the contract tests.

Deliberately independent of ``analyzer`` and of ``tests/support``: the layouts are written
again from netdump-protocol.md (§2 framing, §3 header and ACK, §4 order of events, §5.1
chunking, §7 KDH, §8 key) so that a shared wrong assumption cannot hide.
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field

HERALD, FINISHED, VMCORE, KDH, EKCD_KEY = 1, 2, 3, 4, 5
SERVER_PORT, CLIENT_PORT = 20023, 20024
PAGE = 4096

CLIENT_MAC = bytes.fromhex("02000000aa01")
SERVER_MAC = bytes.fromhex("02000000bb02")


# ---- KDH (§7.2, version 4, big-endian, parity XORs the 128 words to 0) -------------------

def kdh(dumplength: int, *, arch: str = "amd64", archver: int = 2, dumptime: int = 1_700_000_000,
        keysize: int = 0, hostname: str = "crashbox", version: str =
        "FreeBSD 14.1-RELEASE releng/14.1-n267679-10e31f0946d8 GENERIC amd64\n",
        panic: str = "page fault", compression: int = 0, dumpextent: int | None = None,
        bad_parity: bool = False) -> bytes:
    raw = bytearray(512)
    raw[0:20] = b"FreeBSD Kernel Dump".ljust(20, b"\0")
    raw[20:32] = arch.encode().ljust(12, b"\0")
    struct.pack_into(">IIQQII", raw, 32, 4, archver, dumplength, dumptime, keysize, 4096)
    raw[64:128] = hostname.encode().ljust(64, b"\0")
    raw[128:320] = version.encode()[:191].ljust(192, b"\0")
    raw[320:495] = panic.encode()[:174].ljust(175, b"\0")
    raw[495] = compression
    struct.pack_into(">Q", raw, 496, dumplength if dumpextent is None else dumpextent)
    parity = 0
    for (word,) in struct.iter_unpack(">I", bytes(raw)):
        parity ^= word
    struct.pack_into(">I", raw, 508, parity ^ (1 if bad_parity else 0))
    return bytes(raw)


# ---- frames (§2: Ethernet, IPv4 with ID 0, DF, TTL 255, UDP with checksum) -------------

def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _ip(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes,
              smac: bytes = CLIENT_MAC, dmac: bytes = SERVER_MAC) -> bytes:
    ulen = 8 + len(payload)
    pseudo = _ip(src) + _ip(dst) + struct.pack(">BBH", 0, 17, ulen)
    udp = struct.pack(">HHHH", sport, dport, ulen, 0) + payload
    c = _csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack(">H", c) + udp[8:]
    iph = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0x4000, 255, 17, 0,
                      _ip(src), _ip(dst))
    iph = iph[:10] + struct.pack(">H", _csum(iph)) + iph[12:]
    return dmac + smac + b"\x08\x00" + iph + udp


def message(mtype: int, seqno: int, offset: int, payload: bytes = b"") -> bytes:
    """§3.1: type, seqno, offset (u64), len, aux2 (0), all big-endian, then the payload."""
    return struct.pack(">IIQII", mtype, seqno, offset, len(payload), 0) + payload


def ack(seqno: int) -> bytes:
    return struct.pack(">I", seqno)


# ---- a dump session, as a kernel and netdumpd exchange it ------------------------------

@dataclass
class Session:
    """One dump. ``lose`` is a set of (type, offset) whose every copy the capture misses,
    with its ACK (a hole that no resend fills: the client gave up, or the capture lacks it);
    ``drop_finished`` ends the dump without FINISHED."""
    client: str = "192.0.2.7"
    server: str = "192.0.2.1"
    server_port: int = 40001
    dump: bytes = b""
    kdh: bytes | None = None
    key: bytes | None = None  # the 4096-byte key file contents
    key_first: bool = False  # current main: the key right after the HERALD
    path: str = ""
    mtu_payload: int = 1448
    lose: set = field(default_factory=set)
    lose_seqnos: set = field(default_factory=set)
    resend: set = field(default_factory=set)  # (type, offset): its ACK lost past the capture
    drop_finished: bool = False
    drop_kdh: bool = False
    send_len: int | None = None  # how far the VMCORE stream goes (default: whole dump)


def session_frames(s: Session, t0: float = 1000.0) -> list[tuple[float, bytes]]:
    """(time, frame) of the whole exchange, in order: each call's burst, then its ACKs."""
    out: list[tuple[float, bytes]] = []
    t = [t0]
    seq = [1]

    def tick(dt=0.0001):
        t[0] += dt
        return t[0]

    def call(mtype: int, start: int, data: bytes, first: bool = False):
        pieces = [(start + i, data[i:i + s.mtu_payload])
                  for i in range(0, len(data), s.mtu_payload)] or [(start, b"")]
        sent, again = [], []
        for off, chunk in pieces:
            seqno = seq[0]
            seq[0] += 1
            if (mtype, off) in s.lose or seqno in s.lose_seqnos:
                continue
            dport = SERVER_PORT if first else s.server_port
            out.append((tick(), udp_frame(s.client, s.server, CLIENT_PORT, dport,
                                          message(mtype, seqno, off, chunk))))
            sent.append(seqno)
            if (mtype, off) in s.resend:
                again.append(out[-1][1])
        for seqno in sent:
            out.append((tick(), udp_frame(s.server, s.client, s.server_port, CLIENT_PORT,
                                          ack(seqno), SERVER_MAC, CLIENT_MAC)))
        if again:  # the client's poll timeout (~1 s), then the unACKed copies once more
            tick(1.0)
            for frame in again:
                out.append((tick(), frame))
                seqno = struct.unpack_from(">I", frame, 14 + 20 + 8 + 4)[0]
                out.append((tick(), udp_frame(s.server, s.client, s.server_port, CLIENT_PORT,
                                              ack(seqno), SERVER_MAC, CLIENT_MAC)))

    herald = s.path.encode() + b"\0" if s.path else b""
    call(HERALD, 0, herald, first=True)
    if s.key is not None and s.key_first:
        call(EKCD_KEY, 0, s.key)
    end = len(s.dump) if s.send_len is None else s.send_len
    for base in range(0, end, 65536):
        call(VMCORE, base, s.dump[base:min(end, base + 65536)])
    if s.kdh is not None and not s.drop_kdh:
        call(KDH, 0, s.kdh)
    if s.key is not None and not s.key_first:
        call(EKCD_KEY, 0, s.key)
    if not s.drop_finished:
        call(FINISHED, 0, b"")
    return out


# ---- capture files ---------------------------------------------------------------------

def pcap_bytes(frames, snaplen: int = 262144, linktype: int = 1,
               magic: int = 0xA1B2C3D4) -> bytes:
    """Classic little-endian pcap (µs), or the Kuznetzov layout with ``magic`` a1b2cd34
    (each record header then carries 8 more bytes: ifindex, protocol, pkt_type, pad)."""
    parts = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for ts, frame, *rest in frames:
        orig = rest[0] if rest else len(frame)
        sec, usec = int(ts), int(round((ts - int(ts)) * 1e6))
        parts.append(struct.pack("<IIII", sec, usec, len(frame), orig))
        if magic == 0xA1B2CD34:
            parts.append(struct.pack("<IHBB", 0, 0x0800, 0, 0))
        parts.append(frame)
    return b"".join(parts)


def _block(btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def pcapng_bytes(frames, linktypes=(1,)) -> bytes:
    """One section, one interface per link type; frames may name their interface."""
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    for lt in linktypes:
        out.append(_block(1, struct.pack("<HHI", lt, 0, 0)))
    for ts, frame, *rest in frames:
        iface = rest[0] if rest else 0
        us = int(round(ts * 1e6))
        out.append(_block(6, struct.pack("<IIIII", iface, us >> 32, us & 0xFFFFFFFF,
                                         len(frame), len(frame)) + frame))
    return b"".join(out)


def write_capture(path, sessions, *, kind: str = "pcap", gz: bool = False, **kw) -> bytes:
    frames: list[tuple[float, bytes]] = []
    t0 = 1000.0
    for s in sessions:
        got = session_frames(s, t0)
        frames += got
        t0 = got[-1][0] + 1.0 if got else t0
    data = pcap_bytes(frames, **kw) if kind == "pcap" else pcapng_bytes(frames, **kw)
    if gz:
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return data
