"""IPv4 header and UDP checksums: the one rule, applied to a whole read buffer at once.

Verifying the UDP checksum of a 1500-byte frame word by word in Python costs more than all
the rest the reader does for it. Here the words are summed by numpy, for every datagram of a
buffer in one ``reduceat`` pass, and the verdict is a handful of array operations. The frame
taker only notes where each datagram lies (:class:`Pending`); the walker asks for the
verdicts once per buffer. The general decoder asks for one datagram at a time, through the
same functions.

The sums are ones'-complement sums taken modulo 0xFFFF (2**16 == 1 mod 0xFFFF, so carries
fold in by themselves). Words are read little-endian, the machine's order: that gives the
byte-swapped sum, which is 256 times the big-endian one modulo 0xFFFF. 256 is invertible
modulo 0xFFFF, so a sum is zero in one order exactly when it is in the other, and every
constant added (protocol, UDP length) is added byte-swapped. An odd last byte is the high
byte of a word padded with zero (RFC 768): in the swapped order, the byte itself.

The verdict (:func:`header_wrong`, :func:`udp_wrong`) is written with operators only, so it
holds for numpy arrays and single numbers alike:
- an IPv4 header is wrong when its sum is not zero, unless its checksum field is zero (not
  computed: some capture points see headers before the NIC fills them in);
- a UDP datagram is wrong when its checksum field is not zero (zero: not computed), the sum
  of pseudo-header, header and data is not zero, and the field does not look like checksum
  offload (the sender left the pseudo-header sum, or its complement, for the NIC to finish).
"""
from __future__ import annotations

import numpy as np

M = 0xFFFF
UDP_PROTO_SWAPPED = 17 << 8  # the pseudo-header's protocol word, byte-swapped


def swapped16(v):
    """A 16-bit value (or array of them) byte-swapped."""
    return ((v & 0xFF) << 8) | (v >> 8)


def header_wrong(hsum, hfield):
    """IPv4 header sum ``hsum`` (swapped order) and checksum field ``hfield``: wrong?"""
    return (hsum % M != 0) & (hfield != 0)


def udp_wrong(usum, asum, ulen, ufield):
    """UDP sum ``usum`` of header and data, ``asum`` of the two addresses (swapped order),
    the UDP length ``ulen`` and the checksum field ``ufield`` as read little-endian: wrong?"""
    pseudo = asum + UDP_PROTO_SWAPPED + swapped16(ulen)
    offloaded = ((ufield - pseudo) % M == 0) | ((ufield + pseudo) % M == 0)
    return (ufield != 0) & ((usum + pseudo) % M != 0) & (offloaded == 0)


def range_sums(buf, bounds):
    """Sums of ``buf`` between consecutive ``bounds`` (an int64 array of byte offsets, rising,
    all of one parity): element ``k`` sums ``buf[bounds[k]:bounds[k + 1]]``; the last runs
    to ``bounds[-1]`` itself, so it is meaningless. The ranges between bounds may be empty
    only where the caller ignores them."""
    odd = int(bounds[0]) & 1
    count = (len(buf) - odd) // 2
    words = np.frombuffer(buf, dtype="<u2", count=count, offset=odd)
    at = (bounds - odd) >> 1
    last = at[-1] >= count
    if last:
        at = at[:-1]  # a range ending with the buffer: reduceat sums it to the end itself
    # at most 32768 words of 0xFFFF in an IPv4 datagram: the sums fit 32 bits
    sums = np.add.reduceat(words, at, dtype=np.uint32).astype(np.int64)
    if last:
        sums = np.append(sums, 0)
    # a range of odd length ends with a byte that no word holds: add it as its own word
    lengths = np.diff(bounds)
    tail = np.nonzero(lengths & 1)[0]
    if len(tail):
        sums[tail] += np.frombuffer(buf, dtype=np.uint8)[bounds[tail + 1] - 1]
    return sums


def datagrams_wrong(buf, ips, ends) -> np.ndarray:
    """For IPv4 headers without options at ``buf[ips[k]:]``, each followed by one whole UDP
    datagram to ``ends[k]``: a bool array, True where either checksum is wrong. The starts
    may be of both parities and must rise."""
    ips = np.asarray(ips, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    wrong = np.zeros(len(ips), dtype=bool)
    octets = np.frombuffer(buf, dtype=np.uint8)
    for parity in (0, 1):
        pick = np.nonzero((ips & 1) == parity)[0]
        if not len(pick):
            continue
        ip, end = ips[pick], ends[pick]
        # per datagram: header to the addresses, the addresses, UDP header and data, gap
        bounds = np.empty(4 * len(ip), dtype=np.int64)
        bounds[0::4], bounds[1::4], bounds[2::4], bounds[3::4] = ip, ip + 12, ip + 20, end
        sums = range_sums(buf, bounds)
        asum = sums[1::4]
        hfield = octets[ip + 10].astype(np.int64) | octets[ip + 11]
        ufield = octets[ip + 26].astype(np.int64) | octets[ip + 27].astype(np.int64) << 8
        wrong[pick] = header_wrong(sums[0::4] + asum, hfield) | \
            udp_wrong(sums[2::4], asum, end - ip - 20, ufield)
    return wrong


def _sums_of(data: bytes, bounds: list) -> np.ndarray:
    return range_sums(data, np.asarray(bounds, dtype=np.int64))


def ip_header_bad(hdr: bytes) -> bool:
    """True when an IPv4 header's checksum is wrong (a zero field is taken as not computed)."""
    hsum = _sums_of(hdr, [0, len(hdr)])[0]
    return bool(header_wrong(hsum, hdr[10] | hdr[11]))


def udp_bad(src: bytes, dst: bytes, udp: bytes) -> bool:
    """True when the checksum of a whole UDP datagram ``udp`` (header included) is wrong."""
    sums = _sums_of(src + dst + udp, [0, 8, 8 + len(udp)])
    return bool(udp_wrong(sums[1], sums[0], len(udp), udp[6] | udp[7] << 8))


class Pending:
    """Datagrams of the current buffer whose checksums are still to be verified: where each
    lies, and the index of its item in the buffer's list. Filled by the frame taker,
    settled by the walker once per buffer."""

    __slots__ = ("index", "ip", "end")

    def __init__(self):
        self.index: list = []
        self.ip: list = []
        self.end: list = []

    def settle(self, buf, out: list) -> None:
        """Mark the items whose datagram is wrong in ``out``; forget them all."""
        if self.index:
            for k in np.nonzero(datagrams_wrong(buf, self.ip, self.end))[0].tolist():
                i = self.index[k]
                out[i] = out[i]._replace(bad_checksum=True)
            self.index.clear()
            self.ip.clear()
            self.end.clear()
