"""Several capture points on one path: a capture per tap, and the truth of every
transmission (which taps saw it, where the network lost it).

The engine is run once with its capture point at a mirror before any loss, so every
transmission of both sides goes by with its fate (delivered, and when; or lost). Each tap sits
at a position along the path, 0 the client host, 1 the server host: it sees a client packet
at ``t_sent + position * (t_arrival - t_sent)`` when the packet got that far, an ACK the same
way from the server's side. A packet the network lost is lost at one of ``loss_at`` (a
position between taps); taps before that point saw it, those after did not. Each tap also
misses frames of its own (``drop``, ``miss_packets``, ``miss_acks``) and has its own clock.
Network duplicates are made just before the server: only a tap at position 1 sees both.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from pathlib import Path

from analyzer.intervals import IntervalSet
from analyzer.wire import MSG_HDR, MsgType

from . import CaptureSpec, _Sim
from .image import _mix
from .pcapwriter import CaptureWriter, written_whole

_HDR = MSG_HDR.struct


@dataclass
class TapSpec:
    """One capture point. ``miss_packets``: client transmission numbers (1-based, as
    ``DumpSpec.drop_packets``) the tap misses; ``miss_acks``: seqnos whose every ACK it
    misses; ``drop``: probability it misses any other frame; ``alter_packets``: client
    transmissions it records with the last payload byte changed (checksums made to match,
    as a capture host whose NIC corrupts after checking would show them);
    ``clock_drift_ppm``: how fast its clock runs ahead (from the start of the simulation,
    where it is ``clock_offset_s`` ahead)."""

    name: str
    position: float  # 0 = client host, 1 = server host
    drop: float = 0.0
    clock_offset_s: float = 0.0
    clock_drift_ppm: float = 0.0
    miss_packets: tuple = ()
    miss_acks: tuple = ()
    alter_packets: tuple = ()
    format: str = "pcap"
    link: str = "ethernet"
    tsres: str = "us"


POINTS = {"client": 0.0, "mirror": 0.5, "server": 1.0}


def _segment(taps: list[TapSpec], q: float, toward_server: bool) -> tuple:
    """(last tap before the loss point, first tap after it), in the packet's direction."""
    if toward_server:
        before = [t.name for t in taps if t.position < q]
        after = [t.name for t in taps if t.position > q]
        return (before[-1] if before else None, after[0] if after else None)
    before = [t.name for t in taps if t.position > q]
    after = [t.name for t in taps if t.position < q]
    return (before[0] if before else None, after[-1] if after else None)


class _Tap:
    def __init__(self, spec: TapSpec, path: str, seed: int, index: int, origin: int = 0):
        self.spec = spec
        self.origin = origin  # true time (ns) its clock is clock_offset_s ahead at
        self.drift = spec.clock_drift_ppm / 1e6
        self.writer = CaptureWriter(path, fmt=spec.format, link=spec.link, tsres=spec.tsres)
        self.rng = random.Random(_mix(seed, 7000 + index))
        self.offset = int(round(spec.clock_offset_s * 1e9))
        self.heap: list = []
        self.n = 0
        self.vmcore: dict[int, IntervalSet] = {}  # attempt index -> VMCORE bytes captured
        self.kdh: set[int] = set()

    def see(self, t: int, frame: tuple) -> bool:
        """Queue the frame at tap time ``t`` unless the tap misses it; True when kept."""
        if self.spec.drop and self.rng.random() < self.spec.drop:
            return False
        self.n += 1
        heapq.heappush(self.heap, (t, self.n, frame))
        return True

    def flush(self, before: int | None, attempts: list) -> None:
        heap = self.heap
        while heap and (before is None or heap[0][0] < before):
            t, _n, f = heapq.heappop(heap)
            clock = t + self.offset + int((t - self.origin) * self.drift)
            kept = self.writer.write((clock, *f[1:]))
            if f[1] == 0 and kept >= 24:
                mtype, _seq, offset, mh_len, _aux = _HDR.unpack_from(f[6])
                k = attempts.index(f[7][0])
                if mtype == MsgType.VMCORE:
                    self.vmcore.setdefault(k, IntervalSet()).add(
                        offset, offset + min(mh_len, kept - 24))
                elif mtype == MsgType.KDH:
                    self.kdh.add(k)


