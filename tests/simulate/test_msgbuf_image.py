"""The simulated message buffer: console text with a panic, in a ring that has or has not
wrapped, found in the dump the way a reader must find it."""
from __future__ import annotations

import re

import pytest

from analyzer.simulate.minidump import Minidump
from tests.support import kvm_walk

DUMPING = re.compile(rb"Dumping \d+ out of \d+ MB:")


def _ring(img: Minidump) -> bytes:
    data = img.read(0, img.size)
    h = kvm_walk.header(data)
    return data[4096:4096 + h["msgbufsize"]]


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_an_unwrapped_ring_is_text_from_zero_then_nuls(arch):
    img = Minidump(512 << 10, 3, arch=arch, msgbuf_wrapped=False, panic="general protection fault",
                   version_line=f"FreeBSD 14.1-RELEASE releng/14.1-n267679-10e31f0946d8 GENERIC {arch}")
    ring = _ring(img)
    end = ring.index(b"\0")
    assert ring[end:] == bytes(len(ring) - end)
    text = ring[:end].decode()
    lines = text.split("\n")
    assert lines[0] == "---<<BOOT>>---"
    assert lines[1].startswith("Copyright (c) 1992-")
    assert f"FreeBSD 14.1-RELEASE releng/14.1-n267679-10e31f0946d8 GENERIC {arch}" in lines
    assert DUMPING.fullmatch(lines[-1].encode())
    panic_at = lines.index("panic: general protection fault")
    assert lines[panic_at + 1].startswith("cpuid = ") and lines[panic_at + 2].startswith("time = ")
    assert lines[panic_at + 3] == "KDB: stack backtrace:"
    assert re.fullmatch(r"#0 0x[0-9a-f]+ at \w+\+0x[0-9a-f]+", lines[panic_at + 4])
    assert any(line.startswith("Uptime: ") for line in lines[panic_at:])
    assert any(line.startswith("netdumping to ") for line in lines[panic_at:])
    assert img.msgbuf.text() == text and img.msgbuf.write_pos == end


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_a_wrapped_ring_ends_at_the_write_position_and_its_oldest_text_follows(arch):
    img = Minidump(512 << 10, 4, arch=arch, msgbuf_wrapped=True, panic="vm_fault: pager error")
    ring = _ring(img)
    assert b"\0" not in ring
    # The newest line is the one minidumpsys prints last; the write position is right after.
    m = list(DUMPING.finditer(ring))
    assert len(m) == 1
    wpos = m[0].end()
    assert 0 < wpos < len(ring)
    text = (ring[wpos:] + ring[:wpos]).decode()
    assert text.endswith(m[0].group().decode())
    assert "\npanic: vm_fault: pager error\n" in text
    assert "---<<BOOT>>---" not in text  # the boot lines were overwritten
    assert img.msgbuf.write_pos == wpos and img.msgbuf.text() == text
    assert img.msgbuf.version_line is None


def test_the_tail_of_the_section_after_the_ring_is_zero():
    img = Minidump(256 << 10, 1, msgbuf_wrapped=True)
    data = img.read(0, img.size)
    h = kvm_walk.header(data)
    section_end = 4096 + kvm_walk.round_page(h["msgbufsize"])
    assert h["msgbufsize"] < section_end - 4096
    assert data[4096 + h["msgbufsize"]:section_end] == bytes(section_end - 4096 - h["msgbufsize"])
