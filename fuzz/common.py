"""Shared by the fuzz harnesses: the datagram-sequence encoding, scratch directories and the
list of known, already reported problems.

The core harness reads a byte string as a sequence of records, each one a Datagram or a
Notice (format below); ``seed_corpus.py`` writes real sequences in the same format, so the
fuzzer starts from dumps that parse.

    input   := config(2) record*
    config  := flags(1) limit(1)
        flags bit 0: write files (FileWriter into a scratch directory), else summary only
        flags bits 1-3: batch size for the feed_many() cross-check (1 << n)
        limit: --max-dump-size choice (index into MAX_SIZES)
    record  := 0x00-0x7F datagram | 0x80-0xFF notice
    datagram:= op(1) src(1) dst(1) sport(2) dport(2) dt(4) missing(2) flags(1) len(2) payload
        op bit 0: the datagram's source/destination addresses are the raw next 8 bytes
        src/dst: index into ADDRESSES (unless op bit 0)
        dt: nanoseconds * 1000 since the previous record (big endian)
        flags bit 0: bad checksum; bits 1-2: link address (0: no link layer info);
              bits 3-4: VLAN tag (0: none)
    notice  := op(1) kind(1) frame-back(1)
"""
from __future__ import annotations

import os
import shutil
import socket
import struct
import tempfile

ADDRESSES = [socket.inet_aton(a) for a in (
    "192.0.2.7", "192.0.2.1", "192.0.2.8", "10.0.0.9", "0.0.0.0", "255.255.255.255",
    "192.0.2.10", "127.0.0.1")]
MACS = [None, bytes.fromhex("02000000aa01"), bytes.fromhex("02000000aa02"),
        bytes.fromhex("02000000bb01")]
VLANS = [(), (10,), (20,), (10, 20)]
MAX_SIZES = [1 << 40, 1 << 20, 64 << 10, 1 << 30]
NOTICE_KINDS = ["truncated-capture", "snaplen-truncated", "ip-fragments", "runt", "bad-length",
                "oversized-payload", "unknown-kind"]

_DGRAM = struct.Struct(">BBBHHIHBH")  # op src dst sport dport dt missing flags len
T0 = 1_700_000_000 * 10**9


def decode(data: bytes):
    """(flags, max_dump_size, items) from a fuzz input; never raises."""
    from analyzer.datagram import Datagram, Notice

    if len(data) < 2:
        return 0, MAX_SIZES[0], []
    flags, limit = data[0], data[1]
    max_size = MAX_SIZES[limit % len(MAX_SIZES)]
    items = []
    pos, n = 2, len(data)
    ts = T0
    frame = 0
    while pos < n:
        op = data[pos]
        if op & 0x80:
            if pos + 3 > n:
                break
            kind = NOTICE_KINDS[data[pos + 1] % len(NOTICE_KINDS)]
            at = max(1, frame + 1 - data[pos + 2] % 3)  # this frame, the next, or the last
            items.append(Notice(kind, at, f"fuzz notice {data[pos + 1]}", ts))
            pos += 3
            continue
        if pos + _DGRAM.size > n:
            break
        op, si, di, sport, dport, dt, missing, dflags, plen = _DGRAM.unpack_from(data, pos)
        pos += _DGRAM.size
        if op & 1:
            if pos + 8 > n:
                break
            src, dst = data[pos:pos + 4], data[pos + 4:pos + 8]
            pos += 8
        else:
            src, dst = ADDRESSES[si % len(ADDRESSES)], ADDRESSES[di % len(ADDRESSES)]
        payload = data[pos:pos + plen]
        pos += plen
        ts += dt * 1000
        frame += 1
        mac = MACS[(dflags >> 1) & 3]
        link = None if mac is None else (mac, VLANS[(dflags >> 3) & 3])
        items.append(Datagram(frame, ts, src, dst, sport, dport, payload, missing, link,
                              bool(dflags & 1)))
    return flags, max_size, items


def encode(items, flags: int = 0, limit: int = 0) -> bytes:
    """The inverse of :func:`decode` for Datagram/Notice lists (addresses outside the table
    are written raw; notices lose their text)."""
    from analyzer.datagram import Datagram

    out = [bytes([flags & 0xFF, limit & 0xFF])]
    prev = T0
    for it in items:
        if type(it) is not Datagram:
            kind = NOTICE_KINDS.index(it.kind) if it.kind in NOTICE_KINDS else 0
            out.append(bytes([0x80, kind, 0]))
            continue
        dt = max(0, min((it.ts - prev) // 1000, 0xFFFFFFFF))
        prev = prev + dt * 1000
        raw = it.src not in ADDRESSES or it.dst not in ADDRESSES
        si = 0 if raw else ADDRESSES.index(it.src)
        di = 0 if raw else ADDRESSES.index(it.dst)
        dflags = 1 if it.bad_checksum else 0
        if it.link is not None:
            mac = it.link[0] if it.link[0] in MACS else MACS[1]
            vl = tuple(it.link[1]) if tuple(it.link[1]) in VLANS else ()
            dflags |= MACS.index(mac) << 1 | VLANS.index(vl) << 3
        payload = it.payload[:0xFFFF]
        out.append(_DGRAM.pack(1 if raw else 0, si, di, it.sport, it.dport, dt,
                               min(it.missing, 0xFFFF), dflags, len(payload)))
        if raw:
            out.append(bytes(it.src) + bytes(it.dst))
        out.append(bytes(payload))
    return b"".join(out)


def scratch_dir(name: str) -> str:
    """A private directory on tmpfs when there is one (files are created every run)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    top = base or tempfile.gettempdir()
    # libFuzzer leaves with exit(), past Python's atexit: remove what dead runs left instead.
    for entry in os.listdir(top):
        parts = entry.split("-")
        if entry.startswith("netdump-fuzz-") and len(parts) >= 5 and parts[3].isdigit():
            try:
                os.kill(int(parts[3]), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(top, entry), ignore_errors=True)
            except OSError:
                pass
    return tempfile.mkdtemp(prefix=f"netdump-fuzz-{name}-{os.getpid()}-", dir=top)


def reset_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path)


# -- known problems ---------------------------------------------------------------------------
# Crashes and broken invariants already reported and not yet fixed. With FUZZ_SKIP_KNOWN=1 in
# the environment the harnesses let them pass so a run can look for new ones; by default every
# one of them is a finding. None is open today.

KNOWN: dict = {}
KNOWN_TAGS: set = set()


def skip_known(exc: BaseException) -> bool:
    if os.environ.get("FUZZ_SKIP_KNOWN") != "1":
        return False
    return any(test(exc) for test in KNOWN.values())
