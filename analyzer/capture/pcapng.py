"""pcapng walker: every section and interface, each with its own link type and clock.

Blocks are walked by hand (dpkt's reader only knows the first interface). Packet blocks
(enhanced, simple and the obsolete packet block) are frames; interface blocks set link
type, time resolution and offset; everything else is skipped.
"""
from __future__ import annotations

import struct

from analyzer.anomalies import Kind
from analyzer.capture.decode import LT_ETHERNET, fast_other, SUPPORTED_LINKTYPES, VLAN_TPIDS, datagram_bad
from analyzer.capture.fileformat import BOM_BE, BOM_LE, MAX_BLOCK, MAX_CAPLEN, SHB_TYPE, Opened, linktype_name
from analyzer.capture.pcap import ETH_FAST, cut_notice
from analyzer.capture.speedups import LINKTYPES, link_cache
from analyzer.datagram import Datagram, Notice

_new = tuple.__new__
_NS = 1_000_000_000

EPB = 6
SPB = 3
PB = 2
IDB = 1
# Blocks Wireshark shows as frames although they hold no packet (custom blocks, systemd
# journal entries, sysdig events): counted so frame numbers stay equal to Wireshark's.
OTHER_FRAME_BLOCKS = frozenset({0x00000BAD, 0x40000BAD, 0x00000009, 0x00000204, 0x00000216, 0x00000221})
OPT_TSRESOL = 9
OPT_TSOFFSET = 14


class _Iface:
    __slots__ = ("lt", "ok", "mul", "shift", "div", "off", "snaplen")

    def __init__(self, lt: int, snaplen: int, tsresol: int, tsoffset: int):
        self.lt = lt
        self.ok = lt in SUPPORTED_LINKTYPES
        self.snaplen = snaplen
        self.off = tsoffset * _NS
        self.mul = self.shift = self.div = 0
        if tsresol & 0x80:
            self.shift = tsresol & 0x7F  # units of 2**-shift seconds
        else:
            exp = tsresol
            if exp <= 9:
                self.mul = 10 ** (9 - exp)
            else:
                self.div = 10 ** (exp - 9)

    def ts(self, units: int) -> int:
        if self.mul:
            return units * self.mul + self.off
        if self.div:
            return units // self.div + self.off
        return ((units * _NS) >> self.shift) + self.off


def _structs(endian: str):
    return (struct.Struct(endian + "II").unpack_from,
            struct.Struct(endian + "IIIIIII").unpack_from,  # EPB up to the packet data
            struct.Struct(endian + "IIHHIIII").unpack_from)  # PB up to the packet data


def _parse_idb(buf: bytes, pos: int, blen: int, endian: str) -> _Iface | None:
    if blen < 20:
        return None
    lt, _res, snaplen = struct.unpack_from(endian + "HHI", buf, pos + 8)
    tsresol = 6
    tsoffset = 0
    p = pos + 16
    end = pos + blen - 4
    opt = struct.Struct(endian + "HH").unpack_from
    while p + 4 <= end:
        code, olen = opt(buf, p)
        if code == 0:
            break
        v = p + 4
        if v + olen > end:
            break
        if code == OPT_TSRESOL and olen >= 1:
            tsresol = buf[v]
        elif code == OPT_TSOFFSET and olen == 8:
            tsoffset = struct.unpack_from(endian + "q", buf, v)[0]
        p = v + ((olen + 3) & ~3)
    return _Iface(lt, snaplen, tsresol, tsoffset)


def _compiled_clock(ifc: _Iface) -> tuple[int, int, int] | None:
    """(multiplier and offset to nanoseconds, link type) for the compiled loop: interfaces
    of a link type it takes with a decimal clock and an offset that fits 64 bits; None
    leaves the interface to Python."""
    if ifc.lt in LINKTYPES and ifc.mul and -(1 << 63) <= ifc.off < (1 << 63):
        return ifc.mul, ifc.off, ifc.lt
    return None


