"""A real netdump exchange over UDP sockets on loopback, for capture tests with real tools.

The client binds <client_ip>:20024 and heralds to <server_ip>:20023; the server answers like
netdumpd from a fresh socket bound to an ephemeral port and connected to the client's 20024;
every later message goes to that port. Message contents, chunking, seqnos and the resend rule
are the simulator's (``client.client_calls``); the server's decisions and the saved files come
from the ``server.Server`` model, with the bytes kept in memory. Timeouts are short (the poll
timeout is ``poll_timeout`` instead of ~1 s) and the whole run is bounded by ``deadline``.
"""
from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from analyzer.wire import MSG_HDR

from .client import client_calls, make_material, max_payload, packetize
from .server import Server

_HDR = MSG_HDR.struct


def pick_client_ip(preferred: str = "127.0.0.2") -> str:
    """127.0.0.2 when it can be bound (Linux routes all of 127/8 to lo), else 127.0.0.1."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((preferred, 0))
        return preferred
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


@dataclass
class LiveResult:
    client_ip: str
    server_ip: str
    server_port: int | None
    outcome: str
    vmcore_name: str | None
    vmcore: bytes
    info: bytes
    files: dict = field(default_factory=dict)  # relpath -> bytes as netdumpd would save them
    packets_sent: int = 0


class _LiveServer(threading.Thread):
    def __init__(self, ip: str, deadline: float):
        super().__init__(daemon=True)
        self.ip = ip
        self.deadline = deadline
        self.model = Server(ip)
        self.listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listen.bind((ip, 20023))
        self.socks: dict[int, socket.socket] = {}  # session port -> connected socket
        self.data = {}  # port -> bytearray (vmcore), key bytes
        self.keys = {}
        self.done = threading.Event()
        self.stop = False

    def run(self) -> None:
        try:
            while not self.stop and time.monotonic() < self.deadline:
                rl, _, _ = select.select([self.listen, *self.socks.values()], [], [], 0.05)
                for s in rl:
                    if s is self.listen:
                        self._herald()
                    else:
                        self._session(s)
        finally:
            self.listen.close()
            for s in self.socks.values():
                s.close()

    def _herald(self) -> None:
        msg, (cip, cport) = self.listen.recvfrom(65535)
        before = len(self.model.sessions)
        what, port, seqno = self.model.receive(time.monotonic_ns(), cip, cport, 20023, msg)
        if what != "ack":
            return
        if len(self.model.sessions) > before:
            sess = self.model.sessions[-1]
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.ip, 0))
            sock.connect((cip, 20024))
            real_port = sock.getsockname()[1]
            # the model numbers ports itself; use the kernel's ephemeral port instead
            self.model.by_port.pop(sess.port, None)
            sess.port = real_port
            self.model.by_port[real_port] = sess
            self.socks[real_port] = sock
            self.data[real_port] = bytearray()
        sock = self.socks[self.model.active[cip].port]
        sock.send(struct.pack(">I", seqno))

    def _session(self, sock: socket.socket) -> None:
        port = sock.getsockname()[1]
        try:
            msg = sock.recv(24 + 4096)
        except OSError:
            return
        cip = sock.getpeername()[0]
        sess = self.model.by_port.get(port)
        what, _port, seqno = self.model.receive(time.monotonic_ns(), cip, 20024, port, msg)
        if len(msg) >= 24:
            mtype, _s, off, mlen, _a = _HDR.unpack_from(msg)
            if what == "ack" and mtype == 3:
                buf = self.data[port]
                if len(buf) < off + mlen:
                    buf.extend(bytes(off + mlen - len(buf)))
                buf[off:off + mlen] = msg[24:24 + mlen]
            elif what == "ack" and mtype == 5:
                kb = self.keys.setdefault(port, bytearray())
                if len(kb) < off + mlen:
                    kb.extend(bytes(off + mlen - len(kb)))
                kb[off:off + mlen] = msg[24:24 + mlen]
        if what == "ack":
            sock.send(struct.pack(">I", seqno))
        if sess is not None and sess.closed_at is not None:
            self.done.set()


def serve(ip: str, deadline: float) -> _LiveServer:
    """Start a netdumpd-like server on ``ip`` (until the monotonic ``deadline``)."""
    server = _LiveServer(ip, deadline)
    server.start()
    return server


@dataclass
class ClientRun:
    """What a live client did: its outcome, transmissions, and send calls (type, first and
    last seqno), and how many transmissions were resends."""

    outcome: str = "finished"
    sent: int = 0
    calls: list = field(default_factory=list)
    resends: int = 0


def send_dump(material, generation: str, client_ip: str, server_ip: str, mtu: int,
              poll_timeout: float, end: float, skip: set) -> ClientRun:
    """The client side: every send call of the dump, resending what is not ACKed after
    ``poll_timeout``; ``skip``: seqnos whose first transmission is left out."""
    maxp = max_payload(generation, mtu)
    cs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cs.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    cs.bind((client_ip, 20024))
    dport = 20023
    seq = 1
    run = ClientRun()
    try:
        for mtype, start, data in client_calls(generation, material):
            pk = packetize(start, data, maxp)
            msgs = [_HDR.pack(mtype, seq + i, off, len(p), 0) + p for i, (off, p) in enumerate(pk)]
            run.calls.append((int(mtype), seq, seq + len(msgs) - 1))
            acked = [False] * len(msgs)
            ok = False
            for rnd in range(12):
                for i, m in enumerate(msgs):
                    if not acked[i]:
                        if rnd == 0 and seq + i in skip:
                            continue
                        cs.sendto(m, (server_ip, dport))
                        run.sent += 1
                        run.resends += rnd > 0
                t_round = time.monotonic() + poll_timeout
                while not all(acked) and time.monotonic() < min(t_round, end):
                    rl, _, _ = select.select([cs], [], [], 0.01)
                    if not rl:
                        continue
                    ack, (_sip, sport) = cs.recvfrom(65535)
                    if len(ack) != 4:
                        continue
                    dport = sport
                    n = struct.unpack(">I", ack)[0] - seq
                    if 0 <= n < len(msgs):
                        acked[n] = True
                if all(acked):
                    ok = True
                    break
                if time.monotonic() >= end:
                    break
            if not ok:
                run.outcome = "aborted"
                break
            seq += len(msgs)
    finally:
        cs.close()
    return run


def live_material(size: int, generation: str, *, path: str | None = None,
                  compress: str = "none", encrypt: bool = False, seed: int = 0):
    return make_material(generation=generation, size=size, seed=seed, compress=compress,
                         encrypt=encrypt, path=path, hostname="livebox", panic="page fault",
                         dumptime=int(time.time()), versionstring=None)


def run_live(size: int = 64 << 10, generation: str = "13", *, client_ip: str | None = None,
             server_ip: str = "127.0.0.1", path: str | None = None, compress: str = "none",
             encrypt: bool = False, seed: int = 0, mtu: int = 1500,
             poll_timeout: float = 0.2, deadline: float = 8.0,
             drop_first_send_of: tuple = ()) -> LiveResult:
    """Run one dump over real sockets; returns what the server saved.

    ``drop_first_send_of``: seqnos whose first transmission the client skips (a real resend
    then follows after ``poll_timeout``).
    """
    client_ip = client_ip or pick_client_ip()
    end = time.monotonic() + deadline
    server = serve(server_ip, end)
    material = live_material(size, generation, path=path, compress=compress, encrypt=encrypt,
                             seed=seed)
    try:
        client = send_dump(material, generation, client_ip, server_ip, mtu, poll_timeout, end,
                           set(drop_first_send_of))
    finally:
        server.done.wait(max(0.0, min(1.0, end - time.monotonic())))
        server.stop = True
        server.join(timeout=2)
    sess = server.model.sessions[0] if server.model.sessions else None
    files = {}
    vm = b""
    if sess is not None:
        raw = bytes(server.data.get(sess.port, b""))
        length = sess.vmcore.length
        vm = (raw + bytes(max(0, length - len(raw))))[:length]
        files[sess.core_name] = vm
        files[sess.info_name] = sess.info_bytes()
        if sess.key is not None:
            files[sess.key_name] = bytes(server.keys.get(sess.port, b""))
    return LiveResult(client_ip, server_ip, sess.port if sess else None, client.outcome,
                      sess.core_name if sess else None, vm,
                      sess.info_bytes() if sess else b"", files, client.sent)
