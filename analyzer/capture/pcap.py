"""Classic pcap records: the standard layout, nanosecond pcap, the modified (Kuznetzov)
layouts with longer record headers, and AIX's (see ``fileformat``)."""
from __future__ import annotations

import struct

from analyzer.anomalies import Kind
from analyzer.capture.fileformat import MAX_CAPLEN, Opened
from analyzer.capture.walker import FileWalker
from analyzer.datagram import Notice


class PcapWalker(FileWalker):
    def __init__(self, o: Opened, first: int, take, decoder, pending=None):
        super().__init__(o, first, take, decoder, pending)
        self.rec = struct.Struct(o.endian + "IIII").unpack_from
        self.hlen = o.record_header
        self.frac_mul = 1 if o.nano else 1000
        self.snaplen = o.snaplen
        self.swapped = o.lengths_swapped
        self.known = o.linktype in o.decoded

    def _lengths(self, caplen: int, wirelen: int) -> int:
        """The captured length, from files that wrote the two length fields the old way round."""
        if self.swapped == "yes" or (self.swapped == "maybe" and caplen > wirelen):
            return wirelen
        return caplen

    def records(self, buf, pos, out):
        return _records(self, buf, pos, out)

    def oversized_record(self, out, caplen):
        """A record longer than the header's snap length: the snap length is advice (libpcap
        and tshark read on), so it is read; the first one of the file is reported."""
        self.oversized += 1
        if self.oversized == 1:
            out.append(Notice(Kind.OVERSIZED_RECORD, self.frame,
                              f"record {self.frame} holds {caplen} bytes, more than the file "
                              f"header's snap length {self.snaplen}; read all the same", self.ts))

    def at_end(self, buf, pos, error, out):
        rest = len(buf) - pos
        if rest >= self.hlen:
            sec, frac, caplen, wirelen = self.rec(buf, pos)
            if self.swapped:
                caplen = self._lengths(caplen, wirelen)
            self.ts = sec * 1000000000 + frac * self.frac_mul
            self.cut(out, rest - self.hlen, caplen, "record", error)
            if self.known:
                items = self.decoder.frame(self.o.linktype, buf[pos + self.hlen:],
                                                self.cut_frame, self.ts, True)
                if items:
                    out.extend(items)
        else:
            self.cut_frame = self.frame + 1
            out.append(Notice(Kind.TRUNCATED_CAPTURE, self.cut_frame,
                              f"the file ends inside the header of record {self.cut_frame} "
                              f"({rest} of {self.hlen} bytes{'; ' + error if error else ''}); "
                              f"the record is lost", self.ts))


def _records(self, buf, pos, out):
    """``PcapWalker.records``, a function so that pcap.pxd can type its locals."""
    rec = self.rec
    hlen = self.hlen
    take = self.take
    lt = self.o.linktype
    frac_mul = self.frac_mul
    snaplen = self.snaplen
    known = self.known
    frame = self.frame
    n = len(buf)
    try:
        while True:
            if pos + hlen > n:
                break
            sec, frac, caplen, wirelen = rec(buf, pos)
            if self.swapped:
                caplen = self._lengths(caplen, wirelen)
            if caplen > MAX_CAPLEN:
                self.ts = sec * 1000000000 + frac * frac_mul
                self.frame = frame
                self.stop(out, f"record {frame + 1} claims {caplen} captured bytes, more "
                               f"than the maximum {MAX_CAPLEN},")
                return pos
            d = pos + hlen
            end = d + caplen
            if end > n:
                break
            pos = end
            frame += 1
            ts = self.ts = sec * 1000000000 + frac * frac_mul
            if snaplen and caplen > snaplen:
                self.frame = frame
                self.oversized_record(out, caplen)
            if known:
                take(lt, buf, d, end, frame, ts, out)
    finally:
        self.frame = frame
    return pos
