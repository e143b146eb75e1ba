"""pcapng blocks: every section and interface, each with its own link type and clock.

Packet blocks (enhanced, simple and the obsolete packet block) are frames; interface blocks
set link type, snap length, time resolution and offset; the blocks Wireshark shows as frames
without a packet are counted; everything else (name resolution, statistics, decryption
secrets, custom blocks...) is skipped.
"""
from __future__ import annotations

import struct

from analyzer.anomalies import Kind
from analyzer.capture.fileformat import BOM_BE, BOM_LE, MAX_BLOCK, MAX_CAPLEN, SHB_TYPE, Opened
from analyzer.capture.links import SUPPORTED_LINKTYPES, linktype_name
from analyzer.capture.walker import FileWalker
from analyzer.datagram import Notice

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


class PcapngWalker(FileWalker):
    def __init__(self, o: Opened, first: int, take, decoder, pending=None):
        super().__init__(o, first, take, decoder, pending)
        self.endian = o.endian
        self.ifaces: list[_Iface] = []
        self.section = 0

    def records(self, buf, pos, out):
        frame = self.frame
        try:
            pos, frame = self._blocks(buf, pos, out, frame)
        finally:
            self.frame = frame
        return pos

    def _blocks(self, buf, pos, out, frame):
        endian = self.endian
        hdr, epb, pbk = _structs(endian)
        take = self.take
        ifaces = self.ifaces
        nif = len(ifaces)
        n = len(buf)
        while True:
            if pos + 12 > n:
                break
            btype, blen = hdr(buf, pos)
            self.frame = frame
            if btype == SHB_TYPE:
                bom = buf[pos + 8:pos + 12]
                if bom == BOM_LE:
                    endian = "<"
                elif bom == BOM_BE:
                    endian = ">"
                else:
                    self.stop(out, f"section header with a bad byte-order magic ({bom.hex(' ')})")
                    break
                self.endian = endian
                hdr, epb, pbk = _structs(endian)
                btype, blen = hdr(buf, pos)
            if blen < 12 or blen & 3 or blen > MAX_BLOCK:
                self.stop(out, f"pcapng block of type 0x{btype:08x} with a bad length ({blen})")
                break
            end = pos + blen
            if end > n:
                break
            if buf[end - 4:end] != buf[pos + 4:pos + 8]:
                self.stop(out, f"pcapng block of type 0x{btype:08x} whose trailing length "
                               f"differs from its leading length ({blen})")
                break
            if btype == EPB or btype == PB:
                if blen < 32:
                    self.stop(out, f"{'enhanced ' if btype == EPB else ''}packet block too "
                                   f"short ({blen} bytes)")
                    break
                if btype == EPB:
                    _, _, iface, hi, lo, caplen, wirelen = epb(buf, pos)
                else:
                    _, _, iface, _drops, hi, lo, caplen, wirelen = pbk(buf, pos)
                if caplen > blen - 32 or caplen > MAX_CAPLEN:
                    self.stop(out, f"{'enhanced ' if btype == EPB else ''}packet block of "
                                   f"{blen} bytes claiming {caplen} captured bytes")
                    break
                if iface >= nif:
                    self.stop(out, f"packet on interface {iface}, but the section describes {nif}")
                    break
                ifc = ifaces[iface]
                ts = self.ts = (hi << 32 | lo) * ifc.mul + ifc.off if ifc.mul else ifc.ts(hi << 32 | lo)
                d = pos + 28
            elif btype == SPB:
                if blen < 16:
                    self.stop(out, f"simple packet block too short ({blen} bytes)")
                    break
                if not nif:
                    self.stop(out, "simple packet block in a section without interfaces")
                    break
                ifc = ifaces[0]
                caplen = min(hdr(buf, pos + 4)[1], blen - 16)
                if ifc.snaplen:
                    caplen = min(caplen, ifc.snaplen)
                d = pos + 12
                ts = self.ts  # no timestamp in this block: keep the previous frame's time
            else:
                if btype == IDB:
                    ifc = _parse_idb(buf, pos, blen, endian)
                    if ifc is None:
                        self.stop(out, f"interface description block too short ({blen} bytes)")
                        break
                    ifaces.append(ifc)
                    nif += 1
                    if not ifc.ok:
                        out.append(Notice(Kind.UNSUPPORTED_LINK, frame + 1,
                                          f"interface {nif - 1} of section {self.section} has "
                                          f"{linktype_name(ifc.lt)}, which is not read; its "
                                          f"frames are counted, not decoded", self.ts))
                elif btype in OTHER_FRAME_BLOCKS:
                    frame += 1
                elif btype == SHB_TYPE:
                    if blen < 28:
                        self.stop(out, f"section header too short ({blen} bytes)")
                        break
                    major = struct.unpack_from(endian + "H", buf, pos + 12)[0]
                    if major != 1:
                        self.stop(out, f"section header of unsupported pcapng version {major}")
                        break
                    self.ifaces = ifaces = []
                    nif = 0
                    self.section += 1
                pos = end
                continue
            frame += 1
            pos = end
            if ifc.ok:
                take(ifc.lt, buf, d, d + caplen, frame, ts, out)
        return pos, frame

    def at_end(self, buf, pos, error, out):
        rest = len(buf) - pos
        err = f"; {error}" if error else ""
        if rest >= 12:
            hdr, epb, _ = _structs(self.endian)
            btype, blen = hdr(buf, pos)
            nif = len(self.ifaces)
            if btype == EPB and rest >= 28 and nif:
                _, _, iface, hi, lo, caplen, wirelen = epb(buf, pos)
                ifc = self.ifaces[iface] if iface < nif else None
                if ifc is not None:
                    self.ts = ifc.ts(hi << 32 | lo)
                self.cut(out, max(0, min(rest - 28, caplen)), min(caplen, MAX_CAPLEN),
                         "packet block of frame", error)
                if ifc is not None and ifc.ok and caplen <= MAX_CAPLEN:
                    items = self.decoder.frame(ifc.lt, buf[pos + 28:min(len(buf), pos + 28 + caplen)],
                                               self.cut_frame, self.ts, True)
                    if items:
                        out.extend(items)
                return
            out.append(Notice(Kind.TRUNCATED_CAPTURE, self.frame + 1,
                              f"the file ends inside a pcapng block of type 0x{btype:08x} after "
                              f"frame {self.frame} ({rest} of {blen} bytes{err})", self.ts))
        else:
            out.append(Notice(Kind.TRUNCATED_CAPTURE, self.frame + 1,
                              f"the file ends inside a pcapng block header after frame "
                              f"{self.frame} ({rest} of 12 bytes{err})", self.ts))