def simulate_vantage(outputs: dict, taps: list[TapSpec], dumps, network=None, seed: int = 0,
                     loss_at: tuple = (0.5,), loss_where: dict | None = None,
                     start_time: float | None = None):
    """Write one capture per tap (``outputs``: tap name -> path); returns (paths, truth).

    ``loss_at``: positions where the network's losses happen, one picked per lost packet;
    ``loss_where``: client transmission number -> position, for chosen packets. The returned
    truth is the engine's, with ``truth.vantage`` (see :func:`vantage_truth`) added.
    """
    taps = sorted(taps, key=lambda t: t.position)
    sim = _Sim(dumps, network, CaptureSpec(point="mirror"), seed, True, start_time)
    rng = random.Random(_mix(seed, 6999))
    where = dict(loss_where or {})
    records: list[dict] = []
    by_rec: dict[int, dict] = {}
    with written_whole(outputs[t.name] for t in taps) as parts:
        origin = int((start_time or sim.dumps[0].dumptime + 2) * 1e9)
        state = [_Tap(t, str(p), seed, i, origin) for i, (t, p) in enumerate(zip(taps, parts))]
        try:
            _run(sim, state, taps, records, by_rec, rng, where, loss_at)
        finally:
            for tap in state:
                tap.writer.close()
    sim.finish()
    truth = sim.truth
    truth.vantage = vantage_truth(taps, records, outputs)
    truth.vantage_physical = vantage_truth(taps, records, outputs, evidence=False)
    dumps = range(len(truth.attempts))
    truth.tap_missing = {t.spec.name: {k: _own(truth.attempts[k], t, k) for k in dumps}
                         for t in state}
    truth.union_missing = {k: _union(truth.attempts[k], state, k) for k in dumps}
    truth.transmission_records = records
    truth.clock_origin = origin
    return {t.name: Path(outputs[t.name]) for t in taps}, truth


def _run(sim, state: list[_Tap], taps: list[TapSpec], records: list, by_rec: dict, rng,
         where: dict, loss_at: tuple) -> None:
    """Every simulated frame to the taps that see it, with its transmission's record."""
    d2 = sim.runs[0].d // 2
    d = sim.runs[0].d
    attempts = sim.truth.attempts
    for f in sim.frames():
        m, role = f[0], f[1]
        att, kind, seqno, send_no, copy, rec = f[7]
        if kind == 0:
            t_sent = m - d2
            arrivals = rec[8] if rec is not None else []
            r = {"dump": attempts.index(att), "n": rec[0], "seqno": seqno, "send": send_no,
                 "type": int(rec[2]), "seen": [], "lost_at": None, "lost_between": None}
            records.append(r)
            by_rec[id(rec)] = r
            q = None
            if not arrivals:
                q = where.get(rec[0], rng.choice(loss_at))
                r["lost_at"] = q
                r["lost_between"] = list(_segment(taps, q, True))
            for tap in state:
                p = tap.spec.position
                if q is not None and p >= q:
                    continue
                ta = arrivals[0] if arrivals else t_sent + d
                if rec[0] in tap.spec.miss_packets:
                    continue
                copy = _altered(f) if rec[0] in tap.spec.alter_packets else f
                if tap.see(t_sent + int(p * (ta - t_sent)), copy):
                    r["seen"].append(tap.spec.name)
                if p >= 1.0:
                    for extra in arrivals[1:]:  # a network duplicate
                        if tap.see(extra, f) and tap.spec.name not in r["seen"]:
                            r["seen"].append(tap.spec.name)
        else:
            ts = m - d2
            ackrec = None
            if kind == 1 and rec is not None:
                ackrec = next((a for a in rec[9] if a[0] == ts), None)
            arrivals = ackrec[2] if ackrec is not None else ([ts + d] if kind == 2 else [])
            q = None
            if not arrivals:
                q = rng.choice(loss_at)
            if kind == 1 and id(rec) in by_rec:
                by_rec[id(rec)].setdefault("acks", []).append(
                    {"seen": [], "lost_at": q})
            for tap in state:
                p = tap.spec.position
                if q is not None and p <= q:
                    continue
                if kind == 1 and seqno in tap.spec.miss_acks:
                    continue
                ta = arrivals[0] if arrivals else ts + d
                if tap.see(ts + int((1 - p) * (ta - ts)), f) and kind == 1 \
                        and id(rec) in by_rec:
                    by_rec[id(rec)]["acks"][-1]["seen"].append(tap.spec.name)
                if p <= 0.0:
                    for extra in arrivals[1:]:
                        tap.see(extra, f)
        for tap in state:
            tap.flush(m - d2 - 1, attempts)
    for tap in state:
        tap.flush(None, attempts)


