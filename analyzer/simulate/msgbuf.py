"""The kernel message buffer a simulated minidump carries: console text in a ring.

The text is what a FreeBSD console shows from boot to the dump: the copyright and version
lines, device probes, some runtime messages, then a panic (``panic: ...``, ``cpuid = N``,
``time = ...``, ``KDB: stack backtrace:``, ``#N 0x... at func+0x...`` frames, ``Uptime:``),
the netdump lines and, newest, ``Dumping N out of M MB:``, which minidumpsys prints without a
newline just before writing the header. Byte i of the console stream lands at ring[i % size]
(sys/kern/subr_msgbuf.c): a ring that has not wrapped is text from 0 then NULs; one that has
wrapped has its write position mid-ring and its oldest (cut) text right after it.

``Msgbuf.lines`` lists every line in the ring, oldest first, with the ring ranges it occupies,
so the ground truth can say which lines a loss destroys.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

_COPYRIGHT = [
    "Copyright (c) 1992-2023 The FreeBSD Project.",
    "Copyright (c) 1979, 1980, 1983, 1986, 1988, 1989, 1991, 1992, 1993, 1994",
    "\tThe Regents of the University of California. All rights reserved.",
    "FreeBSD is a registered trademark of The FreeBSD Foundation.",
]
_PROBES = {
    "amd64": [
        "FreeBSD clang version 16.0.6 (https://github.com/llvm/llvm-project.git llvmorg-16.0.6-0-g7cbf1a259152)",
        "VT(vga): resolution 640x480",
        "CPU: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz (2394.52-MHz K8-class CPU)",
        "  Origin=\"GenuineIntel\"  Id=0x406f1  Family=0x6  Model=0x4f  Stepping=1",
        "real memory  = {real} ({real_mb} MB)",
        "avail memory = {avail} ({avail_mb} MB)",
        "Event timer \"LAPIC\" quality 600",
        "FreeBSD/SMP: Multiprocessor System Detected: 4 CPUs",
        "ioapic0 <Version 2.0> irqs 0-23",
        "acpi0: <BOCHS BXPC>",
        "pcib0: <ACPI Host-PCI bridge> port 0xcf8-0xcff on acpi0",
        "em0: <Intel(R) Legacy PRO/1000 MT 82540EM> port 0xc000-0xc03f mem 0xfebc0000-0xfebdffff irq 11 at device 3.0 on pci0",
        "em0: Ethernet address: 52:54:00:12:34:56",
        "ahci0: <Intel ICH9 AHCI SATA controller> port 0xc060-0xc07f mem 0xfebf1000-0xfebf1fff irq 10 at device 31.2 on pci0",
        "ada0: <QEMU HARDDISK 2.5+> ATA-7 SATA device",
        "ada0: 20480MB (41943040 512 byte sectors)",
        "Trying to mount root from ufs:/dev/ada0p2 [rw]...",
    ],
    "arm64": [
        "FreeBSD clang version 16.0.6 (https://github.com/llvm/llvm-project.git llvmorg-16.0.6-0-g7cbf1a259152)",
        "VT(efifb): resolution 1024x768",
        "CPU  0: ARM Cortex-A72 r0p3 affinity:  0",
        "real memory  = {real} ({real_mb} MB)",
        "avail memory = {avail} ({avail_mb} MB)",
        "Starting CPU 1 (1)",
        "FreeBSD/SMP: Multiprocessor System Detected: 4 CPUs",
        "gic0: <ARM Generic Interrupt Controller v2.0> mem 0x8000000-0x800ffff on acpi0",
        "generic_timer0: <ARM Generic Timer> irq 3,4,5 on acpi0",
        "vtnet0: <VirtIO Networking Adapter> on virtio_pci0",
        "vtnet0: Ethernet address: 52:54:00:12:34:56",
        "vtbd0: 20480MB (41943040 512 byte sectors)",
        "Trying to mount root from ufs:/dev/vtbd0p2 [rw]...",
    ],
}
_RUNTIME = [
    "em0: link state changed to UP", "em0: link state changed to DOWN",
    "pid {pid} (firefox), jid 0, uid 1001: exited on signal 11 (core dumped)",
    "pid {pid} (cc), jid 0, uid 0, was killed: out of swap space",
    "swap_pager: indefinite wait buffer: bufobj: 0, blkno: {pid}, size: 4096",
    "ums0 on uhub0", "ums0: <QEMU USB Mouse> on usbus0",
    "sonewconn: pcb 0xfffff8000{pid:05x}: Listen queue overflow: 193 already in queue awaiting acceptance",
    "arp: 192.0.2.{octet} moved from 52:54:00:aa:bb:{octet:02x} to 52:54:00:cc:dd:{octet:02x} on em0",
    "vm_fault: pager read error, pid {pid} (python3.11)",
]
_FRAMES = {  # (text base, frames) of the backtrace
    "amd64": (0xFFFFFFFF80B00000, [
        "kdb_backtrace+0x65", "vpanic+0x151", "panic+0x43", "trap_fatal+0x40c",
        "trap_pfault+0xb7", "calltrap+0x8", "vn_sendfile+0x1c4", "kern_sendfile+0x3c",
        "sys_sendfile+0x13", "amd64_syscall+0x10c", "fast_syscall_common+0xf8"]),
    "arm64": (0xFFFF000000400000, [
        "kdb_backtrace+0x58", "vpanic+0x1a0", "panic+0x44", "data_abort+0x220",
        "handle_el1h_sync+0x10", "vn_sendfile+0x1c4", "kern_sendfile+0x3c",
        "sys_sendfile+0x14", "do_el0_sync+0x4a8", "handle_el0_sync+0x90"]),
}
_TRAP = ["Fatal trap 12: page fault while in kernel mode", "cpuid = {cpu}; apic id = 0{cpu}",
         "fault virtual address\t= 0x18", "fault code\t\t= supervisor read data, page not present",
         "instruction pointer\t= 0x20:0xffffffff80c2d8a4",
         "stack pointer\t        = 0x28:0xfffffe00d4e1c8d0",
         "frame pointer\t        = 0x28:0xfffffe00d4e1c900",
         "current process\t\t= 12 (swi4: clock (0))", "trap number\t\t= 12"]


@dataclass
class Msgbuf:
    """The ring (``size`` bytes, what the dump's msgbuf section starts with) and its lines.

    ``lines``: (text, [(start, end), ...]) oldest first; a line cut by the ring's wrap has two
    ranges, and the oldest line of a wrapped ring is the cut tail of a longer one.
    """

    ring: bytes
    wrapped: bool
    write_pos: int
    lines: list
    panic: str
    version_line: str | None

    def text(self) -> str:
        return "\n".join(t for t, _ in self.lines)


def console_text(rng: random.Random, *, arch: str, version_line: str, panic: str,
                 dump_mb: int, phys_bytes: int, filler: int, server_ip: str) -> list[str]:
    """The console lines from boot to the dump; ``filler`` runtime lines in the middle."""
    real = phys_bytes
    avail = phys_bytes - (phys_bytes >> 5)
    lines = ["---<<BOOT>>---"] + _COPYRIGHT + [version_line]
    lines += [p.format(real=real, real_mb=real >> 20, avail=avail, avail_mb=avail >> 20)
              for p in _PROBES[arch]]
    for _ in range(filler):
        lines.append(rng.choice(_RUNTIME).format(pid=rng.randrange(1000, 99999),
                                                 octet=rng.randrange(2, 250)))
    cpu = rng.randrange(4)
    lines += [t.format(cpu=cpu) for t in _TRAP]
    lines += [f"panic: {panic}", f"cpuid = {cpu}", f"time = {1700000000 + rng.randrange(10**6)}",
              "KDB: stack backtrace:"]
    text_base, frames = _FRAMES[arch]
    for i, frame in enumerate(frames):
        lines.append(f"#{i} 0x{text_base + rng.randrange(1 << 20):x} at {frame}")
    days, hours, mins = rng.randrange(30), rng.randrange(24), rng.randrange(60)
    lines += [f"Uptime: {days}d{hours}h{mins}m{rng.randrange(60)}s",
              "netdump in progress. searching for server...",
              f"netdumping to {server_ip} (52:54:00:00:00:01)",
              f"Dumping {dump_mb} out of {phys_bytes >> 20} MB:"]
    return lines


def build_ring(lines: list[str], size: int, wrapped: bool, panic: str,
               version_line: str) -> Msgbuf:
    """Place the console stream in a ring of ``size`` bytes.

    The last line has no newline (the kernel has not finished it). ``wrapped``: the caller
    gave more text than fits, and the ring keeps its newest ``size`` bytes.
    """
    stream = ("\n".join(lines)).encode()
    if wrapped != (len(stream) > size):
        raise ValueError("console text does not match the wrapped/unwrapped request")
    ring = bytearray(size)
    start = max(0, len(stream) - size)  # first stream byte still in the ring
    for lo, hi in _ring_ranges(start, len(stream), size):
        ring[lo:hi] = stream[start:start + hi - lo]
        start += hi - lo
    start = max(0, len(stream) - size)
    write_pos = len(stream) % size if wrapped else len(stream)
    kept = []
    pos = 0
    for text in lines:
        end = pos + len(text.encode())
        lo = max(pos, start)
        if end > start or pos >= start:
            kept.append((stream[lo:end].decode(), _ring_ranges(lo, end, size)))
        pos = end + 1  # the newline
    version = version_line if any(t == version_line for t, _ in kept) else None
    return Msgbuf(bytes(ring), wrapped, write_pos, kept, panic, version)


def _ring_ranges(lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    """Stream bytes [lo, hi) as ring ranges (two when they cross the end of the ring)."""
    out = []
    while lo < hi:
        at = lo % size
        n = min(hi - lo, size - at)
        out.append((at, at + n))
        lo += n
    return out


def make_msgbuf(rng: random.Random, size: int, wrapped: bool, **text_args) -> Msgbuf:
    """A ring of ``size`` bytes that has (or has not) wrapped, filled with console text."""
    base = console_text(rng, filler=0, **text_args)
    base_len = len("\n".join(base)) + 1
    if base_len > size:
        raise ValueError(f"a {size}-byte message buffer is too small for the console text")
    if wrapped:
        # Enough runtime lines to overflow the ring by a quarter to three quarters of it.
        want = size + size // 4 + rng.randrange(size // 2 + 1) - base_len
    else:
        want = (size - base_len) * rng.randrange(30, 90) // 100
    filler = max(0, want // 60) + (1 if wrapped else 0)
    while True:
        lines = console_text(random.Random(rng.getrandbits(64)), filler=filler, **text_args)
        total = len("\n".join(lines).encode())
        if (total > size) == wrapped:
            break
        filler = filler + max(1, filler // 8) if wrapped else filler - max(1, filler // 8)
        filler = max(filler, 0)
    return build_ring(lines, size, wrapped, text_args["panic"], text_args["version_line"])
