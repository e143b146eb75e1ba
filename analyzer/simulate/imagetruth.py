"""What a loss of wire bytes destroys in the dump image: the ground truth for readers.

Given the byte ranges of the recoverable dump that the capture lacks, this says which bytes
of the plaintext image are lost (a ChaCha20 hole stays the same hole; an AES-CBC hole costs
every 16-byte block it touches, and the whole block after them; a compressed stream is
decodable only up to its first hole), and, for a consistent minidump, which sections, physical pages (coalesced PA ranges,
located through bitmap and dump_avail as libkvm does) and message-buffer lines that is.
The keys are listed in ``truth.py``'s docstring (``dumps[].image``).
"""
from __future__ import annotations

import zlib

from analyzer.intervals import IntervalSet

from .image import PAGE
from .minidump import Minidump

CBC_BLOCK = 16
_DAMAGE_UNUSABLE = ("header", "dump_avail", "bitmap", "pmap")


def _coalesce(ranges) -> list[tuple[int, int]]:
    iset = IntervalSet()
    for s, e in ranges:
        if s < e:
            iset.add(s, e)
    return list(zip(iset._starts, iset._ends))  # noqa: SLF001 - read-only view


def _overlap(ranges, lo: int, hi: int) -> list[tuple[int, int]]:
    return [(max(s, lo), min(e, hi)) for s, e in ranges if s < hi and e > lo]


def _decodable(stream, stop: int) -> int:
    """Plaintext bytes a streaming decoder yields from the compressed stream before ``stop``."""
    if stream.compression == "gzip":
        dec = zlib.decompressobj(31)
    else:
        import zstandard
        dec = zstandard.ZstdDecompressor().decompressobj()
    out = 0
    for off, data, _useful in stream.compressed_writes():
        if off >= stop:
            break
        try:
            out += len(dec.decompress(data[: stop - off]))
        except Exception:  # noqa: BLE001 - padding after the end of the stream
            break
    return out


def plain_missing(stream, missing, kept: int) -> tuple[list[tuple[int, int]], dict | None]:
    """(lost plaintext ranges, compression detail) for wire ``missing`` ranges, the
    recoverable dump being ``kept`` bytes long (the rest of the stream is lost too)."""
    size = stream.image.size
    wire_end = stream.dumplength if stream.dumplength is not None else size
    holes = list(missing) + ([(kept, wire_end)] if kept < wire_end else [])
    holes = _coalesce(holes)
    if stream.compression != "none":
        if not holes:
            return [], None
        stop = holes[0][0]
        got = _decodable(stream, stop)
        return ([(got, size)] if got < size else []), {"decoded_bytes": got, "stopped_at": stop}
    if stream.key is not None and stream.key.cipher == "aes256-cbc":
        # P[k] = D(C[k]) xor C[k-1]: a block whose ciphertext lost a byte is lost whole, and
        # so is the next block, whose chaining input it was (the rule: whole blocks).
        holes = _coalesce((s // CBC_BLOCK * CBC_BLOCK,
                           min(size, (-(-e // CBC_BLOCK) + 1) * CBC_BLOCK)) for s, e in holes)
    return holes, None


def _msgbuf_truth(img: Minidump, lost) -> dict:
    mb = img.msgbuf
    size = len(mb.ring)
    base = img.section_table()[1][1]
    ring_lost = _coalesce((s - base, e - base) for s, e in _overlap(lost, base, base + size))
    text_len = sum(len(t.encode()) for t, _ in mb.lines) + max(0, len(mb.lines) - 1)
    start = mb.write_pos if mb.wrapped else 0
    text_lost = []  # text offset t is ring offset (start + t) % size
    for s, e in ring_lost:
        t0 = (s - start) % size
        t1 = t0 + (e - s)
        if t1 > size:  # crosses the write position of a wrapped ring
            text_lost += [(t0, size), (0, t1 - size)]
        else:
            text_lost.append((t0, min(t1, text_len)))
    lost_lines = [{"index": i, "text": t} for i, (t, rr) in enumerate(mb.lines)
                  if any(_overlap(ring_lost, s, e) for s, e in rr)]
    return {"size": size, "wrapped": mb.wrapped, "write_pos": mb.write_pos,
            "text": mb.text(), "lines": len(mb.lines), "ring_missing": [list(r) for r in ring_lost],
            "missing": [list(r) for r in _coalesce(text_lost) if r[0] < text_len],
            "lost_lines": lost_lines, "panic": mb.panic, "version_line": mb.version_line}


def _minidump_truth(img: Minidump, lost) -> dict:
    sections = []
    for name, off, length in img.section_table():
        gone = sum(e - s for s, e in _overlap(lost, off, off + length))
        sections.append({"name": name, "offset": off, "length": length, "missing_bytes": gone})
    pages_off = dict((s["name"], s["offset"]) for s in sections)["pages"]
    lost_pa = []
    for s, e in _overlap(lost, pages_off, img.size):
        for j in range((s - pages_off) // PAGE, (e - 1 - pages_off) // PAGE + 1):
            pa = img.pages_pa[j]
            lost_pa.append((pa, pa + PAGE))
    lost_pa = _coalesce(lost_pa)
    damaged = {s["name"] for s in sections if s["missing_bytes"]}
    kgdb = ("unusable" if damaged & set(_DAMAGE_UNUSABLE)
            else "degraded" if damaged else "ok")
    hdr = {k: v for k, v in img.header.items() if k != "magic"}
    return {
        "model": "minidump", "arch": img.arch, "minidump_version": img.version,
        "header": hdr, "dump_avail": [list(r) for r in img.dump_avail],
        "sections": sections, "pages_total": len(img.pages_pa),
        "pages_lost": sum(e - s for s, e in lost_pa) // PAGE,
        "lost_pages_pa": [list(r) for r in lost_pa], "kgdb": kgdb,
        "msgbuf": _msgbuf_truth(img, lost), "regenerate": img.params,
    }


def image_truth(stream, missing, kept: int) -> dict:
    """The ``image`` entry of one dump's truth (see truth.py)."""
    img = stream.image
    stream.ensure_done()  # an aborted attempt never finished its stream
    lost, comp = plain_missing(stream, missing, kept)
    out = {"model": "legacy", "regenerate": {"size": img.size, "seed": img.seed}}
    if isinstance(img, Minidump):
        out = _minidump_truth(img, lost)
    out.update({"length": img.size, "sha256": stream.plain_sha256,
                "missing": [list(r) for r in lost],
                "missing_bytes": sum(e - s for s, e in lost), "compression": comp,
                "ekcd": stream.key.summary() if stream.key is not None else None})
    return out
