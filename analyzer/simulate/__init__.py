"""Seeded, deterministic simulation of FreeBSD netdump clients, the network and netdumpd,
producing packet captures together with their exact ground truth.

Typical use in a test::

    from analyzer.simulate import simulate, DumpSpec, NetworkSpec, CaptureSpec
    path, truth = simulate(tmp_path / "x.pcap", DumpSpec(generation="12", size=64 << 10),
                           network=NetworkSpec(loss=0.02), seed=3)
    truth.dumps[0].session.core_name   # 'vmcore.192.0.2.10.0'
    truth.file_bytes('vmcore.192.0.2.10.0')
    truth.to_json()

``simulate_frames`` gives the captured frames without writing a file.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from analyzer.wire import MSG_HDR, MsgType

from .engine import ClientRun, DumpSpec, NetworkSpec
from .image import _mix
from .pcapwriter import CaptureWriter, written_whole
from .server import Server
from .specs import check_network, check_probability
from .truth import Attempt, GroundTruth

__all__ = ["simulate", "simulate_frames", "DumpSpec", "NetworkSpec", "CaptureSpec",
           "GroundTruth", "Attempt", "CaptureWriter"]

_HDR = MSG_HDR.struct
RECORD_LIMIT = 32 << 20  # per-packet fates are kept for dumps up to this size by default


@dataclass
class CaptureSpec:
    """Where and how the traffic is captured.

    point: "server" (sees client packets that reached the server and every ACK it sent),
    "client" (every client transmission and the ACKs that reached the client) or "mirror"
    (a tap before any loss in either direction: every transmission of both sides).
    loss: capture-only loss per datagram (the endpoints still got it). start_after: the
    capture misses the first N frames. Format options are those of ``CaptureWriter``.
    """

    point: str = "server"
    loss: float = 0.0
    start_after: int = 0
    format: str = "pcap"
    link: str = "ethernet"
    snaplen: int = 262144
    tsres: str = "us"
    byteorder: str = "<"
    gzip: bool = False
    fragment: int | None = None
    interfaces: list | None = None
    drop_frames: tuple = ()  # 1-based numbers (among frames reaching the capture point)

    def writer_opts(self) -> dict:
        return dict(fmt=self.format, link=self.link, snaplen=self.snaplen, tsres=self.tsres,
                    byteorder=self.byteorder, gzip=self.gzip, fragment=self.fragment,
                    interfaces=self.interfaces)


class _Sim:
    def __init__(self, dumps, network, capture, seed, record, start_time=None):
        if isinstance(dumps, DumpSpec):
            dumps = [dumps]
        self.dumps = list(dumps)
        self.network = network or NetworkSpec()
        self.capture = capture or CaptureSpec()
        if self.capture.point not in ("server", "client", "mirror"):
            raise ValueError("capture point must be server, client or mirror")
        check_network(self.network)
        check_probability("capture loss", self.capture.loss)
        for d in self.dumps:
            check_probability("capture_loss", d.capture_loss)
        self.seed = seed
        if record is None:
            record = max(d.size for d in self.dumps) <= RECORD_LIMIT
        params = {"dumps": [_jsonable(asdict(d)) for d in self.dumps],
                  "network": _jsonable(asdict(self.network)),
                  "capture": _jsonable(asdict(self.capture))}
        self.truth = GroundTruth(seed, params)
        if start_time is None:
            start_time = self.dumps[0].dumptime + 2
        epoch_ns = int(start_time * 1_000_000_000)
        servers = {}
        self.runs = []
        for i, d in enumerate(self.dumps):
            srv = servers.get(d.server_ip)
            if srv is None:
                srv = servers[d.server_ip] = Server(d.server_ip, first_port=49152 + 1000 * len(servers)
                                                    + random.Random(_mix(seed, -3)).randrange(500))
            self.runs.append(ClientRun(i, d, self.network, srv, self.capture.point, seed, record,
                                       self.truth.attempts, epoch_ns))
        self.servers = list(servers.values())
        self.truth.server = _ServerSet(self.servers)
        self.cap_rng = random.Random(_mix(seed, -5))
        self.seen = 0
        self.kept = 0
        self.t_last = 0

    def frames(self) -> Iterator[tuple]:
        gens = [r.run() for r in self.runs]
        merged = gens[0] if len(gens) == 1 else heapq.merge(*gens, key=lambda f: f[0])
        cap = self.capture
        loss = cap.loss
        rng = self.cap_rng
        drops = set(cap.drop_frames)
        per_client = {r.spec.client_ip: r.spec.capture_loss for r in self.runs
                      if r.spec.capture_loss}
        for f in merged:
            self.seen += 1
            self.t_last = f[0]
            if self.seen <= cap.start_after or self.seen in drops:
                continue
            if loss and rng.random() < loss:
                continue
            if per_client:
                cl = per_client.get(f[7][0].client_ip)
                if cl and rng.random() < cl:
                    continue
            self.kept += 1
            yield f

    def account(self, f, kept_payload: int) -> None:
        """Update the capture view of the truth for one written frame."""
        _ts, role, _s, _d, _sp, _dp, payload, tag = f
        att, kind, seqno, send_no, copy, rec = tag
        if kind == 0:
            att.cap_client_frames += 1
            if rec is not None:
                rec[10] += 1
            mtype, _seq, offset, mh_len, _aux = _HDR.unpack_from(payload)
            att.cap_counts[mtype] = att.cap_counts.get(mtype, 0) + 1
            have = kept_payload - 24
            if have < mh_len:
                att.cap_cut_frames += 1
            if copy:
                att.cap_net_dups += 1
            else:
                if seqno in att.cap_seen:
                    att.cap_retrans_visible += 1
                if send_no > 1:
                    att.cap_retrans += 1
                    spurious = seqno in att.cap_acked
                    if spurious:
                        att.cap_spurious += 1
                    else:
                        att.cap_needed += 1
                    if att.transmissions is not None:
                        att.cap_retrans_list.append({
                            "seqno": seqno, "send": send_no, "ts_ns": f[0],
                            "class": "spurious" if spurious else "needed",
                            "cause": _cause(att, seqno, send_no)})
            att.cap_seen.add(seqno)
            if have > 0:
                n = min(have, mh_len)
                if mtype == MsgType.VMCORE:
                    att.cap_vmcore.add(offset, offset + n)
                elif mtype == MsgType.EKCD_KEY:
                    att.cap_key.add(offset, offset + n)
            if mtype == MsgType.KDH:
                att.cap_kdh += 1
            elif mtype == MsgType.FINISHED:
                att.cap_finished += 1
        elif kind == 1:
            att.cap_ack_frames += 1
            att.cap_acked.add(seqno)
        else:
            att.cap_icmp_frames += 1

    def finish(self) -> None:
        for srv in self.servers:
            srv.finish(self.t_last)
        self.truth.capture.update({
            "frames_at_capture_point": self.seen, "frames_written": self.kept,
            "point": self.capture.point, "format": self.capture.format,
            "link": self.capture.link, "t_end_ns": self.t_last,
        })


def _cause(att: Attempt, seqno: int, send_no: int) -> str:
    """Why the client resent this seqno (from the simulator's knowledge)."""
    earlier = [t for t in att.transmissions if t[1] == seqno and t[5] < send_no]
    if not any(t[8] for t in earlier):
        return "data-lost"
    acks = [a for t in earlier for a in t[9]]
    if not acks:
        return "no-ack"
    if any(a[2] for a in acks):
        return "ack-late"
    return "ack-lost"


class _ServerSet:
    """Several netdumpd instances (one per server IP) seen as one for the truth."""

    def __init__(self, servers):
        self.servers = servers

    @property
    def sessions(self):
        return [s for srv in self.servers for s in srv.sessions]


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def simulate_frames(dumps=DumpSpec(), network: NetworkSpec | None = None,
                    capture: CaptureSpec | None = None, seed: int = 0,
                    record: bool | None = None, start_time: float | None = None):
    """(frames, truth): the captured frames as a list; the truth is complete on return."""
    sim = _Sim(dumps, network, capture, seed, record, start_time)
    out = []
    for f in sim.frames():
        sim.account(f, len(f[6]))
        out.append(f)
    sim.finish()
    return out, sim.truth


def simulate(output, dumps=DumpSpec(), network: NetworkSpec | None = None,
             capture: CaptureSpec | None = None, seed: int = 0,
             record: bool | None = None, expected: str | Path | None = None,
             start_time: float | None = None):
    """Run the model and write the capture to ``output``; returns (Path(output), truth).

    ``dumps``: a DumpSpec or a list of them (one per client, interleaved by time).
    ``expected``: also write netdumpd's files, truth.json and SHA256SUMS into that directory.
    ``start_time``: capture clock (seconds since the epoch) of the first client's start;
    default: two seconds after its KDH dump time.
    """
    sim = _Sim(dumps, network, capture, seed, record, start_time)
    output = Path(output)
    with written_whole([output]) as (part,):
        writer = CaptureWriter(str(part), **sim.capture.writer_opts())
        try:
            write = writer.write
            account = sim.account
            for f in sim.frames():
                account(f, write(f))
        finally:
            writer.close()
    sim.finish()
    sim.truth.capture["file_frames"] = writer.frames
    if expected is not None:
        sim.truth.write_expected(expected)
    return output, sim.truth
