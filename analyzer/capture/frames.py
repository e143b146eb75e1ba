"""The frame taker both walkers call for each record: the common frame made into a Datagram
at once, every other frame handed to the general decoder.

The common frame is IPv4 without options carrying one whole, unfragmented UDP datagram to
or from a netdump port. Untagged Ethernet is tried first, with its fields read in one
unpack; every other link goes through its decoder in ``links.py``. Anything the fast path
does not take as it is (ICMP, fragments, options, cut or odd lengths) goes to
``Decoder.frame``, which gives the same verdicts with all its notices.
"""
from __future__ import annotations

import struct
from typing import Any

from analyzer.capture.decode import datagram_bad
from analyzer.capture.links import DECODERS, LT_ETHERNET, VLAN_TPIDS
from analyzer.datagram import Datagram

_new = tuple.__new__
# Untagged Ethernet + IPv4 + UDP, from the start of the frame: ethertype, version/IHL,
# total length, flags/fragment offset, protocol, source, destination, UDP ports, length, checksum.
ETH_FAST = struct.Struct("!12xHBxH2xHxB2x4s4sHHHH")
# IPv4 without options, then UDP: version/IHL, total length, flags/fragment, protocol, addresses, UDP
IP_FAST = struct.Struct("!BxH2xHxB2x4s4sHHHH")


def frame_taker(ports: frozenset, verify: bool, decoder, checks: list | None = None,
                base: list | None = None):
    """``take(lt, buf, d, end, frame, ts, out)``: the items of the frame ``buf[d:end]``
    appended to ``out``. With ``checks``, the UDP checksums of common Ethernet frames are
    left to the checksum helper: their positions (``base[0]`` is the file offset of
    ``buf[0]``) are noted there instead."""
    eth_fast = ETH_FAST.unpack_from
    ip_fast = IP_FAST.unpack_from
    general = decoder.frame
    decoders = DECODERS
    new = _new
    Dgram = Datagram
    chk = checks.extend if checks is not None else None  # flat: index, start, end
    # link identities of the last two source MACs, reused: one tuple per host, not per frame
    mac_a = mac_b = b"\xff" * 7
    link_a: Any = None
    link_b: Any = None

    def take(lt, buf, d, end, frame, ts, out):
        nonlocal mac_a, mac_b, link_a, link_b
        if lt == LT_ETHERNET and end - d >= 42:
            et, vihl, totlen, frag, proto, sa, da, sport, dport, ulen, ucsum = eth_fast(buf, d)
            if et == 0x0800:
                if vihl == 0x45:
                    if proto != 17:
                        if proto != 1:  # ICMP: the general decoder looks for port-unreachable
                            return
                    elif not frag & 0x3FFF:
                        if sport not in ports and dport not in ports:
                            return
                        ipend = d + 14 + totlen
                        if ulen + 20 == totlen and ulen >= 8 and ipend <= end:
                            bad = False
                            if verify:
                                if ucsum and chk is not None:  # verified by the checksum helper
                                    chk((len(out), base[0] + d + 14, base[0] + ipend))
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
                            out.append(new(Dgram, (frame, ts, sa, da, sport, dport,
                                                   buf[d + 42:ipend], 0, link, bad)))
                            return
                items = general(lt, buf[d:end], frame, ts)
                if items:
                    out.extend(items)
                return
            if et not in VLAN_TPIDS:
                return
        link_decoder = decoders.get(lt)
        if link_decoder is None:
            return
        found = link_decoder(buf, d, end)
        if found is None:
            return
        ip, link = found
        if ip + 28 <= end:
            vihl, totlen, frag, proto, sa, da, sport, dport, ulen, ucsum = ip_fast(buf, ip)
            if vihl >> 4 != 4 or proto != 17:
                if proto != 1 or vihl >> 4 != 4:  # not ICMP either
                    return
            elif vihl == 0x45 and not frag & 0x3FFF:
                if sport not in ports and dport not in ports:
                    return
                ipend = ip + totlen
                if ulen + 20 == totlen and ulen >= 8 and ipend <= end:
                    bad = datagram_bad(buf, ip, ipend, ulen, sa, da, ucsum) if verify else False
                    out.append(new(Dgram, (frame, ts, sa, da, sport, dport, buf[ip + 28:ipend],
                                           0, link, bad)))
                    return
        items = general(lt, buf[d:end], frame, ts)
        if items:
            out.extend(items)

    return take
