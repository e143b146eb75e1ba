"""Read simulated captures back with dpkt, the independent oracle: [(ts, ip)] and UDP messages."""
from __future__ import annotations

import gzip
import io
import socket
import dpkt

from analyzer.wire import MSG_HDR

H = MSG_HDR.struct


def _ip_from_link(linktype: int, buf: bytes):
    if linktype == 1:
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        return ip if isinstance(ip, dpkt.ip.IP) else None
    if linktype == 113:
        return dpkt.ip.IP(buf[16:])
    if linktype == 276:
        return dpkt.ip.IP(buf[20:])
    if linktype in (101, 228):
        return dpkt.ip.IP(buf)
    if linktype == 0:
        return dpkt.ip.IP(buf[4:])
    raise AssertionError(linktype)


def read_capture(path):
    """[(ts, ip)] for every frame, pcap or pcapng, gzip or not."""
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    fh = io.BytesIO(raw)
    out = []
    if raw[:4] == b"\x0a\x0d\x0d\x0a":
        rd = dpkt.pcapng.Reader(fh)
        links = {}
        for i, idb in enumerate(rd.idbs if hasattr(rd, "idbs") else []):
            links[i] = idb.linktype
        for ts, buf in rd:
            out.append((ts, _ip_from_link(rd.datalink(), buf)))
    else:
        rd = dpkt.pcap.Reader(fh)
        for ts, buf in rd:
            out.append((ts, _ip_from_link(rd.datalink(), buf)))
    return out


def udp_msgs(path):
    """[(ts, src, dst, sport, dport, payload)] of the UDP datagrams in a capture."""
    res = []
    for ts, ip in read_capture(path):
        if ip is None or ip.p != 17:
            continue
        u = ip.data
        res.append((ts, socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst), u.sport, u.dport,
                    bytes(u.data)))
    return res


def client_msgs(msgs):
    return [(ts, *H.unpack_from(p), p[24:]) for ts, s, d, sp, dp, p in msgs if sp == 20024]
