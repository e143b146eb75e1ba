"""A model of netdumpd: which datagrams it ACKs, and the files it leaves behind.

Follows the server's documented behaviour (protocol reference §6, §11): a HERALD on port
20023 opens a session keyed by client IP on a fresh ephemeral port P; a repeated HERALD before
any data is re-ACKed from P; a HERALD after data closes the old session as timed out (without
flushing its 128 KiB coalescing buffer) and opens the next index. On P, runts, mis-sized
datagrams (including payloads above 4096, which the 24+4096-byte receive buffer truncates) and
unexpected types get no ACK. VMCORE data is coalesced and written at its offset; a KDH is ACKed
first, appends its info block, renames to vmcore_encrypted.* and/or appends .gz/.zst and
truncates compressed dumps to dumplength; EKCD_KEY is written to key.<host>.<N>; FINISHED
flushes, writes "Dump complete" and closes P. File contents are tracked as byte coverage of the
client's stream, so multi-GB dumps need no memory.
"""
from __future__ import annotations

import posixpath
import struct

from analyzer.intervals import IntervalSet
from analyzer.wire import DATASIZE, KDH_V4, MAX_PATH, MSG_HDR, MsgType

from . import infotext

VMCORE_BUFSZ = 128 * 1024
_HDR = MSG_HDR.struct


class FileState:
    """A sparse file built from pwrite()s of one known byte source, plus truncations."""

    __slots__ = ("coverage", "length")

    def __init__(self) -> None:
        self.coverage = IntervalSet()
        self.length = 0

    def write(self, offset: int, length: int) -> None:
        self.coverage.add(offset, offset + length)
        if offset + length > self.length:
            self.length = offset + length

    def truncate(self, length: int) -> None:
        if length < self.length:
            kept = IntervalSet()
            for s, e in intervals_of(self.coverage):
                if s < length:
                    kept.add(s, min(e, length))
            self.coverage = kept
        self.length = length


def intervals_of(iset: IntervalSet) -> list[tuple[int, int]]:
    return list(zip(iset._starts, iset._ends))  # noqa: SLF001 - read-only view


class Session:
    """One netdumpd client session (one index N)."""

    def __init__(self, server: "Server", ip: str, path: str | None, port: int, index: int, t: int):
        self.server = server
        self.ip = ip
        self.dir = path if path is not None else server.default_path
        self.port = port
        self.index = index
        self.opened_at = t
        self.closed_at: int | None = None
        self.status: bytes | None = None  # terminal info line once closed
        self.any_data = False
        self.info = [infotext.header_line(ip, ip)]
        self.kdh_raw: list[bytes] = []
        self.core_name = self._rel(f"vmcore.{ip}.{index}")
        self.vmcore = FileState()
        self.key: FileState | None = None
        self.buf_off = 0
        self.buf_len = 0
        self.pending: list[tuple[int, int]] = []  # buffered (offset, length) not yet written
        self.finished = False
        self.acks = 0

    def _rel(self, name: str) -> str:
        return posixpath.normpath(posixpath.join(self.dir, name))

    @property
    def info_name(self) -> str:
        return self._rel(f"info.{self.ip}.{self.index}")

    @property
    def key_name(self) -> str:
        return self._rel(f"key.{self.ip}.{self.index}")

    # --- write buffer (netdumpd's vmcorebuf) ----------------------------------------------
    def _flush(self) -> None:
        for off, n in self.pending:
            self.vmcore.write(off, n)
        self.pending = []
        self.buf_len = 0

    def _vmcore(self, offset: int, length: int) -> None:
        self.any_data = True
        if self.buf_len + DATASIZE > VMCORE_BUFSZ or (
                self.buf_len > 0 and self.buf_off + self.buf_len != offset):
            self._flush()
        if self.buf_len == 0:
            self.buf_off = offset
        self.pending.append((offset, length))
        self.buf_len += length

    def _kdh(self, payload: bytes) -> None:
        self.any_data = True
        self.kdh_raw.append(payload)
        view = infotext.KdhView(payload)
        self.info.append(view.lines)
        if not view.ok:
            return
        if view.encrypted:
            base = posixpath.basename(self.core_name)
            if base.startswith("vmcore."):  # netdumpd renames only a plain vmcore.* name
                self.core_name = self._rel(f"vmcore_encrypted.{self.ip}.{self.index}")
        if view.suffix:
            self.core_name += view.suffix
            self._flush()
            self.vmcore.truncate(view.truncate_to)

    def _key(self, offset: int, length: int) -> None:
        if self.key is None:
            self.key = FileState()
        self.key.write(offset, length)

    def close(self, t: int, status: bytes, flush: bool) -> None:
        if flush:
            self._flush()
        else:
            self.pending = []  # netdumpd frees the session without writing its buffer
            self.buf_len = 0
        self.info.append(status)
        self.status = status
        self.closed_at = t
        self.finished = status == infotext.COMPLETE

    def info_bytes(self) -> bytes:
        return b"".join(self.info)