def walk_pcapng(ctx, o: Opened, cap: dict):
    """Yield lists of Datagram/Notice items of one pcapng file, one list per buffer read
    (the last may be empty); ``ctx`` is the reader."""
    endian = o.endian
    hdr, epb, pbk = _structs(endian)
    fast = ETH_FAST.unpack_from
    new = _new
    Dgram = Datagram
    ports = ctx.ports
    verify = ctx.verify
    decode = ctx.decoder.frame
    src = o.source
    chunk = ctx.chunk_size
    base = ctx.bytes_read
    first = ctx.frame
    frame = first
    buf = o.buf
    pos = o.pos
    n = len(buf)
    ifaces: list[_Iface] = []
    nif = 0
    ts = 0
    section = 0
    out: list = []
    add = out.append
    chk = ctx.checks.extend if ctx.checks is not None else None  # see capture.checksums
    # link identities of the last two source MACs, reused: one tuple per host, not per frame
    mac_a = mac_b = b"\xff" * 7
    link_a = link_b = None
    bufbase = src.raw_pos - n  # file offset of buf[0] (plain files)

    def stop(why: str) -> Notice:
        cap["truncated"] = True
        return Notice(Kind.TRUNCATED_CAPTURE, frame + 1,
                      f"{why} after frame {frame}; the file is corrupt from here and the rest of "
                      f"it is not read", ts)

    # the compiled loop walks the common blocks and stops before any other (speedups.py)
    cwalk = ctx.compiled.walk_pcapng if ctx.compiled is not None and chk is None else None
    bitmap, links, clocks = ctx.port_bitmap, link_cache(), []
    try:
        while True:
            while True:
                if cwalk is not None:
                    pos, frame, t = cwalk(buf, pos, frame, endian == ">", clocks, bitmap, verify,
                                          out, Dgram, links)
                    if t is not None:
                        ts = t
                if pos + 12 > n:
                    break
                btype, blen = hdr(buf, pos)
                if btype == SHB_TYPE:
                    bom = buf[pos + 8:pos + 12]
                    if bom == BOM_LE:
                        endian = "<"
                    elif bom == BOM_BE:
                        endian = ">"
                    else:
                        add(stop(f"section header with a bad byte-order magic ({bom.hex(' ')})"))
                        yield out
                        return
                    hdr, epb, pbk = _structs(endian)
                    btype, blen = hdr(buf, pos)
                if blen < 12 or blen & 3 or blen > MAX_BLOCK:
                    add(stop(f"pcapng block of type 0x{btype:08x} with a bad length ({blen})"))
                    yield out
                    return
                end = pos + blen
                if end > n:
                    break
                if buf[end - 4:end] != buf[pos + 4:pos + 8]:
                    add(stop(f"pcapng block of type 0x{btype:08x} whose trailing length differs "
                             f"from its leading length ({blen})"))
                    yield out
                    return
                if btype == EPB:
                    if blen < 32:
                        add(stop(f"enhanced packet block too short ({blen} bytes)"))
                        yield out
                        return
                    _, _, iface, hi, lo, caplen, wirelen = epb(buf, pos)
                    if caplen > blen - 32 or caplen > MAX_CAPLEN:
                        add(stop(f"enhanced packet block of {blen} bytes claiming {caplen} captured bytes"))
                        yield out
                        return
                    if iface >= nif:
                        add(stop(f"packet on interface {iface}, but the section describes {nif}"))
                        yield out
                        return
                    frame += 1
                    d = pos + 28
                    pos = end
                    ifc = ifaces[iface]
                    lt = ifc.lt
                    if ifc.mul:
                        ts = (hi << 32 | lo) * ifc.mul + ifc.off
                    else:
                        ts = ifc.ts(hi << 32 | lo)
                    rend = d + caplen
                    et = 0
                    if lt == LT_ETHERNET and caplen >= 42:
                        et, vihl, totlen, frag, proto, sa, da, sport, dport, ulen, ucsum = fast(buf, d)
                        if et == 0x0800 and vihl == 0x45:
                            if proto != 17:
                                if proto != 1:  # ICMP: the general decoder looks for port-unreachable
                                    continue
                            elif not frag & 0x3FFF:
                                if sport not in ports and dport not in ports:
                                    continue
                                ipend = d + 14 + totlen
                                if ulen + 20 == totlen and ulen >= 8 and ipend <= rend:
                                    bad = False
                                    if verify:
                                        if ucsum and chk is not None:  # verified by the checksum helper
                                            chk((len(out), bufbase + d + 14, bufbase + ipend))
                                        else:
                                            bad = datagram_bad(buf, d + 14, ipend, ulen, sa, da, ucsum)
                                    if buf.startswith(mac_a, d + 6):
                                        link = link_a
                                    elif buf.startswith(mac_b, d + 6):
                                        link = link_b
                                    else:
                                        mac_b, link_b = mac_a, link_a
                                        mac_a = buf[d + 6:d + 12]
                                        link = link_a = (mac_a, ())
                                    add(new(Dgram, (frame, ts, sa, da, sport, dport,
                                                    buf[d + 42:ipend], 0, link, bad)))
                                    continue
                        elif et != 0x0800 and et not in VLAN_TPIDS:
                            continue
                    if not (lt == LT_ETHERNET and et == 0x0800):
                        item = fast_other(lt, buf, d, rend, frame, ts, ports, verify)
                        if item is None:
                            continue
                        if item is not False:
                            add(item)
                            continue
                    if ifc.ok:
                        items = decode(lt, buf[d:rend], frame, ts)
                        if items:
                            out.extend(items)
                    continue
                if btype == SPB or btype == PB:
                    if btype == SPB:
                        if blen < 16:
                            add(stop(f"simple packet block too short ({blen} bytes)"))
                            yield out
                            return
                        if not nif:
                            add(stop("simple packet block in a section without interfaces"))
                            yield out
                            return
                        ifc = ifaces[0]
                        wirelen = hdr(buf, pos + 4)[1]
                        caplen = min(wirelen, blen - 16)
                        if ifc.snaplen:
                            caplen = min(caplen, ifc.snaplen)
                        d = pos + 12
                        # no timestamp in this block: keep the previous frame's time
                    else:
                        if blen < 32:
                            add(stop(f"packet block too short ({blen} bytes)"))
                            yield out
                            return
                        _, _, iface, _drops, hi, lo, caplen, wirelen = pbk(buf, pos)
                        if caplen > blen - 32:
                            add(stop(f"packet block of {blen} bytes claiming {caplen} captured bytes"))
                            yield out
                            return
                        if iface >= nif:
                            add(stop(f"packet on interface {iface}, but the section describes {nif}"))
                            yield out
                            return
                        ifc = ifaces[iface]
                        ts = ifc.ts(hi << 32 | lo)
                        d = pos + 28
                    if caplen > MAX_CAPLEN:
                        add(stop(f"packet block claiming {caplen} captured bytes"))
                        yield out
                        return
                    frame += 1
                    pos = end
                    if ifc.ok:
                        items = decode(ifc.lt, buf[d:d + caplen], frame, ts)
                        if items:
                            out.extend(items)
                    continue
                if btype == IDB:
                    ifc = _parse_idb(buf, pos, blen, endian)
                    if ifc is None:
                        add(stop(f"interface description block too short ({blen} bytes)"))
                        yield out
                        return
                    ifaces.append(ifc)
                    clocks.append(_compiled_clock(ifc))
                    nif += 1
                    if not ifc.ok:
                        add(Notice(Kind.UNSUPPORTED_LINK, frame + 1,
                                   f"interface {nif - 1} of section {section} has "
                                   f"{linktype_name(ifc.lt)}, which is not read; its frames are skipped", ts))
                elif btype in OTHER_FRAME_BLOCKS:
                    frame += 1
                elif btype == SHB_TYPE:
                    if blen < 28:
                        add(stop(f"section header too short ({blen} bytes)"))
                        yield out
                        return
                    major = struct.unpack_from(endian + "H", buf, pos + 12)[0]
                    if major != 1:
                        add(stop(f"section header of unsupported pcapng version {major}"))
                        yield out
                        return
                    ifaces = []
                    clocks = []
                    nif = 0
                    section += 1
                pos = end
            # The next block is not all in the buffer: hand over what was decoded, read more.
            cap["frames"] = frame - first
            ctx.frame = frame
            if out:
                yield out
                out = []
                add = out.append
            more = src.read(chunk)
            cap["frames"] = frame - first
            ctx.bytes_read = base + src.raw_pos
            if not more:
                break
            buf = buf[pos:] + more
            pos = 0
            n = len(buf)
            bufbase = src.raw_pos - n
        # End of file.
        rest = n - pos
        if rest or src.error:
            cap["truncated"] = True
            err = src.error
            if rest >= 12:
                btype, blen = hdr(buf, pos)
                if btype == EPB and rest >= 28 and nif:
                    _, _, iface, hi, lo, caplen, wirelen = epb(buf, pos)
                    frame += 1
                    if iface < nif:
                        ifc = ifaces[iface]
                        ts = ifc.ts(hi << 32 | lo)
                    add(cut_notice(frame, ts, max(0, min(rest - 28, caplen)), min(caplen, MAX_CAPLEN),
                                   "packet block of frame", err))
                    if iface < nif and ifaces[iface].ok and caplen <= MAX_CAPLEN:
                        items = decode(ifaces[iface].lt, buf[pos + 28:min(n, pos + 28 + caplen)], frame, ts, True)
                        if items:
                            out.extend(items)
                    yield out
                    return
                add(Notice(Kind.TRUNCATED_CAPTURE, frame + 1,
                           f"the file ends inside a pcapng block of type 0x{btype:08x} after frame "
                           f"{frame} ({rest} of {blen} bytes{'; ' + err if err else ''})", ts))
            elif rest:
                add(Notice(Kind.TRUNCATED_CAPTURE, frame + 1,
                           f"the file ends inside a pcapng block header after frame {frame} "
                           f"({rest} of 12 bytes{'; ' + err if err else ''})", ts))
            else:
                add(Notice(Kind.TRUNCATED_CAPTURE, frame + 1,
                           f"the file could not be read to its end after frame {frame} ({err}); "
                           f"the rest is lost", ts))
        cap["frames"] = frame - first
        ctx.frame = frame
        yield out
    finally:
        cap["frames"] = frame - first
        ctx.frame = frame
        ctx.bytes_read = base + src.raw_pos
        o.close()
