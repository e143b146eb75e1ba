"""Build netdump datagrams in tests: a dump as a client would send it, with server ACKs."""
from __future__ import annotations

import socket
from dataclasses import dataclass, field

from analyzer.datagram import Datagram
from analyzer.wire import MsgType, build_ack, build_kdh, build_kdk, build_message

CLIENT, SERVER, DATA_PORT = "192.0.2.7", "192.0.2.1", 40001


def ip(text: str) -> bytes:
    return socket.inet_aton(text)


@dataclass
class Conversation:
    """A netdump session written as datagrams, one call per packet, frames numbered in order."""

    client: str = CLIENT
    server: str = SERVER
    data_port: int = DATA_PORT
    items: list = field(default_factory=list)
    t: int = 1_700_000_000 * 10**9
    seq: int = 1

    def _next(self, src, dst, sport, dport, payload, step=100_000, **kw) -> Datagram:
        self.t += step
        d = Datagram(len(self.items) + 1, self.t, ip(src), ip(dst), sport, dport, payload, **kw)
        self.items.append(d)
        return d

    def send(self, mtype, seqno=None, offset=0, payload=b"", dport=None, **kw) -> Datagram:
        if seqno is None:
            seqno, self.seq = self.seq, self.seq + 1
        port = dport if dport is not None else (20023 if mtype == MsgType.HERALD else self.data_port)
        return self._next(self.client, self.server, 20024, port,
                          build_message(mtype, seqno, offset, payload), **kw)

    def raw(self, payload: bytes, dport=None, **kw) -> Datagram:
        return self._next(self.client, self.server, 20024, dport or self.data_port, payload, **kw)

    def ack(self, seqno: int, sport=None, **kw) -> Datagram:
        return self._next(self.server, self.client, sport or self.data_port, 20024,
                          build_ack(seqno), **kw)

    def herald(self, path: bytes | None = b"crash/web1", ack=True):
        d = self.send(MsgType.HERALD, payload=(path + b"\0") if path else b"")
        if ack:
            self.ack(d.payload and int.from_bytes(d.payload[4:8], "big"))
        return d

    def data(self, image: bytes, chunk=1448, ack=True, start=0):
        out = []
        for off in range(0, len(image), chunk):
            out.append(self.send(MsgType.VMCORE, offset=start + off, payload=image[off:off + chunk]))
        if ack:
            for d in out:
                self.ack(int.from_bytes(d.payload[4:8], "big"))
        return out

    def kdh(self, dumplength, ack=True, **fields):
        fields.setdefault("architecture", "amd64")
        fields.setdefault("architectureversion", 2)
        fields.setdefault("blocksize", 4096)
        fields.setdefault("hostname", "web1")
        fields.setdefault("versionstring", "FreeBSD 14.1-RELEASE amd64\n")
        fields.setdefault("panicstring", "test panic")
        fields.setdefault("dumptime", 1_700_000_000)
        d = self.send(MsgType.KDH, payload=build_kdh(dumplength=dumplength, **fields))
        if ack:
            self.ack(int.from_bytes(d.payload[4:8], "big"))
        return d

    def key(self, ack=True):
        blob = build_kdk(2, b"\x11" * 32, b"\x22" * 256)
        out = [self.send(MsgType.EKCD_KEY, offset=o, payload=blob[o:o + 1448])
               for o in range(0, len(blob), 1448)]
        if ack:
            for d in out:
                self.ack(int.from_bytes(d.payload[4:8], "big"))
        return blob

    def finished(self, ack=True):
        d = self.send(MsgType.FINISHED)
        if ack:
            self.ack(int.from_bytes(d.payload[4:8], "big"))
        return d


def image(size: int, seed: int = 1) -> bytes:
    """Deterministic dump-like bytes."""
    import random
    rng = random.Random(seed)
    head = b"minidump FreeBSD/amd64\0\0"
    return (head + rng.randbytes(size))[:size]


def clean_dump(size=16384, path=b"crash/web1", **kw) -> tuple[Conversation, bytes]:
    c = Conversation(**kw)
    img = image(size)
    c.herald(path)
    c.data(img)
    c.kdh(len(img))
    c.finished()
    return c, img
