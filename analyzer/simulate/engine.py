"""The discrete-event model: netdump clients, the network between them and netdumpd, and
the capture point. Pure Python, seeded, deterministic; times are integer nanoseconds.

Client timing follows the kernel (protocol reference §5): a send call transmits its packets
back to back, then polls every ~0.5 ms; an ACK is noticed at the first poll after it
arrives and the call completes one poll period later; after 2001 polls (~1.0 s plus a little
driver time, jittered per round) the un-ACKed packets are resent unchanged; after 11 resend
rounds (12 sends) the call fails and the attempt is aborted (no FINISHED).

Frames leave ``run`` in capture-time order as tuples
``(ts_ns, role, src, dst, sport, dport, payload, tag)`` where role is 0 for client UDP,
1 for server UDP (ACK), 2 for a server ICMP port-unreachable (payload = ICMP message) and
``tag`` = (attempt, kind, seqno, send_no, copy, record) lets the capture stage keep the truth.
"""
from __future__ import annotations

import heapq
import random
import socket
import struct
from typing import Iterator

from analyzer.wire import MSG_HDR, MsgType

from .client import client_calls, make_material, max_payload, packetize
from .image import _mix
from .minidump import content_of
from .server import Server
from .specs import DumpSpec, NetworkSpec, spec_dict
from .truth import Attempt

MS = 1_000_000
US = 1_000
_HDR = MSG_HDR.struct
_ACK = struct.Struct(">I")  # the 4-byte ACK (wire.ACK)
NPOLLS = 2000
NRETRIES = 10

ARRIVE, ACKARR, TIMEOUT, CALLDONE, START = range(5)


class _Call:
    __slots__ = ("index", "type", "base", "pkts", "acked", "nacked", "round", "burst_end",
                 "period", "token", "t_start", "late", "first_sent", "done", "ack_t")

    def __init__(self, index, mtype, base, pkts, t):
        self.index = index
        self.type = mtype
        self.base = base
        self.pkts = pkts  # list of (offset, message bytes)
        self.acked = [False] * len(pkts)
        self.nacked = 0
        self.round = 0
        self.burst_end = t
        self.period = 500 * US
        self.token = 0
        self.t_start = t
        self.late: list[int] = []
        self.first_sent = [0] * len(pkts)
        self.done = False
        self.ack_t = 0