class Server:
    """netdumpd for one server IP. ``receive`` returns what the server sends back."""

    def __init__(self, ip: str, default_path: str = ".", first_port: int = 50000):
        self.ip = ip
        self.default_path = default_path
        self.sessions: list[Session] = []
        self.active: dict[str, Session] = {}
        self.by_port: dict[int, Session] = {}
        self.next_index: dict[tuple[str, str], int] = {}
        self.next_port = first_port

    def _herald_path(self, payload: bytes, mh_len: int) -> str | None:
        if 0 < mh_len <= min(MAX_PATH, DATASIZE) and payload[-1:] == b"\0":
            text = payload[:-1].split(b"\0", 1)[0].decode("utf-8", "replace")
            if text and not text.startswith("/") and ".." not in text.split("/"):
                return text
        return None

    def receive(self, t: int, client_ip: str, sport: int, dport: int, udp_payload: bytes):
        """One datagram from client_ip:sport reaches the server at time t (ns).

        Returns ("ack", from_port, seqno), ("icmp", None, None) or (None, None, None).
        """
        if dport == 20023:
            if len(udp_payload) < _HDR.size:
                return None, None, None
            mtype, seqno, _off, mh_len, _aux = _HDR.unpack_from(udp_payload)
            if mtype != MsgType.HERALD or len(udp_payload) - _HDR.size != mh_len:
                return None, None, None
            sess = self.active.get(client_ip)
            if sess is not None:
                if not sess.any_data:
                    sess.acks += 1
                    return "ack", sess.port, seqno
                sess.close(t, infotext.TIMED_OUT, flush=False)
                del self.active[client_ip]
            path = self._herald_path(udp_payload[_HDR.size:], mh_len)
            d = path if path is not None else self.default_path
            key = (posixpath.normpath(d), client_ip)
            index = self.next_index.get(key, 0)
            self.next_index[key] = index + 1
            port = self.next_port
            self.next_port += 1
            sess = Session(self, client_ip, path, port, index, t)
            self.sessions.append(sess)
            self.active[client_ip] = sess
            self.by_port[port] = sess
            sess.acks += 1
            return "ack", port, seqno
        sess = self.by_port.get(dport)
        if sess is None or sess.closed_at is not None or sess.ip != client_ip or sport != 20024:
            return "icmp", None, None
        if len(udp_payload) < _HDR.size:
            return None, None, None
        received = udp_payload  # recv() into a 24+4096 byte buffer truncates longer datagrams
        if len(received) > _HDR.size + DATASIZE:
            received = received[:_HDR.size + DATASIZE]
        mtype, seqno, offset, mh_len, _aux = _HDR.unpack_from(received)
        if len(received) - _HDR.size != mh_len:
            return None, None, None
        data_len = mh_len
        if mtype == MsgType.VMCORE:
            sess._vmcore(offset, data_len)
        elif mtype == MsgType.KDH:
            sess._kdh(received[_HDR.size:])
        elif mtype == MsgType.EKCD_KEY:
            sess._key(offset, data_len)
        elif mtype == MsgType.FINISHED:
            sess.close(t, infotext.COMPLETE, flush=True)
            del self.active[client_ip]
        else:
            return None, None, None
        sess.acks += 1
        return "ack", sess.port, seqno

    def finish(self, t: int) -> None:
        """End of the simulation: every open session eventually times out (600 s)."""
        for ip, sess in list(self.active.items()):
            sess.close(t + 600 * 10**9, infotext.TIMED_OUT, flush=False)
            del self.active[ip]


def kdh_fields(raw: bytes) -> dict:
    hdr = KDH_V4.parse(raw)
    return {"dumplength": hdr.dumplength, "compression": hdr.compression,
            "dumpkeysize": hdr.dumpkeysize, "parity": struct.unpack_from("<I", raw, 508)[0]}
