"""Ground truth of a simulation: what netdumpd saved, and what the capture holds.

Definitions used throughout (and in ``truth.json``):

* **retransmission**: a client transmission of a seqno this dump attempt already sent (the
  client's 2nd..12th send of it). Network duplicates (two copies of one transmission) are
  never retransmissions. ``capture.retransmissions`` counts captured retransmissions, one per
  transmission even when the capture shows several copies.
* **needed / spurious** (capture view, for each captured retransmission): *spurious* when an
  ACK for that seqno (of this attempt) was already in the capture before the resend's frame,
  *needed* otherwise. ``cause`` gives the simulator's reason: ``data-lost`` (no copy of any
  earlier transmission reached the server), ``ack-lost`` (the server ACKed but no ACK reached
  the client in time), ``ack-late``, ``no-ack`` (the server got it but did not ACK).
* **capture length**: the KDH ``dumplength`` when the capture holds a KDH of the attempt,
  else the end of the highest captured VMCORE byte.
* **missing ranges**: byte ranges of [0, capture length) that no captured VMCORE frame
  covers: exactly what a perfect analyzer cannot recover. ``recovered_vmcore_sha256`` is the
  SHA-256 of that recovery (captured bytes, zeros in the gaps, capture length long). It can
  differ from netdumpd's file (``files``): netdumpd loses its unflushed 128 KiB write buffer
  when a session times out or restarts, and keeps what the capture missed.
* **send calls** (``send_calls``): every call the client made to its transport (HERALD, key,
  each VMCORE buffer, KDH, FINISHED): its type, first and last seqno, packets, and whether
  any of its packets reached the capture. ``calls_captured`` counts those that did
  (``vmcore_calls_captured``: the VMCORE ones): the bursts an audit can find.
* **capture_files** (only when the capture misses frames the endpoints got): the files that
  can be recovered from the capture; the expected directory and SHA256SUMS then hold these.
* **rounds**: retransmit rounds of a send call (0 = all ACKed on the first burst; 11 and
  still unACKed = abort).
* **image** (per dump, imagetruth.py): what the capture's missing ranges (and, without a KDH,
  everything past the capture length) destroy in the plaintext image. ``missing`` /
  ``missing_bytes``: lost image bytes (an AES-CBC hole loses every 16-byte block it touches
  and the bytes 16 after it; a compressed stream is lost from the first hole on,
  ``compression`` = {``decoded_bytes``, ``stopped_at``}); ``length``, ``sha256`` of the whole plaintext image; ``ekcd``: cipher,
  ``padding`` (oaep or pkcs1v15), iv, encryptedkeysize (never the key); ``model``: legacy or
  minidump. A minidump adds ``arch``, ``minidump_version``, ``header``, ``dump_avail``,
  ``sections`` [{name, offset, length, missing_bytes}], ``pages_total``, ``pages_lost``,
  ``lost_pages_pa`` (coalesced [start, end) physical ranges), ``kgdb`` (unusable when header,
  dump_avail, bitmap or pmap bytes are lost, degraded for pages or msgbuf, else ok), and
  ``msgbuf``: {size, wrapped, write_pos, text (oldest first), lines, missing (text offsets),
  ring_missing, lost_lines [{index, text}], panic, version_line}. ``regenerate``: the
  parameters that rebuild the image (``minidump.image_from``).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from analyzer.intervals import IntervalSet
from analyzer.wire import TYPE_NAMES

from .imagetruth import image_truth
from .server import FileState, Session, intervals_of


def _gaps(iset: IntervalSet, length: int) -> list[tuple[int, int]]:
    out = []
    pos = 0
    for s, e in intervals_of(iset):
        if s >= length:
            break
        if s > pos:
            out.append((pos, s))
        pos = max(pos, e)
    if pos < length:
        out.append((pos, length))
    return out


def _fill(source, state_cov: IntervalSet, length: int) -> Iterator[bytes]:
    """File bytes: ``source`` bytes where covered, zeros elsewhere, ``length`` long."""
    pos = 0
    for s, e in intervals_of(state_cov):
        s, e = min(s, length), min(e, length)
        if s >= e:
            continue
        while pos < s:
            n = min(s - pos, 1 << 20)
            yield bytes(n)
            pos += n
        for _off, piece in source(s, e):
            yield piece
        pos = e
    while pos < length:
        n = min(length - pos, 1 << 20)
        yield bytes(n)
        pos += n


@dataclass
class Attempt:
    """One dump attempt of one client (HERALD .. FINISHED or abort)."""

    client_ip: str
    server_ip: str
    generation: str
    attempt: int
    spec: dict
    material: Any  # client.DumpMaterial
    max_payload: int
    outcome: str = "running"
    session: Session | None = None
    t_start: int = 0
    t_end: int = 0
    packets_sent: int = 0
    retransmissions_sent: int = 0
    calls: int = 0
    sent_counts: dict = field(default_factory=dict)  # type -> client transmissions
    send_calls: list = field(default_factory=list)  # (type, first seqno, last seqno) per call
    host_stalls: int = 0  # scheduler delays inside bursts (NetworkSpec.host_jitter)
    rounds_per_call: dict = field(default_factory=dict)
    call_log: list = field(default_factory=list)
    rtt_first: list = field(default_factory=list)
    transmissions: list | None = None
    # capture view
    cap_counts: dict = field(default_factory=dict)
    cap_client_frames: int = 0
    cap_ack_frames: int = 0
    cap_icmp_frames: int = 0
    cap_retrans: int = 0
    cap_retrans_visible: int = 0
    cap_net_dups: int = 0
    cap_needed: int = 0
    cap_spurious: int = 0
    cap_retrans_list: list = field(default_factory=list)
    cap_vmcore: IntervalSet = field(default_factory=IntervalSet)
    cap_key: IntervalSet = field(default_factory=IntervalSet)
    cap_seen: set = field(default_factory=set)
    cap_acked: set = field(default_factory=set)
    cap_kdh: int = 0
    cap_finished: int = 0
    cap_cut_frames: int = 0

    # ---------------------------------------------------------------------------------------
    def stream_source(self, start: int, end: int):
        return self.material.stream.read_range(start, end)

    def key_source(self, start: int, end: int):
        blob = self.material.key_blob or b""
        yield start, blob[start:end]

    def capture_length(self) -> int:
        """Length of the vmcore as the capture defines it: the KDH dumplength when a KDH was
        captured, else the end of the highest captured VMCORE range."""
        if self.cap_kdh and self.material.stream.dumplength is not None:
            return self.material.stream.dumplength
        ends = self.cap_vmcore._ends  # noqa: SLF001
        return ends[-1] if ends else 0

    def vmcore_chunks(self, recovered: bool = False) -> Iterator[bytes]:
        """Bytes of the vmcore netdumpd saved; ``recovered``: as the capture holds it (the
        client's bytes wherever a captured VMCORE frame covers them, zeros elsewhere)."""
        if recovered:
            return _fill(self.stream_source, self.cap_vmcore, self.capture_length())
        st: FileState = self.session.vmcore
        return _fill(self.stream_source, st.coverage, st.length)

    def _vmcore_sha(self, recovered: bool) -> str:
        stream = self.material.stream
        if recovered:
            cov, length = self.cap_vmcore, self.capture_length()
        else:
            cov, length = self.session.vmcore.coverage, self.session.vmcore.length
        full = cov.covers(0, length) if length else True
        if full and stream.dumplength is not None and length == stream.dumplength:
            return stream.sha256
        h = hashlib.sha256()
        for piece in _fill(self.stream_source, cov, length):
            h.update(piece)
        return h.hexdigest()

    def calls_json(self) -> list[dict]:
        """Every send call of the attempt, and whether any of its packets reached the capture."""
        seen = self.cap_seen
        return [{"type": TYPE_NAMES.get(t, str(t)), "first_seqno": a, "last_seqno": b,
                 "packets": b - a + 1, "captured": any(s in seen for s in range(a, b + 1))}
                for t, a, b in self.send_calls]

    def missing(self) -> list[tuple[int, int]]:
        return _gaps(self.cap_vmcore, self.capture_length())

    def to_json(self, files: dict) -> dict:
        stream = self.material.stream
        sess = self.session
        calls = self.calls_json()
        out: dict[str, Any] = {
            "client": self.client_ip, "server": self.server_ip, "generation": self.generation,
            "attempt": self.attempt, "spec": self.spec, "outcome": self.outcome,
            "max_payload": self.max_payload,
            "herald_payload": self.material.herald_payload.decode("latin-1"),
            "image_size": stream.image.size, "wire_length": stream.wire_length,
            "dumplength": stream.dumplength, "stream_sha256": stream.sha256,
            "t_start_ns": self.t_start, "t_end_ns": self.t_end,
            "packets_sent": self.packets_sent,
            "sent_counts": {TYPE_NAMES.get(k, str(k)): v for k, v in sorted(self.sent_counts.items())},
            "retransmissions_sent": self.retransmissions_sent,
            "calls": self.calls,
            "send_calls": calls,
            "calls_captured": sum(c["captured"] for c in calls),
            "vmcore_calls_captured": sum(c["captured"] for c in calls if c["type"] == "VMCORE"),
            "host_stalls": self.host_stalls,
            "rounds_per_call": {str(k): v for k, v in sorted(self.rounds_per_call.items())},
            "max_rounds": max(self.rounds_per_call.values(), default=0),
        }
        if self.rtt_first:
            r = sorted(self.rtt_first)
            out["rtt_ns"] = {"min": r[0], "median": r[len(r) // 2], "max": r[-1], "n": len(r)}
        if sess is not None:
            out["session"] = {
                "index": sess.index, "port": sess.port, "dir": sess.dir,
                "vmcore": sess.core_name, "info": sess.info_name,
                "key": sess.key_name if sess.key is not None else None,
                "status": sess.status.decode().strip() if sess.status else None,
                "vmcore_length": sess.vmcore.length,
                "kdh_received": len(sess.kdh_raw),
            }
        missing = self.missing()
        out["capture"] = {
            "counts": {TYPE_NAMES.get(k, str(k)): v for k, v in sorted(self.cap_counts.items())},
            "client_frames": self.cap_client_frames, "ack_frames": self.cap_ack_frames,
            "icmp_frames": self.cap_icmp_frames,
            "retransmissions": self.cap_retrans,
            "retransmissions_visible": self.cap_retrans_visible,
            "network_duplicates": self.cap_net_dups,
            "retransmissions_needed": self.cap_needed,
            "retransmissions_spurious": self.cap_spurious,
            "kdh_frames": self.cap_kdh, "finished_frames": self.cap_finished,
            "cut_frames": self.cap_cut_frames,
            "missing": [list(r) for r in missing],
            "missing_bytes": sum(e - s for s, e in missing),
            "complete": not missing,
        }
        out["capture"]["length"] = self.capture_length()
        out["capture"]["recovered_vmcore_sha256"] = self._vmcore_sha(recovered=True)
        out["image"] = image_truth(stream, missing, out["capture"]["length"])
        if sess is not None:
            if sess.key is not None:
                out["capture"]["key_missing"] = [list(r) for r in _gaps(self.cap_key, sess.key.length)]
        if self.transmissions is not None:
            out["retransmissions"] = self.cap_retrans_list
            out["calls_detail"] = self.call_log
            out["packets"] = [
                {"n": t[0], "seqno": t[1], "type": TYPE_NAMES.get(t[2], t[2]), "offset": t[3],
                 "len": t[4], "attempt": t[5], "t_sent_ns": t[6], "fate": t[7],
                 "arrivals_ns": t[8], "acks": t[9], "captured": t[10]}
                for t in self.transmissions
            ]
        return out


class GroundTruth:
    def __init__(self, seed: int, params: dict):
        self.seed = seed
        self.params = params
        self.attempts: list[Attempt] = []
        self.server = None
        self.capture: dict = {}
        self.extra_sessions: list[Session] = []

    @property
    def dumps(self) -> list[Attempt]:
        return self.attempts

    def _session_attempt(self) -> dict[int, Attempt]:
        return {id(a.session): a for a in self.attempts if a.session is not None}

    def files(self) -> dict[str, dict]:
        """relpath -> {"sha256", "size", "kind", "dump"} for every regular file netdumpd wrote."""
        out: dict[str, dict] = {}
        owners = self._session_attempt()
        for sess in self.server.sessions if self.server else []:
            att = owners.get(id(sess))
            info = sess.info_bytes()
            dump = self.attempts.index(att) if att else None
            out[sess.info_name] = {"sha256": hashlib.sha256(info).hexdigest(), "size": len(info),
                                   "kind": "info", "dump": dump}
            if att is not None:
                vm_sha = att._vmcore_sha(recovered=False)
            else:
                vm_sha = hashlib.sha256(b"").hexdigest() if sess.vmcore.length == 0 else None
            out[sess.core_name] = {"sha256": vm_sha, "size": sess.vmcore.length,
                                   "kind": "vmcore", "dump": dump}
            if sess.key is not None:
                out[sess.key_name] = _key_entry(self.file_chunks(sess.key_name), sess, dump)
        return out

    def _lossy(self, att: Attempt) -> bool:
        """Does the capture miss frames of this attempt that the endpoints got?"""
        cap = self.params.get("capture", {})
        return bool(cap.get("loss") or cap.get("start_after") or cap.get("drop_frames")
                    or att.spec.get("capture_loss"))

    def capture_files(self) -> dict[str, dict]:
        """relpath -> {"sha256", "size", "kind", "dump"} for the dumps whose capture misses
        frames the endpoints got: the files that can be recovered from the capture (its VMCORE
        and key bytes, zeros where no captured frame covers them). Their info file is left
        out: its text is an analyzer's verdict, not a fact of the capture."""
        out: dict[str, dict] = {}
        for i, att in enumerate(self.attempts):
            sess = att.session
            if sess is None or not self._lossy(att):
                continue
            out[sess.core_name] = {"sha256": att._vmcore_sha(recovered=True),
                                   "size": att.capture_length(), "kind": "vmcore", "dump": i}
            if sess.key is not None:
                out[sess.key_name] = _key_entry(self._capture_chunks(sess.key_name), sess, i)
        return out

    def _capture_chunks(self, relpath: str) -> Iterator[bytes]:
        for att in self.attempts:
            sess = att.session
            if sess is None:
                continue
            if relpath == sess.core_name:
                return att.vmcore_chunks(recovered=True)
            if sess.key is not None and relpath == sess.key_name:
                return _fill(att.key_source, att.cap_key, sess.key.length)
        raise KeyError(relpath)

    def expected_files(self) -> dict[str, tuple[dict, Any]]:
        """relpath -> (entry, chunks): what an extraction of the capture must give. netdumpd's
        files, except for dumps whose capture misses frames: their ``capture_files``."""
        lossy = self.capture_files()
        dumps = {e["dump"] for e in lossy.values()}
        out = {rel: (e, self.file_chunks) for rel, e in self.files().items()
               if e["dump"] is None or e["dump"] not in dumps}
        out.update((rel, (e, self._capture_chunks)) for rel, e in lossy.items())
        return out

    def file_chunks(self, relpath: str) -> Iterator[bytes]:
        owners = self._session_attempt()
        for sess in self.server.sessions:
            att = owners.get(id(sess))
            if relpath == sess.info_name:
                yield sess.info_bytes()
                return
            if relpath == sess.core_name:
                if att is None:
                    yield bytes(sess.vmcore.length)
                else:
                    yield from att.vmcore_chunks()
                return
            if sess.key is not None and relpath == sess.key_name:
                src = att.key_source if att else (lambda s, e: iter([(s, bytes(e - s))]))
                yield from _fill(src, sess.key.coverage, sess.key.length)
                return
        raise KeyError(relpath)

    def file_bytes(self, relpath: str) -> bytes:
        return b"".join(self.file_chunks(relpath))

    def server_extras(self) -> dict:
        """bounds.<host> contents and the .last symlinks (not part of ``files``)."""
        bounds: dict[str, str] = {}
        links: dict[str, str] = {}
        for sess in self.server.sessions:
            bounds[sess._rel(f"bounds.{sess.ip}")] = f"{sess.index + 1}\n"
            if sess.finished:
                links[sess._rel(f"vmcore.{sess.ip}.last")] = os.path.basename(sess.core_name)
                links[sess._rel(f"info.{sess.ip}.last")] = os.path.basename(sess.info_name)
        return {"bounds": bounds, "symlinks": links}

    def to_json(self) -> dict:
        files = self.files()
        out = {
            "seed": self.seed,
            "params": self.params,
            "capture": self.capture,
            "files": files,
            "server_extras": self.server_extras(),
            "dumps": [a.to_json(files) for a in self.attempts],
            "definitions": __doc__.split("Definitions used throughout (and in ``truth.json``):")[1]
            .strip(),
        }
        lossy = self.capture_files()
        if lossy:
            out["capture_files"] = lossy
        return out

    def write_json(self, path) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_json(), fh, indent=1, sort_keys=True)
            fh.write("\n")

    def write_expected(self, directory) -> dict:
        """Write every file netdumpd saved at its relative path, truth.json and SHA256SUMS.

        Where the capture misses frames the endpoints got, netdumpd's files cannot be
        recovered from it: the directory then holds the files the capture can give
        (``capture_files``), so that ``sha256sum -c SHA256SUMS`` checks an extraction.
        """
        os.makedirs(directory, exist_ok=True)
        files = self.expected_files()
        sums = []
        for rel in sorted(files):
            entry, chunks = files[rel]
            dest = os.path.join(directory, rel)
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            h = hashlib.sha256()
            with open(dest, "wb") as fh:
                for piece in chunks(rel):
                    h.update(piece)
                    fh.write(piece)
            assert entry["sha256"] in (None, h.hexdigest()), rel
            sums.append(f"{h.hexdigest()}  {rel}\n")
        self.write_json(os.path.join(directory, "truth.json"))
        with open(os.path.join(directory, "SHA256SUMS"), "w") as fh:
            fh.writelines(sums)
        return {rel: entry for rel, (entry, _c) in files.items()}


def _key_entry(chunks, sess, dump: int) -> dict:
    """A key file's entry in a files listing, hashed from its chunks."""
    h = hashlib.sha256()
    for piece in chunks:
        h.update(piece)
    return {"sha256": h.hexdigest(), "size": sess.key.length, "kind": "key", "dump": dump}