class ClientRun:
    """One client host: its dump attempt(s), simulated against the shared server."""

    def __init__(self, index: int, spec: DumpSpec, net: NetworkSpec, server: Server,
                 point: str, seed: int, record: bool, attempts_out: list, epoch_ns: int = 0):
        self.index = index
        self.spec = spec
        self.net = net
        self.server = server
        self.point = point
        self.rng = random.Random(_mix(seed, 1000 + index))
        self.record = record
        self.attempts_out = attempts_out
        self.cip = socket.inet_aton(spec.client_ip)
        self.sip = socket.inet_aton(spec.server_ip)
        self.maxp = max_payload(spec.generation, spec.mtu)
        self.image_seed = spec.seed if spec.seed is not None else _mix(seed, index)
        self.t0 = epoch_ns + int(spec.start_ms * MS)
        self.d = int(net.delay_us * US)
        self.jit = int(net.jitter_us * US)
        self.heap: list = []
        self.out: list = []
        self.seq = 0
        self.tx_count = 0
        self.server_last_tx = 0
        self.drop_seq = dict(spec.drop_seqnos)
        self.drop_ack = dict(spec.drop_acks)
        self.drop_tx = set(spec.drop_packets)
        self.blackouts = [(self.t0 + int(a * MS), self.t0 + int(b * MS)) for a, b in spec.blackout_ms]
        self.ns_per_byte = 8000.0 / net.link_mbps
        self.attempt: Attempt | None = None
        self.attempt_no = 0
        self.fifo_c2s = 0
        self.fifo_s2c = 0
        self.eager = not net.reorder and not net.dup
        self.ack_fx = bool(self.drop_ack or self.blackouts or net.ack_loss)
        self.host_jitter = net.host_jitter
        self.hd_lo = int(net.host_delay_us[0] * US)
        self.hd_span = int((net.host_delay_us[1] - net.host_delay_us[0]) * US)
        lo, hi = net.server_delay_us
        self.sd_lo = int(lo * US)
        self.sd_span = int((hi - lo) * US)

    # --- plumbing -------------------------------------------------------------------------
    def push(self, t, kind, *args):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, args))

    def emit(self, t, role, src, dst, sport, dport, payload, tag):
        self.seq += 1
        heapq.heappush(self.out, (t, self.seq, (t, role, src, dst, sport, dport, payload, tag)))

    def _blackout(self, t):
        for a, b in self.blackouts:
            if a <= t < b:
                return True
        return False

    # --- attempts and calls ---------------------------------------------------------------
    def start_attempt(self, t):
        spec = self.spec
        n = self.attempt_no
        self.attempt_no += 1
        stop = spec.restart_after if (n == 0 and spec.restart_after is not None) else None
        seed = self.image_seed if n == 0 else _mix(self.image_seed, n)
        material = make_material(
            generation=spec.generation, size=spec.size, seed=seed, compress=spec.compress,
            encrypt=spec.encrypt, path=spec.path, hostname=spec.hostname, panic=spec.panic,
            dumptime=spec.dumptime + n * 60, versionstring=spec.versionstring,
            content=content_of(spec))
        att = Attempt(spec.client_ip, spec.server_ip, spec.generation, n,
                      spec_dict(spec), material, self.maxp)
        att.t_start = t
        att.transmissions = [] if self.record else None
        self.attempt = att
        self.attempts_out.append(att)
        self.calls = client_calls(spec.generation, material, stop_after=stop)
        self.stop = stop
        self.seqno = 1
        self.dport = 20023
        self.call = None
        self.ncall = 0
        self.start_call(t)

    def start_call(self, t):
        att = self.attempt
        nxt = next(self.calls, None)
        if nxt is None:
            if self.stop is not None:
                att.outcome = "restarted"
                att.t_end = t
                self.push(t + int(self.spec.restart_delay_ms * MS), START)
            else:
                att.outcome = "finished"
                att.t_end = t
            self.call = None
            return
        mtype, start, data = nxt
        pk = packetize(start, data, self.maxp)
        base = self.seqno
        self.seqno += len(pk)
        msgs = [(off, _HDR.pack(mtype, base + i, off, len(p), 0) + p) for i, (off, p) in enumerate(pk)]
        call = _Call(self.ncall, mtype, base, msgs, t)
        self.ncall += 1
        att.calls += 1
        att.send_calls.append((int(mtype), base, base + len(msgs) - 1))
        self.call = call
        self.send_round(t)

    def send_round(self, t):
        call = self.call
        call.token += 1
        tt = t
        send_no = call.round + 1
        stall = self.host_jitter
        rng = self.rng
        sent = 0
        for i, (off, msg) in enumerate(call.pkts):
            if call.acked[i]:
                continue
            if stall and sent and rng.random() < stall:
                # the host was busy elsewhere (a scheduler delay): the burst goes on later
                tt += self.hd_lo + int(rng.random() * self.hd_span)
                self.attempt.host_stalls += 1
            sent += 1
            if send_no == 1:
                call.first_sent[i] = tt
            self.transmit(tt, call, i, off, msg, send_no)
            tt += int((len(msg) + 90) * self.ns_per_byte) + 1 * US
        call.burst_end = tt
        call.period = 500 * US + self.rng.randrange(200, 1500)
        self.push(tt + (NPOLLS + 1) * call.period, TIMEOUT, call, call.token)
        if call.late:
            # ACKs that came in after the last poll of the previous round: seen at the first poll
            for i in call.late:
                if not call.acked[i]:
                    call.acked[i] = True
                    call.nacked += 1
            call.late = []
            if call.nacked == len(call.pkts):
                call.done = True
                self.push(tt + call.period, CALLDONE, call, call.token)

    def transmit(self, t, call, i, off, msg, send_no):
        att = self.attempt
        net = self.net
        rng = self.rng
        self.tx_count += 1
        att.packets_sent += 1
        att.sent_counts[call.type] = att.sent_counts.get(call.type, 0) + 1
        seqno = call.base + i
        if send_no > 1:
            att.retransmissions_sent += 1
        rec = None
        if att.transmissions is not None:
            rec = [self.tx_count, seqno, call.type, off, len(msg) - 24, send_no, t, "delivered",
                   [], [], 0]
            att.transmissions.append(rec)
        tag = (att, 0, seqno, send_no, 0, rec)
        dport = self.dport
        if self.point == "client":
            self.emit(t, 0, self.cip, self.sip, 20024, dport, msg, tag)
        elif self.point == "mirror":
            self.emit(t + self.d // 2, 0, self.cip, self.sip, 20024, dport, msg, tag)
        # fate on the way to the server
        if self.tx_count in self.drop_tx:
            lost = "dropped (drop_packets)"
        else:
            lost = self._lost(t, att, self.drop_seq, seqno, "drop_seqnos", net.loss)
        if lost:
            if rec is not None:
                rec[7] = lost
            return
        if self.eager:
            # No reordering or duplication: the path is FIFO, so the server can take the
            # packet now, in arrival order.
            ta = t + self.d + (int(rng.random() * self.jit) if self.jit else 0)
            if ta < self.fifo_c2s:
                ta = self.fifo_c2s
            self.fifo_c2s = ta
            if rec is not None:
                rec[8].append(ta)
            self.on_arrive(ta, msg, dport, seqno, send_no, 0, rec, att)
            return
        copies = 2 if (net.dup and rng.random() < net.dup) else 1
        for c in range(copies):
            ta = self._arrival(t, c, True)
            if rec is not None:
                rec[8].append(ta)
                if c:
                    rec[7] = "duplicated"
            self.push(ta, ARRIVE, msg, dport, seqno, send_no, c, rec, att)

    def _lost(self, t: int, att, drops: dict, key, option: str, p: float) -> str | None:
        """Why a datagram sent at ``t`` never arrives, or None: the spec drops the first
        transmissions of ``key`` (``option``: the spec's field, in the first attempt), a
        blackout, or chance ``p``."""
        if key is not None and drops.get(key, 0) > 0 and att.attempt == 0:
            drops[key] -= 1
            return f"dropped ({option})"
        if self.blackouts and self._blackout(t):
            return "dropped (blackout)"
        if p and self.rng.random() < p:
            return "lost"
        return None

    def _arrival(self, t: int, c: int, to_server: bool) -> int:
        """When copy ``c`` of a datagram sent at ``t`` arrives: after the one-way delay and
        jitter, and either a reordering delay or in FIFO order behind the direction's last
        arrival; a duplicate (c = 1) comes a little after."""
        rng, net = self.rng, self.net
        ta = t + self.d
        if self.jit:
            ta += int(rng.random() * self.jit)
        if net.reorder and rng.random() < net.reorder:
            ta += int(rng.random() * net.reorder_delay_us * US)
        elif not c:
            fifo = self.fifo_c2s if to_server else self.fifo_s2c
            if ta < fifo:
                ta = fifo
            if to_server:
                self.fifo_c2s = ta
            else:
                self.fifo_s2c = ta
        if c:
            ta += US + int(rng.random() * 59 * US)
        return ta

    # --- server side ----------------------------------------------------------------------
    def on_arrive(self, t, msg, dport, seqno, send_no, copy, rec, att):
        net = self.net
        rng = self.rng
        point = self.point
        if point == "server":
            self.seq += 1
            heapq.heappush(self.out, (t, self.seq, (t, 0, self.cip, self.sip, 20024, dport, msg,
                                                    (att, 0, seqno, send_no, copy, rec))))
        server = self.server
        nsess = len(server.sessions)
        what, port, ack_seq = server.receive(t, self.spec.client_ip, 20024, dport, msg)
        if what is None:
            return
        if att.session is None and len(server.sessions) > nsess:
            att.session = server.sessions[-1]
        ts = t + self.sd_lo + int(rng.random() * self.sd_span)
        if ts <= self.server_last_tx:
            ts = self.server_last_tx + US
        self.server_last_tx = ts
        if what == "ack":
            payload = _ACK.pack(ack_seq)
            sport, dp, role = port, 20024, 1
            tag = (att, 1, ack_seq, send_no, 0, rec)
        else:
            if not net.icmp:
                return
            payload = _icmp_unreach(self.cip, self.sip, dport, msg)
            sport, dp, role = 0, 0, 2
            tag = (att, 2, seqno, send_no, 0, rec)
        if point == "server":
            self.seq += 1
            heapq.heappush(self.out, (ts, self.seq, (ts, role, self.sip, self.cip, sport, dp,
                                                     payload, tag)))
        elif point == "mirror":
            self.emit(ts + self.d // 2, role, self.sip, self.cip, sport, dp, payload, tag)
        ackrec = None
        if rec is not None and what == "ack":
            ackrec = [ts, "delivered", []]
            rec[9].append(ackrec)
        if self.ack_fx:
            lost = self._lost(ts, att, self.drop_ack, ack_seq if what == "ack" else None,
                              "drop_acks", net.ack_loss)
            if lost:
                if ackrec is not None:
                    ackrec[1] = lost
                return
        copies = 2 if (net.ack_dup and rng.random() < net.ack_dup) else 1
        for c in range(copies):
            ta = self._arrival(ts, c, False)
            if c and ackrec is not None:
                ackrec[1] = "duplicated"
            if ackrec is not None:
                ackrec[2].append(ta)
            if point == "client":
                self.emit(ta, role, self.sip, self.cip, sport, dp, payload, (*tag[:4], c, rec))
            if role == 1:
                self.seq += 1
                heapq.heappush(self.heap, (ta, self.seq, ACKARR, (ack_seq, sport, att)))

    # --- client side ----------------------------------------------------------------------
    def on_ack(self, t, seqno, sport, att):
        if att is not self.attempt:
            return
        call = self.call
        if call is None or call.done:
            return
        self.dport = sport  # the client adopts the ACK's source port
        i = seqno - call.base
        if i < 0 or i >= len(call.pkts) or call.acked[i]:
            return
        if t > call.burst_end + NPOLLS * call.period:
            call.late.append(i)  # after the last poll of this round: noticed after the resend
            return
        call.acked[i] = True
        call.nacked += 1
        if call.round == 0 and call.first_sent[i]:
            att.rtt_first.append(t - call.first_sent[i])
        if call.nacked == len(call.pkts):
            call.done = True
            call.ack_t = t
            k = max(0, -(-(t - call.burst_end) // call.period))
            self.push(call.burst_end + (k + 1) * call.period, CALLDONE, call, call.token)

    def on_timeout(self, t, call, token):
        if call is not self.call or token != call.token or call.done:
            return
        att = self.attempt
        if call.round > NRETRIES:
            # 11 resend rounds and still not ACKed: ETIMEDOUT, the dump is abandoned.
            att.rounds_per_call[call.index] = call.round
            att.outcome = {MsgType.HERALD: "herald-failed",
                           MsgType.FINISHED: "finish-unacked"}.get(call.type, "aborted")
            att.t_end = t
            self._log_call(call, t, failed=True)
            self.call = None
            return
        call.round += 1
        self.send_round(t)

    def on_calldone(self, t, call, token):
        if call is not self.call:
            return
        att = self.attempt
        if call.round:
            att.rounds_per_call[call.index] = call.round
        self._log_call(call, t, failed=False)
        self.call = None
        nbytes = len(call.pkts) * self.maxp
        gap = int(self.spec.work_us * US) + nbytes // 2
        self.start_call(t + gap)

    def _log_call(self, call, t, failed):
        att = self.attempt
        if att.transmissions is None:
            return
        att.call_log.append({
            "call": call.index, "type": int(call.type), "first_seqno": call.base,
            "packets": len(call.pkts), "offset": call.pkts[0][0],
            "bytes": sum(len(m) - 24 for _, m in call.pkts), "rounds": call.round,
            "t_start_ns": call.t_start, "t_end_ns": t, "failed": failed,
            "rtt_ns": (call.ack_t - call.t_start) if call.ack_t else None,
        })

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> Iterator[tuple]:
        self.push(self.t0, START)
        heap, out = self.heap, self.out
        pop = heapq.heappop
        while heap:
            t, _, kind, args = pop(heap)
            while out and out[0][0] <= t:
                yield pop(out)[2]
            if kind == ARRIVE:
                self.on_arrive(t, *args)
            elif kind == ACKARR:
                self.on_ack(t, *args)
            elif kind == CALLDONE:
                if args[1] == args[0].token:
                    self.on_calldone(t, *args)
            elif kind == TIMEOUT:
                self.on_timeout(t, *args)
            else:
                self.start_attempt(t)
        while out:
            yield pop(out)[2]
        if self.attempt is not None and self.attempt.outcome == "running":
            self.attempt.outcome = "aborted"


def _icmp_unreach(cip: bytes, sip: bytes, dport: int, msg: bytes) -> bytes:
    """ICMP port unreachable quoting the offending datagram's IP header and first 8 bytes."""
    from .pcapwriter import ip_header, udp_header
    udp = udp_header(cip, sip, 20024, dport, msg)
    quote = ip_header(cip, sip, 17, 8 + len(msg), ttl=255, ident=0, df=True) + udp
    body = struct.pack(">BBHI", 3, 3, 0, 0) + quote
    s = sum(struct.unpack(">%dH" % (len(body) // 2), body[: len(body) // 2 * 2]))
    if len(body) % 2:
        s += body[-1] << 8
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return body[:2] + struct.pack(">H", ~s & 0xFFFF) + body[4:]
