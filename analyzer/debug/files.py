"""A dump file's companions (info and key files) and its missing-bytes map.

netdumpd names a dump's files ``info.<host>.<N>``, ``vmcore[_encrypted].<host>.<N>[.gz|.zst]``
and ``key.<host>.<N>``; ``extract`` adds ``Missing vmcore bytes: [a, b) (n bytes)`` lines to
the info file of an incomplete dump. A file this package derives (decrypted, decompressed)
gets a sidecar ``<file>.missing``, a small JSON document::

    {"format": "netdump-analyzer missing map", "version": 1,
     "file": "vmcore.10.0.0.2.0", "length": 1048576,
     "missing": [[4096, 8192]], "derived_from": "vmcore_encrypted.10.0.0.2.0",
     "notes": ["..."]}

``missing`` lists the half-open byte ranges of ``file`` that hold no data (they read as
zeros); ``length`` is the file's length; a file shorter than its dump (a stream decoded up
to a hole) says so in ``notes`` and its readers compare with the length the content implies.
The sidecar wins over the info file; with neither, the file is taken as complete.
"""
from __future__ import annotations

import json
import os
import re
from typing import NamedTuple

from analyzer.exits import EXIT_UNREADABLE, Failure
from analyzer.intervals import IntervalSet
from analyzer.newfiles import create_exclusive

SIDECAR_SUFFIX = ".missing"
SIDECAR_FORMAT = "netdump-analyzer missing map"
_NAME = re.compile(r"^(?P<kind>vmcore_encrypted|vmcore|info|key)\.(?P<host>.+)\.(?P<index>\d+)"
                   r"(?P<suffix>\.gz|\.zst)?$")
_MISSING_LINE = re.compile(rb"^  Missing (?P<what>\w+) bytes: \[(?P<a>\d+), (?P<b>\d+)\)")

Ranges = list[tuple[int, int]]


class DumpName(NamedTuple):
    kind: str  # vmcore_encrypted, vmcore, info or key
    host: str
    index: str
    suffix: str  # "", ".gz" or ".zst"


def parse_name(path: str) -> DumpName | None:
    m = _NAME.match(os.path.basename(path))
    if not m:
        return None
    return DumpName(m["kind"], m["host"], m["index"], m["suffix"] or "")


def companion(path: str, kind: str, suffix: str = "") -> str | None:
    """The file of another kind for the same dump, in the same directory (None when the
    name is not netdumpd's)."""
    name = parse_name(path)
    if name is None:
        return None
    return os.path.join(os.path.dirname(path), f"{kind}.{name.host}.{name.index}{suffix}")


def info_file_of(path: str) -> str | None:
    info = companion(path, "info")
    return info if info and os.path.isfile(info) else None


def vmcore_of_info(info_path: str) -> str | None:
    """The dump file an info file describes, as netdumpd (or extract) named it."""
    for kind in ("vmcore", "vmcore_encrypted"):
        for suffix in ("", ".gz", ".zst"):
            path = companion(info_path, kind, suffix)
            if path and os.path.isfile(path):
                return path
    return None


def read_info(info_path: str) -> bytes:
    try:
        with open(info_path, "rb") as f:
            return f.read(1 << 20)
    except OSError as exc:
        raise Failure(f"{info_path}: {exc.strerror}") from None


def info_missing(text: bytes, what: str = "vmcore") -> Ranges:
    """The ``Missing <what> bytes`` ranges of an info file's text."""
    out = []
    for line in text.splitlines():
        m = _MISSING_LINE.match(line)
        if m and m["what"].decode() == what:
            out.append((int(m["a"]), int(m["b"])))
    return out


_INFO_FIELDS = {b"Architecture": "architecture", b"Architecture Version": "architectureversion",
                b"Dump Length": "dumplength", b"Blocksize": "blocksize",
                b"Compression": "compression", b"Dumptime": "dumptime",
                b"Hostname": "hostname", b"Version String": "versionstring",
                b"Panic String": "panicstring", b"Header Parity Check": "parity"}


def info_kdh(text: bytes) -> dict | None:
    """The KDH fields netdumpd printed in the info file (None when it shows no KDH)."""
    kdh: dict = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(b": ")
        field = _INFO_FIELDS.get(key)
        if sep and field and field not in kdh:
            kdh[field] = value.decode("utf-8", "backslashreplace")
    if not kdh:
        return None
    for field in ("architectureversion", "blocksize"):
        if kdh.get(field, "").lstrip("-").isdigit():
            kdh[field] = int(kdh[field])
    if "dumplength" in kdh:
        kdh["dumplength"] = int(kdh["dumplength"].split("B", 1)[0] or 0)
    if "parity" in kdh:
        kdh["parity_ok"] = kdh.pop("parity") == "Pass"
    return kdh


class MissingMap(NamedTuple):
    missing: Ranges
    source: str  # "sidecar", "info" or "none"
    notes: list[str]


def read_sidecar(path: str) -> dict | None:
    try:
        with open(path + SIDECAR_SUFFIX, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise Failure(f"{path}{SIDECAR_SUFFIX}: not a missing-bytes map ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT:
        raise Failure(f"{path}{SIDECAR_SUFFIX}: not a missing-bytes map")
    return doc


def missing_map(path: str) -> MissingMap:
    """The missing ranges of a dump file: its sidecar, else its info file, else none."""
    doc = read_sidecar(path)
    if doc is not None:
        ranges = [(int(a), int(b)) for a, b in doc.get("missing", [])]
        return MissingMap(ranges, "sidecar", [str(n) for n in doc.get("notes", [])])
    name = parse_name(path)
    info = info_file_of(path)
    if info and name and name.kind in ("vmcore", "vmcore_encrypted"):
        return MissingMap(info_missing(read_info(info)), "info", [])
    return MissingMap([], "none", [])


def write_sidecar(path: str, length: int, missing: Ranges, derived_from: str | None,
                  notes: list[str]) -> str:
    doc = {"format": SIDECAR_FORMAT, "version": 1, "file": os.path.basename(path),
           "length": length, "missing": [[a, b] for a, b in missing],
           "derived_from": os.path.basename(derived_from) if derived_from else None,
           "notes": notes}
    target = path + SIDECAR_SUFFIX
    with os.fdopen(create_exclusive(target), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    return target


def check_free(*paths: str) -> None:
    """Refuse before any work when an output (or its sidecar) is already there."""
    for path in paths:
        if os.path.lexists(path):
            raise Failure(f"{path} exists; not overwriting it", EXIT_UNREADABLE)


def _interval_set(ranges) -> IntervalSet:
    iset = IntervalSet()
    for a, b in ranges:
        iset.add(a, b)
    return iset


def present(missing: Ranges, length: int) -> Ranges:
    """The complement of ``missing`` within [0, length)."""
    return _interval_set(missing).gaps(0, length)


def coalesce(ranges) -> Ranges:
    """Sorted, merged, non-empty ranges (touching ones joined)."""
    return list(_interval_set(ranges))


def overlap(missing: Ranges, start: int, end: int) -> int:
    """Bytes of [start, end) inside the (coalesced) missing ranges."""
    return sum(max(0, min(b, end) - max(a, start)) for a, b in missing)
