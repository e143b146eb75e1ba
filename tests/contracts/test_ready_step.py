"""A dump made ready as it ends is that dump's business: a write that fails while deriving it
(a full disk) becomes a problem of its report entry, never the end of a follow run."""
from __future__ import annotations

import errno
import os

from analyzer.debug import derive, ready
from tests.contracts import dump_build as D


def test_a_failed_write_while_deriving_is_the_dumps_problem(tmp, monkeypatch):
    stream = D.kernel_zstd(D.minidump().image)
    (tmp / "vmcore.192.0.2.7.0.zst").write_bytes(stream)

    def full_disk(src, out=None):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp / "vmcore.192.0.2.7.0"))

    monkeypatch.setattr(derive, "decompress_path", full_disk)
    entry, derived, note = ready.ready_dump(str(tmp), ["vmcore.192.0.2.7.0.zst"], True,
                                            decompress=True)
    assert derived == []
    assert entry["format"] == "zstd"
    assert "No space left on device" in entry["problems"][0]
    assert note.startswith(" [not ready to debug: ")
