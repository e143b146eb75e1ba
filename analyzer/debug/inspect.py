"""What a dump file holds, what was lost, and whether kgdb can open it.

One entry per file with the report keys of ``inspect --json`` (README "From capture to
kgdb"). Only the header, msgbuf, dump_avail, bitmap and pmap are read, so it is cheap even
for a large dump; a gzip or zstd stream is decoded once, keeping only its first bytes.
"""
from __future__ import annotations

import os

from analyzer.debug import elf, minidump
from analyzer.debug.compressed import decompress, stream_kind
from analyzer.debug.files import (Ranges, coalesce, info_file_of, info_kdh, missing_map,
                                  overlap, parse_name, read_info, vmcore_of_info)
from analyzer.debug.msgbuf import read_msgbuf
from analyzer.exits import Failure
from analyzer.wire import MINIDUMP_HEADERS

KEEP = 64 << 20  # bytes of a decoded stream kept for its metadata sections
_UNUSABLE = ("header", "dump_avail", "bitmap", "pmap")


def _entry(path: str, fmt: str, length: int, missing: Ranges) -> dict:
    return {"file": path, "format": fmt, "arch": None, "length": length,
            "missing": [list(r) for r in missing], "minidump": None, "msgbuf": None,
            "kdh": None, "kgdb": "unusable", "problems": []}


def _is_info(path: str) -> bool:
    name = parse_name(path)
    if name is not None:
        return name.kind == "info"
    try:
        with open(path, "rb") as f:
            return f.read(10) == b"Dump from "
    except OSError:
        return False


def inspect_path(path: str, encrypted: bool = False, decode: bool = True) -> dict:
    """The report entry of one DUMP argument (a dump file, or the info file of one);
    ``encrypted`` for a dump known to be encrypted whatever its name; ``decode`` False
    leaves a gzip or zstd stream undecoded (it is then only named)."""
    kdh = None
    info = path if _is_info(path) else info_file_of(path)
    if info:
        kdh = info_kdh(read_info(info))
    if info == path:
        found = vmcore_of_info(path)
        if found is None:
            entry = _entry(path, "unknown", 0, [])
            entry["kdh"] = kdh
            entry["problems"].append("no dump file beside this info file")
            return entry
        path = found
    entry = inspect_file(path, kdh, encrypted, decode)
    if kdh and entry["arch"] is None:
        entry["arch"] = kdh.get("architecture")
    return entry


def inspect_file(path: str, kdh: dict | None = None, encrypted: bool = False,
                 decode: bool = True) -> dict:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise Failure(f"{path}: {exc.strerror}") from None
    try:
        length = os.fstat(fd).st_size
        mmap = missing_map(path)
        missing = coalesce((a, min(b, length)) for a, b in mmap.missing if a < length)

        def read(pos: int, n: int) -> bytes:
            return os.pread(fd, n, pos)

        entry = _entry(path, "unknown", length, missing)
        entry["kdh"] = kdh
        start = read(0, 64)
        name = parse_name(path)
        kind = None if overlap(missing, 0, 4) else stream_kind(start)
        if encrypted or name and name.kind == "vmcore_encrypted":
            entry["format"] = "encrypted"
            entry["problems"].append("encrypted: decrypt it first (netdump-analyzer decrypt "
                                     "--private-key PEM)")
        elif kind:
            entry["format"] = kind
            if decode:
                _inspect_stream(entry, kind, read, length, missing)
            else:
                entry["problems"].append(f"{kind} stream not decoded (--decompress writes "
                                         "it decompressed)")
        elif start.startswith(elf.ELF_MAGIC):
            entry["format"] = "elf"
            arch, problems, usable = elf.interpret(read, length, missing)
            entry["arch"] = arch
            entry["problems"] += problems
            entry["kgdb"] = "unusable" if not usable else "degraded" if missing else "ok"
        else:
            _inspect_minidump(entry, read, length, missing)
        return entry
    finally:
        os.close(fd)


def _inspect_stream(entry: dict, kind: str, read, length: int, missing: Ranges) -> None:
    kept = bytearray()

    def keep(pos: int, data: bytes) -> None:
        if pos < KEEP:
            if len(kept) < pos:
                kept.extend(bytes(pos - len(kept)))
            kept[pos:pos + len(data)] = data[:KEEP - pos]

    decoded = decompress(kind, read, length, missing, keep)
    entry["problems"] += decoded.notes
    plain_missing = [r for r in coalesce(list(decoded.missing)) if r[1] > r[0]]
    view = bytes(kept)
    _inspect_minidump(entry, lambda p, n: view[p:p + n], decoded.length, plain_missing,
                      stream=True)


