"""Full (ELF) dumps: the ELF header, the program headers, and where missing bytes fall.

``debug.minidump=0`` dumps are ELF cores (sys/kern/kern_dump.c) whose PT_LOAD segments map
file ranges to physical addresses; a missing byte range is reported against the segments
it touches, with the physical addresses it stands for.
"""
from __future__ import annotations

from typing import Callable

from analyzer.debug.files import Ranges, overlap
from analyzer.wire import WireStruct

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
_IDENT = [("ident", "16s"), ("type", "H"), ("machine", "H"), ("version", "I")]
_TAIL = [("flags", "I"), ("ehsize", "H"), ("phentsize", "H"), ("phnum", "H"),
         ("shentsize", "H"), ("shnum", "H"), ("shstrndx", "H")]


def _layouts(order: str) -> dict[int, tuple[WireStruct, WireStruct]]:
    """ELF32 and ELF64 (Elf_Ehdr, Elf_Phdr) in one byte order."""
    return {
        1: (WireStruct("Elf32Ehdr", _IDENT + [("entry", "I"), ("phoff", "I"), ("shoff", "I")]
                       + _TAIL, order),
            WireStruct("Elf32Phdr", [("type", "I"), ("offset", "I"), ("vaddr", "I"),
                                     ("paddr", "I"), ("filesz", "I"), ("memsz", "I"),
                                     ("flags", "I"), ("align", "I")], order)),
        2: (WireStruct("Elf64Ehdr", _IDENT + [("entry", "Q"), ("phoff", "Q"), ("shoff", "Q")]
                       + _TAIL, order),
            WireStruct("Elf64Phdr", [("type", "I"), ("flags", "I"), ("offset", "Q"),
                                     ("vaddr", "Q"), ("paddr", "Q"), ("filesz", "Q"),
                                     ("memsz", "Q"), ("align", "Q")], order)),
    }


ELF_LAYOUTS = {1: _layouts("<"), 2: _layouts(">")}  # EI_DATA: 1 little-, 2 big-endian
MACHINES = {3: "i386", 20: "powerpc", 21: "powerpc64", 40: "arm", 62: "amd64",
            183: "aarch64", 243: "riscv64"}


def interpret(read: Callable[[int, int], bytes], length: int,
              missing: Ranges) -> tuple[str | None, list[str], bool]:
    """(arch, problems, usable): header checks and the segments missing bytes fall in."""
    head = read(0, 64)
    if overlap(missing, 0, 64) or len(head) < 52:
        return None, ["ELF header not captured"], False
    elf_class, data = head[4], head[5]
    layouts = ELF_LAYOUTS.get(data, {}).get(elf_class)
    if layouts is None:
        return None, [f"ELF header: unknown class {elf_class} or byte order {data}"], False
    ehdr_t, phdr_t = layouts
    ehdr = ehdr_t.parse(head)
    arch = MACHINES.get(ehdr.machine, f"machine {ehdr.machine}")
    if ehdr.phentsize != phdr_t.size or ehdr.phnum == 0:
        return arch, [f"ELF header: {ehdr.phnum} program headers of {ehdr.phentsize} bytes"], \
            False
    table = ehdr.phnum * phdr_t.size
    if ehdr.phoff + table > length or overlap(missing, ehdr.phoff, ehdr.phoff + table):
        return arch, ["ELF program headers not captured"], False
    raw = read(ehdr.phoff, table)
    loads = [p for p in (phdr_t.parse(raw, i * phdr_t.size) for i in range(ehdr.phnum))
             if p.type == PT_LOAD]
    problems = []
    end = max((p.offset + p.filesz for p in loads), default=0)
    if end > length:
        problems.append(f"file is {length} bytes, its PT_LOAD segments end at {end}")
    for a, b in missing:
        if b <= ehdr.phoff + table:
            continue
        hits = []
        for i, p in enumerate(loads):
            lo, hi = max(a, p.offset), min(b, p.offset + p.filesz)
            if lo < hi:
                pa = p.paddr + lo - p.offset
                hits.append(f"PT_LOAD {i} physical [{pa:#x}, {pa + hi - lo:#x})")
        where = "; ".join(hits) if hits else "outside every PT_LOAD segment"
        problems.append(f"missing bytes [{a}, {b}): {where}")
    return arch, problems, True
