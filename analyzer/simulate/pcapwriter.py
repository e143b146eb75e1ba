"""Streaming capture writer: classic pcap and pcapng, optionally gzip-compressed.

Frames come in as ``(ts_ns, role, src, dst, sport, dport, payload, ...)`` (role 0: client
UDP, 1: server UDP, 2: ICMP message in ``payload``) and are framed as IPv4 (20-byte header;
client packets ID 0, DF, TTL 255 as the netdump client builds them; server packets TTL 64 with
an incrementing ID) with correct IP and UDP checksums, then wrapped in the chosen link layer:

    ethernet (1, optional 802.1Q ``vlan`` or 802.1ad+802.1Q ``qinq`` tags; short frames padded
    to 60 bytes), sll (113), sll2 (276), raw (101), ipv4 (228), null (0, BSD loopback).

pcapng files may carry several interface description blocks with different link types and
time resolutions (``interfaces=[("ethernet", "us"), ("sll2", "ns")]``): client frames go on
the first interface, server frames on the second. Output is produced in bounded memory with
large buffered writes; headers are cached per flow, so the clean path is fast.
"""
from __future__ import annotations

import gzip as _gzip
import os
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

LINKTYPES = {"ethernet": 1, "vlan": 1, "qinq": 1, "sll": 113, "sll2": 276, "raw": 101,
             "ipv4": 228, "null": 0}
_FLUSH = 4 << 20


def _csum_int(data: bytes) -> int:
    """Ones'-complement sum of data (zero-padded to even length), modulo 0xFFFF."""
    v = int.from_bytes(data, "big")
    if len(data) & 1:
        v <<= 8
    return v % 0xFFFF


def _finish(r: int) -> int:
    """Checksum field from a sum modulo 0xFFFF (0 when the sum is all ones)."""
    return 0xFFFF - r if r else 0


def ip_header(src: bytes, dst: bytes, proto: int, payload_len: int, ttl: int = 64,
              ident: int = 0, df: bool = False, frag: int = 0, mf: bool = False) -> bytes:
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag >> 3)
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, flags, ttl, proto,
                      0, src, dst)
    cs = _finish(_csum_int(hdr))
    return hdr[:10] + struct.pack(">H", cs) + hdr[12:]


