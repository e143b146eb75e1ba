"""Link layers: one decoder per link type, saying where a frame's IPv4 packet starts.

A decoder takes ``(buf, d, end)`` (the frame is ``buf[d:end]``) and returns ``(ip, link)``:
the offset of the IPv4 header in ``buf`` and the frame's link identity, a tuple (source
address, VLAN ids) or None where the link has no addresses. It returns None when the frame
carries no IPv4 packet (IPv6, ARP, control frames...). The walkers' fast path and the
general decoder both go through this table, so each link rule is written here only.
"""
from __future__ import annotations

import struct

# Link types (LINKTYPE_* values as stored in capture files).
LT_NULL = 0
LT_ETHERNET = 1
LT_SLIP = 8
LT_PPP = 9
LT_RAW_BSD1 = 12
LT_RAW_BSD2 = 14
LT_PPP_HDLC = 50
LT_PPP_ETHER = 51
LT_RAW = 101
LT_C_HDLC = 104
LT_FRELAY = 107
LT_LOOP = 108
LT_SLL = 113
LT_IPV4 = 228
LT_NFLOG = 239
LT_IPOIB = 242
LT_SLL2 = 276

ETH_IPV4 = 0x0800
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})
AF_INET_LE = b"\x02\x00\x00\x00"
AF_INET_BE = b"\x00\x00\x00\x02"
PPP_IPV4 = 0x0021
NLPID_IP = 0xCC
NFULA_PAYLOAD = 9

_HH = struct.Struct("!HH")
_H = struct.Struct("!H")
_NFTLV = struct.Struct("<HH")  # NFLOG TLVs are in the writer's byte order: little-endian in practice


def vlan_chain(buf, et: int, p: int, end: int, addr: bytes):
    """The IPv4 start and link after an Ethernet-style type ``et`` whose payload starts at
    ``p``, through any stack of VLAN tags (each a TCI and the next type)."""
    tags: tuple = ()
    while et in VLAN_TPIDS:
        if p + 4 > end:
            return None
        tci, et = _HH.unpack_from(buf, p)
        tags += (tci & 0x0FFF,)
        p += 4
    if et != ETH_IPV4:
        return None
    return p, (addr, tags)


def ethernet(buf, d, end):
    if d + 14 > end:
        return None
    return vlan_chain(buf, buf[d + 12] << 8 | buf[d + 13], d + 14, end, buf[d + 6:d + 12])


def sll(buf, d, end):
    """Linux cooked v1: packet type, ARPHRD type, address length, 8 address bytes, protocol."""
    if d + 16 > end:
        return None
    alen = _H.unpack_from(buf, d + 4)[0]
    return vlan_chain(buf, buf[d + 14] << 8 | buf[d + 15], d + 16, end,
                      buf[d + 6:d + 6 + min(alen, 8)])


def sll2(buf, d, end):
    """Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type, address length,
    8 address bytes."""
    if d + 20 > end:
        return None
    return vlan_chain(buf, buf[d] << 8 | buf[d + 1], d + 20, end,
                      buf[d + 12:d + 12 + min(buf[d + 11], 8)])


def raw(buf, d, end):
    return d, None


def loopback(buf, d, end):
    """BSD loopback: the address family in 4 bytes, in either byte order."""
    fam = buf[d:d + 4]
    if fam != AF_INET_LE and fam != AF_INET_BE:
        return None
    return d + 4, None


def _ppp_protocol(buf, p, end):
    """Where IPv4 starts after a PPP protocol field at ``p`` (1 byte when compressed)."""
    if p >= end:
        return None
    if buf[p] & 1:  # protocol field compression: an odd first byte is the whole field
        return (p + 1, None) if buf[p] == 0x21 else None
    if p + 2 > end or buf[p] << 8 | buf[p + 1] != PPP_IPV4:
        return None
    return p + 2, None


def ppp(buf, d, end):
    """PPP (RFC 1661), with or without the HDLC-like address and control bytes."""
    if buf[d:d + 2] == b"\xff\x03":
        d += 2
    return _ppp_protocol(buf, d, end)