def _altered(f: tuple) -> tuple:
    payload = f[6][:-1] + bytes([f[6][-1] ^ 0xFF])
    return (*f[:6], payload, *f[7:])


def _missing(att, cov: IntervalSet, kdh_seen: bool) -> list[list[int]]:
    """Missing VMCORE ranges as an analyzer of those frames alone would report them (KDH
    dumplength when a KDH was among them, else the end of what they hold)."""
    length = att.material.stream.dumplength if kdh_seen else cov.max
    return [list(r) for r in cov.gaps(0, length or 0)]


def _own(att, tap: _Tap, k: int) -> list[list[int]]:
    return _missing(att, tap.vmcore.get(k, IntervalSet()), k in tap.kdh)


def _union(att, state: list[_Tap], k: int) -> list[list[int]]:
    cov = IntervalSet()
    for tap in state:
        for a, b in tap.vmcore.get(k, ()):
            cov.add(a, b)
    return _missing(att, cov, any(k in tap.kdh for tap in state))


def _evident(records: list[dict]) -> list[tuple[dict, bool]]:
    """The transmissions the captures can tell of, each with whether an ACK of it was seen:
    a copy some tap saw, or nobody saw but whose ACK was seen, or that a later copy of its
    seqno (seen, or told by its ACK) shows was sent (resends follow each other by rounds)."""
    out, later = [], set()
    for r in reversed(records):
        acked = any(a["seen"] for a in r.get("acks", ()))
        key = (r["dump"], r["seqno"])
        if r["seen"] or acked or key in later:
            out.append((r, acked))
            later.add(key)
    out.reverse()
    # before a dump's first message a tap saw, nothing tells how many copies went unseen
    # (an ACK before it belongs to no session yet)
    started: set = set()
    kept = []
    for r, acked in out:
        if r["seen"]:
            started.add(r["dump"])
        if r["dump"] in started:
            kept.append((r, acked))
    return kept


def vantage_truth(taps: list[TapSpec], records: list[dict], outputs: dict,
                  evidence: bool = True) -> dict:
    """Per dump attempt, the vantage table as the truth has it (client transmissions only;
    capture names are the output paths as given).

    With ``evidence`` (what the report is held to), the table the contract's rules give on
    what the captures hold: transmissions that left no trace are not counted, a packet is a
    tap's drop when a tap further on saw it or its ACK was seen, and lost after the furthest
    tap that saw it when no ACK of it was seen. Without, the simulation's own account:
    every transmission, each loss where it happened."""
    names = [t.name for t in taps]
    rank = {n: i for i, n in enumerate(names)}
    path = {n: str(outputs[n]) for n in names}
    out: dict[int, dict] = {}
    items = _evident(records) if evidence else [(r, None) for r in records]
    for r, acked in items:
        v = out.setdefault(r["dump"], {
            "order": [path[n] for n in names],
            "transmissions": {"total": 0, "seen_by_all": 0,
                              "seen_by": {path[n]: 0 for n in names}, "seen_by_none": 0},
            "lost_between": {}, "tap_drops": {path[n]: 0 for n in names}})
        tx = v["transmissions"]
        tx["total"] += 1
        seen = set(r["seen"])
        for n in seen:
            tx["seen_by"][path[n]] += 1
        if len(seen) == len(names):
            tx["seen_by_all"] += 1
        if not seen:
            tx["seen_by_none"] += 1
        if evidence:
            furthest = max((rank[n] for n in seen), default=-1)
            reach = len(names) if acked else furthest
            lost = None if acked or not seen or furthest == len(names) - 1 else \
                (names[furthest], names[furthest + 1])
        else:
            q = r["lost_at"]
            reach = sum(1 for t in taps if q is None or t.position < q)
            lost = tuple(r["lost_between"]) if q is not None and seen and \
                r["lost_between"][0] is not None else None
        for n in names[:max(reach, 0)]:
            if n not in seen:
                v["tap_drops"][path[n]] += 1  # the packet went by, the tap missed it
        if lost is not None:
            key = (path[lost[0]], path[lost[1]] if lost[1] else None)
            v["lost_between"][key] = v["lost_between"].get(key, 0) + 1
    for v in out.values():
        v["lost_between"] = [{"from": a, "to": b, "count": n}
                             for (a, b), n in sorted(v["lost_between"].items(),
                                                     key=lambda kv: names_index(kv[0], v))]
    return out


