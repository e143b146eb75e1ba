"""The frame taker both walkers call for each record: the common frame made into a Datagram
at once, every other frame handed to the general decoder.

The common frame is IPv4 without options carrying one whole, unfragmented UDP datagram to
or from a netdump port. Untagged Ethernet is recognised by its EtherType alone (its source
MAC's link tuple reused); every other link goes through its decoder in ``links.py``; then
one IPv4/UDP rule takes the datagram, whatever the link. Anything that rule does not take
as it is (ICMP, fragments, options, cut or odd lengths) goes to ``Decoder.frame``, which
gives the same verdicts with all its notices.
"""
from __future__ import annotations

import struct

from analyzer.capture.links import DECODERS, LT_ETHERNET
from analyzer.datagram import Datagram

_new = tuple.__new__
# IPv4 without options, then UDP: version/IHL, total length, flags/fragment, protocol, addresses, UDP
IP_FAST = struct.Struct("!BxH2xHxB2x4s4sHHH")


class FrameTaker:
    """``take(lt, buf, d, end, frame, ts, out)``: the items of the frame ``buf[d:end]``
    appended to ``out``. With ``pending`` (a ``checksums.Pending``), the checksums of the
    common frame are not verified here: where its datagram lies is noted there, and the
    walker has the whole buffer verified at once. A class rather than a closure so that
    frames.pxd can give its state and locals C types when compiled."""

    def __init__(self, ports: frozenset, decoder, pending=None):
        self.ports = ports
        self.verify = pending is not None
        self.ip_fast = IP_FAST.unpack_from
        self.general = decoder.frame
        self.decoders = DECODERS
        if pending is not None:
            self.p_index, self.p_ip, self.p_end = \
                pending.index.append, pending.ip.append, pending.end.append
        # link identities of the last two source MACs, reused: one tuple per host, not per frame
        self.mac_a = self.mac_b = b"\xff" * 7
        self.link_a = None
        self.link_b = None

    def take(self, lt, buf, d, end, frame, ts, out):
        if lt == LT_ETHERNET and end - d >= 14 and buf[d + 12] == 8 and buf[d + 13] == 0:
            # untagged Ethernet carrying IPv4 (EtherType 0x0800), the common link: the
            # source MAC's link tuple is reused
            ip = d + 14
            if buf.startswith(self.mac_a, d + 6):
                link = self.link_a
            elif buf.startswith(self.mac_b, d + 6):
                link = self.link_b
            else:
                self.mac_b, self.link_b = self.mac_a, self.link_a
                self.mac_a = buf[d + 6:d + 12]
                link = self.link_a = (self.mac_a, ())
        else:
            link_decoder = self.decoders.get(lt)
            if link_decoder is None:
                return
            found = link_decoder(buf, d, end)
            if found is None:
                return
            ip, link = found
        if ip + 28 <= end:
            vihl, totlen, frag, proto, sa, da, sport, dport, ulen = self.ip_fast(buf, ip)
            if proto == 17 and vihl >> 4 == 4:
                if vihl == 0x45 and not frag & 0x3FFF:  # no options, not a fragment
                    ports = self.ports
                    if sport not in ports and dport not in ports:
                        return
                    ipend = ip + totlen
                    if ulen + 20 == totlen and ulen >= 8 and ipend <= end:
                        if self.verify:
                            self.p_index(len(out))
                            self.p_ip(ip)
                            self.p_end(ipend)
                        out.append(_new(Datagram, (frame, ts, sa, da, sport, dport,
                                                   buf[ip + 28:ipend], 0, link, False)))
                        return
            elif proto != 1 or vihl >> 4 != 4:  # neither UDP nor ICMP (port-unreachable)
                return
        items = self.general(lt, buf[d:end], frame, ts)
        if items:
            out.extend(items)


def frame_taker(ports: frozenset, decoder, pending=None):
    """``take(lt, buf, d, end, frame, ts, out)`` (``FrameTaker.take``, bound)."""
    return FrameTaker(ports, decoder, pending).take
