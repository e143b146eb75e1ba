"""Issue 9's msgbuf, at the ring's awkward places: the write position found from the newest
"Dumping N out of M MB:" line, wherever the ring puts it."""
from __future__ import annotations

import pytest

from tests.contracts import dump_build as D

SIZE = 8192


def _text_of_length(head: str, total: int) -> str:
    n = total - len((head + D.PANIC_TAIL).encode())
    body = "".join("b" * 60 + "\n" for _ in range(n // 61)) + "c" * (n % 61)
    return head + body + D.PANIC_TAIL


def _msgbuf(run, tmp, text):
    md = D.minidump(text=text, msgbufsize=SIZE)
    path = tmp / "vmcore.192.0.2.7.0"
    path.write_bytes(md.image)
    res = run("inspect", path, "--json", "-")
    assert res.code == 0, res
    return md, res.json()["dumps"][0]["msgbuf"]


@pytest.mark.parametrize("past_end", [3, 10, 26], ids=["in-number", "in-words", "after-MB"])
def test_dumping_line_split_by_the_end_of_the_ring(tmp, run, past_end):
    text = _text_of_length(D.BOOT, SIZE + past_end)
    md, mb = _msgbuf(run, tmp, text)
    assert mb["text"] == md.msgbuf_text and mb["panic"] == "page fault"


def test_an_earlier_attempts_dumping_line_is_not_the_write_position(tmp, run):
    earlier = (D.BOOT + "a" * 600 + "\n" +
               "Dumping 10 out of 1015 MB:..1%\nDump map grown while dumping. Retrying...\n")
    text = _text_of_length(earlier, SIZE + 300)  # the old line lies past the write position
    md, mb = _msgbuf(run, tmp, text)
    assert text.encode().find(b"Dumping 10") % SIZE > 300
    assert mb["text"] == md.msgbuf_text
    assert mb["text"].endswith("Dumping 12 out of 1015 MB:")


def test_unwrapped_ring_with_an_earlier_attempt_ends_at_the_newest_line(tmp, run):
    text = D.BOOT + "Dumping 10 out of 1015 MB:..1%\nRetrying...\n" + D.PANIC_TAIL
    md, mb = _msgbuf(run, tmp, text)
    assert mb["text"] == text
