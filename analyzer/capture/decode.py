"""Frame decoding below UDP: IPv4, UDP, checksums (the general, slower path).

The frame taker (``frames.py``) handles the common frame (IPv4 without options carrying one
whole UDP datagram) itself; everything else comes here. Link layers are in ``links.py``. Nothing in this module raises on
malformed input: a frame that cannot be decoded is skipped.

The checksum rule is in ``checksums.py``: the general path asks it one datagram at a time.
"""
from __future__ import annotations

import socket
import struct

from analyzer.anomalies import Kind
from analyzer.capture.checksums import ip_header_bad, udp_bad
from analyzer.capture.ipv4 import Reassembler
from analyzer.capture.links import DECODERS
from analyzer.datagram import Datagram, Notice, Unreachable

_new = tuple.__new__

_HH = struct.Struct("!HH")
_IP = struct.Struct("!BxHHHxBH4s4s")  # vihl, totlen, id, frag, proto, csum, src, dst
_UDP = struct.Struct("!HHHH")


class Decoder:
    """Decodes one frame of any supported link type into Datagram/Notice items."""

    def __init__(self, ports: frozenset[int], verify: bool = True):
        self.ports = ports
        self.verify = verify
        self.reasm = Reassembler(ports)

    def frame(self, lt: int, data: bytes, frame: int, ts: int, cut: bool = False) -> list | None:
        """Items for one captured frame; ``cut`` when the record itself was cut short."""
        try:
            return self._frame(lt, data, frame, ts, cut)
        except (IndexError, ValueError, struct.error):  # malformed beyond what checks caught
            return None

    def _frame(self, lt: int, data: bytes, frame: int, ts: int, cut: bool) -> list | None:
        decoder = DECODERS.get(lt)
        found = decoder(data, 0, len(data)) if decoder is not None else None
        if found is None:
            return None
        return self._ipv4(data, found[0], found[1], frame, ts, cut)

    def _ipv4(self, data: bytes, p: int, link: object, frame: int, ts: int, cut: bool) -> list | None:
        n = len(data)
        if n < p + 20:
            return None  # not even a whole IPv4 header: nothing trustworthy to report
        vihl, totlen, ident, frag, proto, _csum, src, dst = _IP.unpack_from(data, p)
        if vihl >> 4 == 4 and proto == 1 and not frag & 0x3FFF:
            return self._icmp(data[p:min(n, p + totlen)], (vihl & 0x0F) * 4, src, dst, frame, ts)
        if vihl >> 4 != 4 or proto != 17:
            return None
        ihl = (vihl & 0x0F) * 4
        if ihl < 20 or totlen < ihl:
            return None
        if n < p + ihl:
            return None  # options cut: UDP header not captured
        bad_ip = self.verify and ip_header_bad(data[p:p + ihl])
        ip_end = p + totlen
        captured_end = min(n, ip_end)
        udp = p + ihl
        if frag & 0x3FFF:  # more-fragments flag or non-zero offset
            return self._fragment(src, dst, ident, frag, data[udp:captured_end],
                                  ip_end > n, frame, ts, link, bad_ip)
        if captured_end - udp < 4:
            return None  # ports not captured
        sport, dport = _HH.unpack_from(data, udp)
        ports = self.ports
        if sport not in ports and dport not in ports:
            return None
        ip_payload = totlen - ihl
        if captured_end - udp < 8:
            if cut:
                return None  # the truncated-capture notice covers it
            return [Notice(Kind.SNAPLEN_TRUNCATED, frame,
                           f"UDP {sport} -> {dport}: only {captured_end - udp} of the 8 UDP "
                           f"header bytes captured (IP length {totlen}); datagram not decoded", ts)]
        return self._udp(data[udp:captured_end], ip_payload, src, dst, frame, ts, link, bad_ip, cut)

    def _icmp(self, packet: bytes, ihl: int, src: bytes, dst: bytes, frame: int,
              ts: int) -> list | None:
        """A port-unreachable quoting a UDP datagram to or from a netdump port, or nothing."""
        q = ihl + 8  # the quoted IPv4 header follows the 8-byte ICMP header
        if ihl < 20 or len(packet) < q + 28 or packet[ihl] != 3 or packet[ihl + 1] != 3:
            return None
        qvihl, _tl, _id, _frag, qproto, _c, qsrc, qdst = _IP.unpack_from(packet, q)
        qihl = (qvihl & 0x0F) * 4
        if qvihl >> 4 != 4 or qproto != 17 or qihl < 20 or len(packet) < q + qihl + 4:
            return None
        qsport, qdport = _HH.unpack_from(packet, q + qihl)
        if qsport not in self.ports and qdport not in self.ports:
            return None
        return [Unreachable(frame, ts, src, dst, qsrc, qdst, qsport, qdport)]

    def _udp(self, udpdata: bytes, ip_payload: int, src: bytes, dst: bytes, frame: int,
             ts: int, link: object, bad_ip: bool, cut: bool, notices: list | None = None) -> list:
        """``udpdata``: UDP header and payload as captured (at most ``ip_payload`` bytes)."""
        sport, dport, ulen, _ucsum = _UDP.unpack_from(udpdata, 0)
        bad = bad_ip
        if 8 <= ulen <= ip_payload:
            dlen = ulen
        else:  # UDP length impossible for this IP packet: use what IP carries
            dlen = ip_payload
            bad = True
        payload = udpdata[8:dlen]
        missing = dlen - 8 - len(payload)
        out = notices if notices is not None else []
        if missing:
            if not cut:
                out.append(Notice(Kind.SNAPLEN_TRUNCATED, frame,
                                  f"UDP {sport} -> {dport}: {missing} of {dlen - 8} payload bytes "
                                  f"not captured (snap length)", ts))
        elif self.verify and not bad:
            bad = udp_bad(src, dst, udpdata[:dlen]) if ulen == dlen else True
        out.append(_new(Datagram, (frame, ts, src, dst, sport, dport, payload, missing, link, bad)))
        return out

    def _fragment(self, src, dst, ident, frag, data, cut, frame, ts, link, bad_ip) -> list | None:
        offset = (frag & 0x1FFF) * 8
        more = bool(frag & 0x2000)
        notices, done = self.reasm.add(src, dst, ident, 17, offset, more, data, frame, ts,
                                       link, bad_ip, cut)
        if done is None:
            return notices or None
        payload, frames, more_frames, link, bad_ip = done
        if len(payload) < 8:
            notices.append(Notice(Kind.IP_FRAGMENTS, frame,
                                  f"reassembled IPv4 datagram {socket.inet_ntoa(src)} -> "
                                  f"{socket.inet_ntoa(dst)} id 0x{ident:04x} is {len(payload)} "
                                  f"bytes, too short for UDP", ts))
            return notices
        sport, dport = _HH.unpack_from(payload, 0)
        if sport not in self.ports and dport not in self.ports:
            return notices or None
        listed = frames if frames[-1] == frame else frames + [frame]
        others = f" and {more_frames} more" if more_frames else ""
        notices.append(Notice(Kind.IP_FRAGMENTS, frame,
                              f"UDP {sport} -> {dport} datagram of {len(payload)} bytes reassembled "
                              f"from IPv4 fragments (id 0x{ident:04x}, frames "
                              f"{', '.join(map(str, listed))}{others})", ts))
        return self._udp(payload, len(payload), src, dst, frame, ts, link, bad_ip, False, notices)

    def flush(self) -> list:
        return self.reasm.flush()