def names_index(key: tuple, v: dict) -> int:
    return v["order"].index(key[0])


def point_paths(output: str, names: list[str]) -> dict:
    """``dump.pcap`` -> ``dump-client.pcap``, ``dump-server.pcap``, ... (one per point)."""
    p = Path(output)
    suffixes = "".join(p.suffixes)
    stem = p.name[: len(p.name) - len(suffixes)] if suffixes else p.name
    return {n: str(p.with_name(f"{stem}-{n}{suffixes}")) for n in names}


def parse_points(points: str, losses, clocks, drifts=()) -> list[TapSpec]:
    """``client,mirror,server`` with ``NAME=P`` drop rates, ``NAME=SECONDS`` clocks and
    ``NAME=PPM`` drifts; ValueError says what is wrong."""
    names = [n for n in points.split(",") if n]
    if not names or len(set(names)) != len(names) or any(n not in POINTS for n in names):
        raise ValueError(f"{points!r}: a comma list of distinct points among "
                         f"{', '.join(POINTS)}")

    def pairs(items, what):
        out = {}
        for item in items:
            name, _, value = item.partition("=")
            if name not in names:
                raise ValueError(f"{item!r}: {name!r} is not one of the capture points")
            try:
                out[name] = float(value)
            except ValueError:
                raise ValueError(f"{item!r}: {what} must be a number") from None
        return out

    drop, clock = pairs(losses, "the drop probability"), pairs(clocks, "the clock offset")
    drift = pairs(drifts, "the clock drift")
    return [TapSpec(n, POINTS[n], drop=drop.get(n, 0.0), clock_offset_s=clock.get(n, 0.0),
                    clock_drift_ppm=drift.get(n, 0.0)) for n in names]


def simulate_points(output: str, taps: list[TapSpec], dumps, network, capture: CaptureSpec,
                    seed: int, expected: str | None) -> dict:
    """The ``simulate --capture-points`` run: a capture per point, netdumpd's files and
    ``vantage.json`` (every transmission: seen where, lost where) in ``expected``.
    Returns (the command's summary, the truth)."""
    import json
    import os
    for t in taps:
        t.format, t.link, t.tsres = capture.format, capture.link, capture.tsres
    taps = sorted(taps, key=lambda t: t.position)
    cuts = [(a.position + b.position) / 2 for a, b in zip(taps, taps[1:])]
    outputs = point_paths(output, [t.name for t in taps])
    _paths, truth = simulate_vantage(outputs, taps, dumps, network, seed=seed,
                                     loss_at=tuple(cuts) or (0.5,))
    if expected is not None:
        truth.write_expected(expected)
        with open(os.path.join(expected, "vantage.json"), "w") as fh:
            json.dump({"points": [{"name": t.name, "capture": outputs[t.name],
                                   "position": t.position, "drop": t.drop,
                                   "clock_offset_s": t.clock_offset_s,
                                   "clock_drift_ppm": t.clock_drift_ppm} for t in taps],
                       "dumps": [{"vantage": truth.vantage.get(k),
                                  "vantage_physical": truth.vantage_physical.get(k),
                                  "union_missing": truth.union_missing[k],
                                  "point_missing": {n: m[k] for n, m in
                                                    truth.tap_missing.items()}}
                                 for k in range(len(truth.attempts))],
                       "transmissions": truth.transmission_records}, fh, indent=1)
            fh.write("\n")
    return {"captures": outputs,
            "dumps": [{"client": a.client_ip, "outcome": a.outcome,
                       "missing_bytes_union": sum(e - s for s, e in truth.union_missing[k])}
                      for k, a in enumerate(truth.attempts)]}, truth