def ppp_hdlc(buf, d, end):
    """PPP in HDLC-like framing (RFC 1662), or Cisco HDLC when the address byte says so."""
    if d + 2 > end:
        return None
    if buf[d] in (0x0F, 0x8F):
        return c_hdlc(buf, d, end)
    return _ppp_protocol(buf, d + 2, end)


def ppp_ether(buf, d, end):
    """PPPoE session data without its Ethernet header: 6 bytes of PPPoE, then PPP."""
    if d + 6 > end or buf[d + 1] != 0:  # code 0: session data
        return None
    return _ppp_protocol(buf, d + 6, end)


def c_hdlc(buf, d, end):
    """Cisco HDLC: address, control, then an Ethernet type."""
    if d + 4 > end or buf[d + 2] << 8 | buf[d + 3] != ETH_IPV4:
        return None
    return d + 4, None


def frelay(buf, d, end):
    """Frame Relay: a 2-byte Q.922 address, then RFC 2427 encapsulation (UI control, NLPID)."""
    if d + 4 > end or buf[d + 2] != 0x03:
        return None
    if buf[d + 3] == NLPID_IP:
        return d + 4, None
    return None


def nflog(buf, d, end):
    """Linux NFLOG: family, version, resource id, then TLVs; the packet is the payload TLV."""
    if d + 4 > end or buf[d] != 2:  # AF_INET
        return None
    p = d + 4
    while p + 4 <= end:
        tlen, ttype = _NFTLV.unpack_from(buf, p)
        if tlen < 4:
            return None
        if ttype & 0x7FFF == NFULA_PAYLOAD:
            return (p + 4, None) if p + tlen <= end else None
        p += (tlen + 3) & ~3
    return None


def ipoib(buf, d, end):
    """IP over InfiniBand as Linux captures it (tcpdump and Wireshark read it so): 40 bytes
    of addresses, then the RFC 4391 header, a 2-byte Ethernet type and 2 reserved bytes."""
    if d + 44 > end or buf[d + 40] << 8 | buf[d + 41] != ETH_IPV4:
        return None
    return d + 44, None


def slip(buf, d, end):
    """SLIP with its 16-byte pseudo-header (direction, compressed-header copy)."""
    if d + 16 > end:
        return None
    return d + 16, None


DECODERS = {
    LT_NULL: loopback, LT_LOOP: loopback, LT_ETHERNET: ethernet, LT_SLL: sll, LT_SLL2: sll2,
    LT_RAW: raw, LT_IPV4: raw, LT_RAW_BSD1: raw, LT_RAW_BSD2: raw,
    LT_PPP: ppp, LT_PPP_HDLC: ppp_hdlc, LT_PPP_ETHER: ppp_ether, LT_C_HDLC: c_hdlc,
    LT_FRELAY: frelay, LT_NFLOG: nflog, LT_IPOIB: ipoib, LT_SLIP: slip,
}
SUPPORTED_LINKTYPES = frozenset(DECODERS)

LINKTYPE_NAMES = {
    LT_NULL: "BSD loopback", LT_ETHERNET: "Ethernet", LT_RAW_BSD1: "raw IP", LT_RAW_BSD2: "raw IP",
    LT_RAW: "raw IP", LT_LOOP: "OpenBSD loopback", LT_SLL: "Linux cooked", LT_IPV4: "raw IPv4",
    LT_SLL2: "Linux cooked v2", LT_SLIP: "SLIP", LT_PPP: "PPP", LT_PPP_HDLC: "PPP in HDLC framing",
    LT_PPP_ETHER: "PPPoE", LT_C_HDLC: "Cisco HDLC", LT_FRELAY: "Frame Relay", LT_NFLOG: "NFLOG",
    LT_IPOIB: "IP over InfiniBand",
    6: "Token Ring", 10: "FDDI", 105: "IEEE 802.11", 119: "Prism 802.11", 127: "802.11 radiotap",
    7: "ARCnet", 129: "ARCnet (Linux)", 220: "USB (Linux)",
    187: "Bluetooth HCI", 192: "PPI",
}


def linktype_name(lt: int) -> str:
    name = LINKTYPE_NAMES.get(lt)
    return f"link type {lt} ({name})" if name else f"link type {lt}"
