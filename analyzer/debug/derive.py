"""Deriving a file ready to debug from a netdumpd file: names, the work, and the sidecar.

``vmcore_encrypted.<host>.<N>[.gz|.zst]`` decrypts to ``vmcore.<host>.<N>[.gz|.zst]`` (the name
netdumpd would have used without encryption); ``vmcore.<host>.<N>.gz|.zst`` decompresses to
``vmcore.<host>.<N>``. Outputs go beside the input unless told otherwise, are never
overwritten, and each gets its ``.missing`` map. A failed run leaves no output behind.
"""
from __future__ import annotations

import os
from typing import NamedTuple

from analyzer.debug import minidump
from analyzer.debug.compressed import decompress, stream_kind
from analyzer.debug.decrypt import decrypt_file
from analyzer.debug.ekcd import dump_key
from analyzer.debug.files import (SIDECAR_SUFFIX, Ranges, check_free, coalesce, companion,
                                  info_file_of, info_missing, missing_map, parse_name, read_info,
                                  write_sidecar)
from analyzer.exits import EXIT_USAGE, Failure
from analyzer.newfiles import create_exclusive
from analyzer.wire import ENCRYPTION_NAMES


class Derived(NamedTuple):
    path: str
    length: int
    missing: Ranges
    notes: list[str]


def _output(src: str, default: str, out: str | None) -> str:
    if out is None:
        target = default
    elif os.path.isdir(out):
        target = os.path.join(out, os.path.basename(default))
    else:
        target = out
    if os.path.abspath(target) == os.path.abspath(src):
        raise Failure(f"{target} is the input; not overwriting it", EXIT_USAGE)
    check_free(target, target + SIDECAR_SUFFIX)
    return target


def _discard(path: str) -> None:
    for p in (path, path + SIDECAR_SUFFIX):
        try:
            os.unlink(p)
        except OSError:
            pass


def decrypted_name(src: str) -> str:
    name = parse_name(src)
    if name and name.kind == "vmcore_encrypted":
        return companion(src, "vmcore", name.suffix) or src + ".decrypted"
    return src + ".decrypted"


def decrypt_path(src: str, private_key: str, key: str | None = None,
                 out: str | None = None) -> Derived:
    key = key or companion(src, "key")
    if key is None or not os.path.isfile(key):
        raise Failure(f"{src}: no key file {key} beside it; name it with --key" if key else
                      f"{src}: not a netdumpd name; name its key file with --key", EXIT_USAGE)
    target = _output(src, decrypted_name(src), out)
    info = info_file_of(key)
    key_missing = info_missing(read_info(info), "key") if info else []
    dk = dump_key(key, private_key, key_missing)
    mm = missing_map(src)
    try:
        lost, checked = decrypt_file(src, target, dk, mm.missing)
    except BaseException:
        _discard(target)
        raise
    notes = [f"decrypted with {ENCRYPTION_NAMES[dk.encryption]} (dump key wrapped with "
             f"{'RSA OAEP' if dk.padding == 'oaep' else 'RSA PKCS#1 v1.5'})"]
    if mm.missing and dk.encryption == 1:
        notes.append("AES-256-CBC: the blocks a hole touches and the 16 bytes after it "
                     "cannot be decrypted and are missing too")
    if not checked:
        notes.append("the first bytes were not captured: the key could not be checked "
                     "against the dump")
    length = os.path.getsize(target)
    write_sidecar(target, length, lost, src, mm.notes + notes)
    return Derived(target, length, lost, notes)


def decompressed_name(src: str) -> str:
    for suffix in (".gz", ".zst"):
        if src.endswith(suffix):
            return src[: -len(suffix)]
    return src + ".raw"


def decompress_path(src: str, out: str | None = None) -> Derived:
    name = parse_name(src)
    if name and name.kind == "vmcore_encrypted":
        raise Failure(f"{src} is encrypted: decrypt it first (--private-key)", EXIT_USAGE)
    try:
        fd_in = os.open(src, os.O_RDONLY)
    except OSError as exc:
        raise Failure(f"{src}: {exc.strerror}", EXIT_USAGE) from None
    try:
        mm = missing_map(src)
        length = os.fstat(fd_in).st_size
        kind = stream_kind(os.pread(fd_in, 4, 0))
        if kind is None or any(a < 4 for a, _ in mm.missing):
            raise Failure(f"{src}: not a gzip or zstd stream", EXIT_USAGE)
        target = _output(src, decompressed_name(src), out)
        fd_out = create_exclusive(target)
        try:
            result = _decompress_into(fd_in, fd_out, kind, length, mm.missing)
        except BaseException:
            os.close(fd_out)
            _discard(target)
            raise
        os.close(fd_out)
    finally:
        os.close(fd_in)
    write_sidecar(target, result.length, result.missing, src, mm.notes + result.notes)
    return result._replace(path=target)


def _decompress_into(fd_in: int, fd_out: int, kind: str, length: int,
                     missing: Ranges) -> Derived:
    def write(pos: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(fd_out, view, pos)
            view, pos = view[n:], pos + n

    decoded = decompress(kind, lambda p, n: os.pread(fd_in, n, p), length, missing, write)
    os.ftruncate(fd_out, decoded.length)
    notes = list(decoded.notes)
    lost = list(decoded.missing)
    out_len = decoded.length
    if not decoded.complete:
        # How long the dump was: only the minidump layout says it exactly.
        _md, _problems, with_tail = minidump.interpret(
            lambda p, n: os.pread(fd_out, n, p), decoded.length, lost)
        end = max((b for _a, b in with_tail), default=0)
        if end > decoded.length:
            os.ftruncate(fd_out, end)
            out_len, lost = end, with_tail
            notes.append(f"the minidump layout gives {end} bytes: [{decoded.length}, {end}) "
                         "is missing")
        else:
            notes.append(f"the original length is unknown: everything past byte "
                         f"{decoded.length} is lost")
    os.fsync(fd_out)
    return Derived("", out_len, coalesce(lost), notes)