def udp_header(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    ulen = 8 + len(payload)
    r = (_csum_int(src + dst) + 17 + 2 * ulen + sport + dport + _csum_int(payload)) % 0xFFFF
    cs = 0xFFFF - r if r else 0xFFFF  # a computed 0 is sent as 0xFFFF
    return struct.pack(">HHHH", sport, dport, ulen, cs)


def _mac(ip: bytes) -> bytes:
    return b"\x02\x00" + ip


class CaptureWriter:
    def __init__(self, out: str | BinaryIO, fmt: str = "pcap", link: str = "ethernet",
                 snaplen: int = 262144, tsres: str = "us", byteorder: str = "<",
                 gzip: bool = False, fragment: int | None = None,
                 interfaces: list[tuple[str, str]] | None = None):
        if fmt not in ("pcap", "pcapng"):
            raise ValueError("format must be pcap or pcapng")
        if byteorder not in ("<", ">"):
            raise ValueError("byteorder must be '<' or '>'")
        self.fmt = fmt
        self.bo = byteorder
        self.snaplen = snaplen
        self.fragment = fragment
        if interfaces and fmt != "pcapng":
            raise ValueError("several interfaces need pcapng")
        self.ifaces = list(interfaces) if interfaces else [(link, tsres)]
        for lk, res in self.ifaces:
            if lk not in LINKTYPES:
                raise ValueError(f"unknown link type {lk!r}")
            if res not in ("us", "ns"):
                raise ValueError("tsres must be us or ns")
        self._own = isinstance(out, (str, bytes)) or hasattr(out, "__fspath__")
        raw = open(out, "wb") if self._own else out
        self._raw = raw
        self._fh = _gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                  compresslevel=6) if gzip else raw
        self._parts: list[bytes] = []
        self._pending = 0
        self._link_cache: dict = {}
        self._ip_id = 0x1000
        self._frag_id = 0x8000
        self._psum: dict = {}
        self.frames = 0
        self.bytes = 0
        self._rec = struct.Struct(byteorder + "IIII")
        self._ipst = struct.Struct(">BBHHHBBH4s4s")
        self._udpst = struct.Struct(">HHHH")
        self._ipsum: dict = {}
        self._multi = len(self.ifaces) > 1
        self._pcap = fmt == "pcap"
        self._ns = [res == "ns" for _, res in self.ifaces]
        self._ether = [lk in ("ethernet", "vlan", "qinq") for lk, _ in self.ifaces]
        trailer = struct.Struct(byteorder + "I")
        self._trail = [lambda n, p=p: bytes(p) + trailer.pack(n) for p in range(4)]
        self._epb = struct.Struct(byteorder + "IIIIIII")
        self._header()

    # --- file structure -------------------------------------------------------------------
    def _header(self) -> None:
        bo = self.bo
        if self.fmt == "pcap":
            lk, res = self.ifaces[0]
            magic = 0xA1B23C4D if res == "ns" else 0xA1B2C3D4
            self._put(struct.pack(bo + "IHHiIII", magic, 2, 4, 0, 0, self.snaplen, LINKTYPES[lk]))
            return
        shb_body = struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        self._put(self._block(0x0A0D0D0A, shb_body))
        for lk, res in self.ifaces:
            opts = b""
            if res == "ns":
                opts += struct.pack(bo + "HH", 9, 1) + b"\x09\0\0\0"
            else:
                opts += struct.pack(bo + "HH", 9, 1) + b"\x06\0\0\0"
            opts += struct.pack(bo + "HH", 0, 0)
            body = struct.pack(bo + "HHI", LINKTYPES[lk], 0, self.snaplen) + opts
            self._put(self._block(1, body))

    def _block(self, btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        n = 12 + len(body)
        return struct.pack(self.bo + "II", btype, n) + body + struct.pack(self.bo + "I", n)

    def _put(self, b: bytes) -> None:
        self._parts.append(b)
        self._pending += len(b)
        if self._pending >= _FLUSH:
            self._fh.write(b"".join(self._parts))
            self._parts = []
            self._pending = 0

    def close(self) -> None:
        if self._parts:
            self._fh.write(b"".join(self._parts))
            self._parts = []
        if self._fh is not self._raw:
            self._fh.close()
        if self._own:
            self._raw.close()
        else:
            self._raw.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- framing --------------------------------------------------------------------------
    def _link(self, iface: int, role: int, src: bytes, dst: bytes) -> bytes:
        key = (iface, role, src, dst)
        hdr = self._link_cache.get(key)
        if hdr is not None:
            return hdr
        lk = self.ifaces[iface][0]
        outgoing = role != 0  # the capture host is the server
        if lk in ("ethernet", "vlan", "qinq"):
            hdr = _mac(dst) + _mac(src)
            if lk == "vlan":
                hdr += struct.pack(">HH", 0x8100, 100)
            elif lk == "qinq":
                hdr += struct.pack(">HHHH", 0x88A8, 200, 0x8100, 100)
            hdr += b"\x08\x00"
        elif lk == "sll":
            hdr = struct.pack(">HHH", 4 if outgoing else 0, 1, 6) + _mac(src) + b"\0\0" + b"\x08\x00"
        elif lk == "sll2":
            hdr = struct.pack(">HHIHBB", 0x0800, 0, 2, 1, 4 if outgoing else 0, 6) + _mac(src) + b"\0\0"
        elif lk == "null":
            hdr = struct.pack(self.bo + "I", 2)
        else:
            hdr = b""
        self._link_cache[key] = hdr
        return hdr

    def _ip_packets(self, role: int, src: bytes, dst: bytes, sport: int, dport: int,
                    payload: bytes) -> list[bytes]:
        if role == 2:
            proto, l4 = 1, payload
        else:
            proto = 17
            ulen = 8 + len(payload)
            key = (src, dst)
            ps = self._psum.get(key)
            if ps is None:
                ps = self._psum[key] = _csum_int(src + dst) + 17
            r = (ps + 2 * ulen + sport + dport + _csum_int(payload)) % 0xFFFF
            l4 = struct.pack(">HHHH", sport, dport, ulen, 0xFFFF - r if r else 0xFFFF) + payload
        if role == 0:
            ttl, ident, df = 255, 0, True
        else:
            self._ip_id = (self._ip_id + 1) & 0xFFFF
            ttl, ident, df = 64, self._ip_id, False
        if self.fragment and 20 + len(l4) > self.fragment:
            step = (self.fragment - 20) // 8 * 8
            self._frag_id = (self._frag_id + 1) & 0xFFFF or 1
            pkts = []
            for off in range(0, len(l4), step):
                piece = l4[off:off + step]
                more = off + step < len(l4)
                pkts.append(ip_header(src, dst, proto, len(piece), ttl, self._frag_id, False,
                                      off, more) + piece)
            return pkts
        return [ip_header(src, dst, proto, len(l4), ttl, ident, df) + l4]

    def _iph(self, src: bytes, dst: bytes, proto: int, total: int, ttl: int, ident: int,
             df: bool) -> bytes:
        key = (src, dst, proto, ttl, df)
        base = self._ipsum.get(key)
        if base is None:
            base = self._ipsum[key] = (0x4500 + (0x4000 if df else 0) + (ttl << 8 | proto)
                                       + _csum_int(src + dst))
        r = (base + total + ident) % 0xFFFF
        return self._ipst.pack(0x45, 0, total, ident, 0x4000 if df else 0, ttl, proto,
                               0xFFFF - r if r else 0, src, dst)

    def write(self, frame) -> int:
        """Write one frame; returns how many UDP payload bytes the capture keeps."""
        ts, role, src, dst, sport, dport, payload = frame[:7]
        iface = (1 if role else 0) if self._multi else 0
        link = self._link_cache.get((iface, role, src, dst)) or self._link(iface, role, src, dst)
        plen = len(payload)
        if self.fragment and 28 + plen > self.fragment or role == 2:
            return self._write_slow(ts, iface, link, role, src, dst, sport, dport, payload)
        ulen = 8 + plen
        key = (src, dst)
        ps = self._psum.get(key)
        if ps is None:
            ps = self._psum[key] = _csum_int(src + dst) + 17
        v = int.from_bytes(payload, "big")
        if plen & 1:
            v <<= 8
        r = (ps + 2 * ulen + sport + dport + v) % 0xFFFF
        udph = self._udpst.pack(sport, dport, ulen, 0xFFFF - r if r else 0xFFFF)
        if role == 0:
            iph = self._iph(src, dst, 17, 20 + ulen, 255, 0, True)
        else:
            self._ip_id = ident = (self._ip_id + 1) & 0xFFFF
            iph = self._iph(src, dst, 17, 20 + ulen, 64, ident, False)
        orig = len(link) + 28 + plen
        pad = b""
        if orig < 60 and self._ether[iface]:
            pad = bytes(60 - orig)
            orig = 60
        self.frames += 1
        self.bytes += orig
        if orig > self.snaplen:
            data = (link + iph + udph + payload + pad)[: self.snaplen]
            self._record(ts, iface, data, orig)
            return max(0, min(plen, self.snaplen - len(link) - 28))
        parts = self._parts
        if self._pcap:
            if self._ns[iface]:
                parts.append(self._rec.pack(ts // 1_000_000_000, ts % 1_000_000_000, orig, orig))
            else:
                parts.append(self._rec.pack(ts // 1_000_000_000, ts // 1000 % 1_000_000, orig, orig))
            parts += (link, iph, udph, payload, pad)
        else:
            units = ts if self._ns[iface] else ts // 1000
            epad = -orig % 4
            n = 32 + orig + epad
            parts.append(self._epb.pack(6, n, iface, units >> 32, units & 0xFFFFFFFF, orig, orig))
            parts += (link, iph, udph, payload, pad, self._trail[epad](n))
        self._pending += orig + 40
        if self._pending >= _FLUSH:
            self._fh.write(b"".join(parts))
            self._parts = []
            self._pending = 0
        return plen

    def _record(self, ts: int, iface: int, data: bytes, orig: int) -> None:
        if self._pcap:
            if self._ns[iface]:
                hdr = self._rec.pack(ts // 1_000_000_000, ts % 1_000_000_000, len(data), orig)
            else:
                hdr = self._rec.pack(ts // 1_000_000_000, ts // 1000 % 1_000_000, len(data), orig)
            self._put(hdr + data)
        else:
            units = ts if self._ns[iface] else ts // 1000
            pad = -len(data) % 4
            n = 32 + len(data) + pad
            self._put(self._epb.pack(6, n, iface, units >> 32, units & 0xFFFFFFFF, len(data), orig)
                      + data + bytes(pad) + struct.pack(self.bo + "I", n))

    def _write_slow(self, ts, iface, link, role, src, dst, sport, dport, payload) -> int:
        kept = len(payload)
        pkts = self._ip_packets(role, src, dst, sport, dport, payload)
        for ipkt in pkts:
            data = link + ipkt
            if self._ether[iface] and len(data) < 60:
                data += bytes(60 - len(data))
            orig = len(data)
            if orig > self.snaplen:
                data = data[: self.snaplen]
                if len(pkts) > 1:
                    kept = 0
                elif role != 2:
                    kept = max(0, min(kept, self.snaplen - len(link) - 28))
            self._record(ts, iface, data, orig)
            self.frames += 1
            self.bytes += orig
        return kept


def write_capture(path, frames: Iterable, **opts) -> CaptureWriter:
    w = CaptureWriter(path, **opts)
    try:
        for f in frames:
            w.write(f)
    finally:
        w.close()
    return w


@contextmanager
def written_whole(outputs: Iterable) -> Iterator[list[Path]]:
    """Temporary names (same folder, hidden) to write the ``outputs`` under; renamed to them
    when the block completes, removed when it fails: an interrupted run never leaves a
    half-written capture under the name asked for."""
    outputs = [Path(o) for o in outputs]
    parts = [o.with_name(f".{o.name}.{os.getpid()}.part") for o in outputs]
    try:
        yield parts
        for part, output in zip(parts, outputs):
            os.replace(part, output)
    except BaseException:
        for part in parts:
            part.unlink(missing_ok=True)
        raise