def _inspect_minidump(entry: dict, read, length: int, missing: Ranges,
                      stream: bool = False) -> None:
    head = read(0, minidump.PAGE)
    arch = minidump.minidump_arch(head) if not overlap(missing, 0, 32) else None
    kdh = entry.get("kdh")
    dump_length = None
    if kdh and not stream and kdh.get("compression", "none") == "none":
        dump_length = kdh.get("dumplength")
    md, problems, missing = minidump.interpret(read, length, missing, dump_length)
    if not stream:  # a stream's own map (compressed offsets) stays; sections show the rest
        entry["missing"] = [list(r) for r in missing]
    entry["problems"] += problems
    if arch is None:
        if not stream:
            entry["format"] = "unknown"
        if not problems:
            entry["problems"].append("the decoded stream does not start with a minidump "
                                     "header" if stream else "the data is not a minidump, "
                                     "an ELF, a gzip or a zstd dump")
        return
    entry["arch"] = arch
    if not stream:
        entry["format"] = "minidump"
    if md is None:
        if arch in MINIDUMP_HEADERS:  # an interpreted architecture whose header is damaged
            entry["kgdb"] = "unusable"
            return
        entry["problems"].append(f"minidump for {arch}: header decoded only, sections not "
                                 "interpreted")
        entry["kgdb"] = _header_only_verdict(missing)
        return
    entry["minidump"] = md
    if not md["sections"]:  # a layout we do not interpret (arm64 with 16 KiB pages)
        entry["kgdb"] = _header_only_verdict(missing)
        return
    secs = {s["name"]: s for s in md["sections"]}
    if "msgbuf" in secs:
        s = secs["msgbuf"]
        size = md["msgbufsize"]
        ring = read(s["offset"], size).ljust(size, b"\0")
        rel = [(a - s["offset"], b - s["offset"]) for a, b in missing
               if a < s["offset"] + size and b > s["offset"]]
        mb = read_msgbuf(ring, rel)
        entry["problems"] += mb.pop("_problems")
        entry["msgbuf"] = mb
    entry["kgdb"] = verdict(md)


def _header_only_verdict(missing) -> str:
    """Without the sections we can judge only the header page and whether bytes are lost."""
    return "unusable" if overlap(missing, 0, minidump.PAGE) else \
        "degraded" if missing else "ok"


def verdict(md: dict) -> str:
    """unusable: libkvm cannot locate pages; degraded: only pages or msgbuf lost; else ok."""
    lost = {s["name"]: s["missing_bytes"] for s in md["sections"]}
    if not md["sections"] or any(lost.get(n) for n in _UNUSABLE):
        return "unusable"
    if lost.get("pages") or lost.get("msgbuf") or not md["length_ok"]:
        return "degraded"
    return "ok"


def inspect_report(paths) -> dict:
    return {"dumps": [inspect_path(p) for p in paths]}


def _mib(n: int) -> str:
    """Bytes in MiB; a loss under 0.01 MiB in two significant digits, so that it never
    reads as none (256 bytes: 0.00024 MiB)."""
    mib = n / (1 << 20)
    return f"{mib:.2f} MiB" if mib >= 0.01 or not n else f"{mib:.2g} MiB"


def text_lines(entry: dict) -> list[str]:
    """The answer first: panic, kgdb's verdict, what was lost; then the details."""
    from analyzer.report import printable
    md, mb, kdh = entry["minidump"], entry["msgbuf"], entry["kdh"] or {}
    panic = (mb or {}).get("panic") or kdh.get("panicstring")
    what = entry["format"] + (f" {entry['arch']}" if entry["arch"] else "")
    if md:
        what += f" v{md['version']}"
    lines = [f"{printable(entry['file'])}: {what}, {entry['length']} bytes",
             f"  panic: {printable(panic) if panic else 'unknown (not in the data)'}",
             f"  kgdb: {entry['kgdb']}"]
    lost_bytes = sum(b - a for a, b in entry["missing"])
    if md:
        lost_bytes = sum(s["missing_bytes"] for s in md["sections"])
        pa = ", ".join(f"[{a:#x}, {b:#x})" for a, b in md["lost_pages_pa"][:4])
        more = len(md["lost_pages_pa"]) - 4
        pa += f", ... ({more} more)" if more > 0 else ""
        lines.append(f"  lost: {_mib(lost_bytes)}, {md['pages_lost']} of {md['pages_total']} "
                     f"pages" + (f" (physical {pa})" if pa else ""))
        damaged = [f"{s['name']} {s['missing_bytes']} bytes" for s in md["sections"]
                   if s["missing_bytes"]]
        if damaged:
            lines.append(f"  sections missing: {', '.join(damaged)}")
    else:
        lines.append(f"  lost: {_mib(lost_bytes)} in {len(entry['missing'])} ranges")
    version = (mb or {}).get("version_line") or kdh.get("versionstring", "").strip()
    if version:
        lines.append(f"  version: {printable(version)}")
    if mb and mb["missing"]:
        lines.append(f"  msgbuf: {sum(b - a for a, b in mb['missing'])} bytes missing")
    lines += [f"  problem: {printable(p)}" for p in entry["problems"]]
    return lines
