"""Classic pcap walker: records over large buffered reads, common frames decoded inline."""
from __future__ import annotations

import struct

from analyzer.anomalies import Kind
from analyzer.capture.decode import LT_ETHERNET, fast_other, VLAN_TPIDS, datagram_bad
from analyzer.capture.fileformat import MAX_CAPLEN, Opened
from analyzer.capture.speedups import LINKTYPES, link_cache
from analyzer.datagram import Datagram, Notice

_new = tuple.__new__
# Untagged Ethernet + IPv4 + UDP, from the start of the frame: ethertype, version/IHL,
# total length, flags/fragment offset, protocol, source, destination, UDP ports, length, checksum.
ETH_FAST = struct.Struct("!12xHBxH2xHxB2x4s4sHHHH")


def cut_notice(frame: int, ts: int, have: int, caplen: int, what: str, error: str | None) -> Notice:
    why = f" ({error})" if error else ""
    return Notice(Kind.TRUNCATED_CAPTURE, frame,
                  f"the file ends inside {what} {frame}{why}: {caplen - have} of its {caplen} "
                  f"captured bytes are lost", ts)


def walk_pcap(ctx, o: Opened, cap: dict):
    """Yield lists of Datagram/Notice items of one classic pcap file, one list per buffer
    read (the last may be empty); ``ctx`` is the reader."""
    rec_unpack = struct.Struct(o.endian + "IIII").unpack_from
    fast = ETH_FAST.unpack_from
    new = _new
    Dgram = Datagram
    lt = o.linktype
    eth = lt == LT_ETHERNET
    frac_mul = 1 if o.nano else 1000
    limit = min(o.snaplen, MAX_CAPLEN) if o.snaplen else MAX_CAPLEN
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
    ts = 0
    out: list = []
    add = out.append
    chk = ctx.checks.extend if ctx.checks is not None else None  # see capture.checksums
    # link identities of the last two source MACs, reused: one tuple per host, not per frame
    mac_a = mac_b = b"\xff" * 7
    link_a = link_b = None
    bufbase = src.raw_pos - n  # file offset of buf[0] (plain files)
    # the compiled loop walks the common records and stops before any other (speedups.py)
    cwalk = ctx.compiled.walk_pcap if ctx.compiled is not None and lt in LINKTYPES \
        and chk is None else None
    if cwalk is not None:
        big, bitmap, links = o.endian == ">", ctx.port_bitmap, link_cache()
    try:
        while True:
            while True:
                if cwalk is not None:
                    pos, frame, t = cwalk(buf, pos, frame, big, frac_mul, limit, lt, bitmap,
                                          verify, out, Dgram, links)
                    if t is not None:
                        ts = t
                if pos + 16 > n:
                    break
                sec, frac, caplen, wirelen = rec_unpack(buf, pos)
                if caplen > limit:
                    ts = sec * 1000000000 + frac * frac_mul
                    cap["truncated"] = True
                    add(Notice(Kind.TRUNCATED_CAPTURE, frame + 1,
                                 f"record {frame + 1} claims {caplen} captured bytes, more than the "
                                 f"{'snap length ' + str(o.snaplen) if caplen <= MAX_CAPLEN else 'maximum ' + str(MAX_CAPLEN)}; "
                                 f"the file is corrupt from here and the rest of it is not read", ts))
                    yield out
                    return
                d = pos + 16
                end = d + caplen
                if end > n:
                    break
                pos = end
                frame += 1
                et = 0
                if eth and caplen >= 42:
                    et, vihl, totlen, frag, proto, sa, da, sport, dport, ulen, ucsum = fast(buf, d)
                    if et == 0x0800 and vihl == 0x45:
                        if proto != 17:
                            if proto != 1:  # ICMP: the general decoder looks for port-unreachable
                                continue
                        elif not frag & 0x3FFF:
                            if sport not in ports and dport not in ports:
                                continue
                            ipend = d + 14 + totlen
                            if ulen + 20 == totlen and ulen >= 8 and ipend <= end:
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
                                add(new(Dgram, (frame, sec * 1000000000 + frac * frac_mul, sa, da, sport,
                                                dport, buf[d + 42:ipend], 0, link, bad)))
                                continue
                    elif et != 0x0800 and et not in VLAN_TPIDS:
                        continue
                ts = sec * 1000000000 + frac * frac_mul
                if not (eth and et == 0x0800):
                    item = fast_other(lt, buf, d, end, frame, ts, ports, verify)
                    if item is None:
                        continue
                    if item is not False:
                        add(item)
                        continue
                items = decode(lt, buf[d:end], frame, ts)
                if items:
                    out.extend(items)
            # The next record is not all in the buffer: hand over what was decoded, read more.
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
            if rest >= 16:
                sec, frac, caplen, wirelen = rec_unpack(buf, pos)
                ts = sec * 1000000000 + frac * frac_mul
                frame += 1
                add(cut_notice(frame, ts, rest - 16, caplen, "record", src.error))
                items = decode(lt, buf[pos + 16:n], frame, ts, True)
                if items:
                    out.extend(items)
            elif rest:
                frame += 1
                add(Notice(Kind.TRUNCATED_CAPTURE, frame,
                           f"the file ends inside the header of record {frame} ({rest} of 16 bytes"
                           f"{'; ' + src.error if src.error else ''}); the record is lost", ts))
            else:
                add(Notice(Kind.TRUNCATED_CAPTURE, frame + 1,
                           f"the file could not be read to its end after frame {frame} ({src.error}); "
                           f"the rest is lost", ts))
        cap["frames"] = frame - first
        ctx.frame = frame
        yield out
    finally:
        cap["frames"] = frame - first
        ctx.frame = frame
        ctx.bytes_read = base + src.raw_pos
        o.close()
