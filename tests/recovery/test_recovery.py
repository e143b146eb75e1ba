"""Recovery and file writing: what netdumpd would have saved, and exactly what is missing."""
import hashlib
import os

import pytest

from analyzer.pipeline import Analysis
from analyzer.recovery import infofile
from analyzer.wire import MsgType

from tests.support.datagrams import Conversation, clean_dump, image


def extract(items, outdir=None):
    a = Analysis(str(outdir) if outdir else None)
    a.run(items)
    a.finish()
    return a.records


def test_clean_dump_is_written_byte_identical_with_netdumpd_names(tmp_path):
    c, img = clean_dump(size=20000)
    (rec,) = extract(c.items, tmp_path)
    assert rec.complete
    assert rec.files == ["crash/web1/info.192.0.2.7.0", "crash/web1/vmcore.192.0.2.7.0"]
    assert (tmp_path / "crash/web1/vmcore.192.0.2.7.0").read_bytes() == img
    assert rec.sha256 == hashlib.sha256(img).hexdigest()
    info = (tmp_path / "crash/web1/info.192.0.2.7.0").read_bytes()
    assert info.startswith(b"Dump from 192.0.2.7 [192.0.2.7]\n  Architecture: amd64\n")
    assert info.endswith(b"  Header Parity Check: Pass\nDump complete\n")
    assert b"  Dump Length: 20000B (0 MB)\n" in info
    assert not [p for p in os.listdir(tmp_path / "crash/web1") if p.endswith(".part")]


def test_summary_mode_writes_nothing_and_still_hashes(tmp_path):
    c, img = clean_dump(size=10000)
    (rec,) = extract(c.items)
    assert rec.complete and rec.files == []
    assert rec.sha256 == hashlib.sha256(img).hexdigest()


def test_second_run_picks_the_next_index_and_overwrites_nothing(tmp_path):
    c, img = clean_dump(size=5000)
    extract(c.items, tmp_path)
    before = (tmp_path / "crash/web1/info.192.0.2.7.0").read_bytes()
    (rec,) = extract(c.items, tmp_path)
    assert rec.files[0] == "crash/web1/info.192.0.2.7.1"
    assert (tmp_path / "crash/web1/info.192.0.2.7.0").read_bytes() == before


def test_lost_packets_leave_exact_holes(tmp_path):
    img = image(4 * 1448)
    c = Conversation()
    c.herald()
    for i, off in enumerate(range(0, len(img), 1448)):
        if i == 1:
            c.seq += 1  # this packet never reached the capture
            continue
        c.send(MsgType.VMCORE, offset=off, payload=img[off:off + 1448])
    c.kdh(len(img))
    c.finished()
    (rec,) = extract(c.items, tmp_path)
    assert not rec.complete
    assert rec.vmcore_missing() == [(1448, 2896)]
    data = (tmp_path / "crash/web1/vmcore.192.0.2.7.0").read_bytes()
    assert data[:1448] == img[:1448] and data[2896:] == img[2896:]
    assert data[1448:2896] == bytes(1448)
    info = (tmp_path / "crash/web1/info.192.0.2.7.0").read_bytes()
    assert b"  Missing vmcore bytes: [1448, 2896) (1448 bytes)\n" in info
    assert info.endswith(b"Dump incomplete: the capture lacks part of the dump\n")


def test_no_finished_is_timed_out_like_netdumpd(tmp_path):
    c = Conversation()
    c.herald()
    c.data(image(3000))
    (rec,) = extract(c.items, tmp_path)
    info = (tmp_path / rec.files[0]).read_bytes()
    assert info.endswith(infofile.STATUS_TIMED_OUT)
    kinds = {a["kind"] for a in rec.anomalies}
    assert {"kdh-missing", "finished-missing"} <= kinds


def test_last_copy_of_a_conflicting_retransmission_wins(tmp_path):
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=0, payload=b"a" * 4096)
    c.send(MsgType.VMCORE, seqno=2, offset=0, payload=b"b" * 4096)
    c.kdh(4096)
    c.finished()
    (rec,) = extract(c.items, tmp_path)
    assert (tmp_path / "crash/web1/vmcore.192.0.2.7.0").read_bytes() == b"b" * 4096
    assert rec.sha256 == hashlib.sha256(b"b" * 4096).hexdigest()
    assert [a["kind"] for a in rec.anomalies] == ["conflicting-retransmit"]


def test_encrypted_dump_gets_key_file_and_encrypted_name(tmp_path):
    c = Conversation()
    c.herald(b"")
    blob = c.key()
    img = image(8192)
    c.data(img)
    c.kdh(len(img), dumpkeysize=4096)
    c.finished()
    (rec,) = extract(c.items, tmp_path)
    assert rec.complete
    assert sorted(rec.files) == ["info.192.0.2.7.0", "key.192.0.2.7.0",
                                 "vmcore_encrypted.192.0.2.7.0"]
    assert (tmp_path / "key.192.0.2.7.0").read_bytes() == blob


@pytest.mark.parametrize("compression,suffix", [(1, ".gz"), (2, ".zst")])
def test_compressed_dump_is_renamed_and_truncated(tmp_path, compression, suffix):
    stream = image(5000, seed=3)
    padded = stream + bytes(8192 - len(stream))
    c = Conversation()
    c.herald(b"")
    c.data(padded)
    c.kdh(len(stream), compression=compression)
    c.finished()
    (rec,) = extract(c.items, tmp_path)
    assert rec.complete
    assert (tmp_path / f"vmcore.192.0.2.7.0{suffix}").read_bytes() == stream
    assert rec.sha256 == hashlib.sha256(stream).hexdigest()


@pytest.mark.parametrize("path", [b"/etc", b"../../tmp/x", b"a/../../b", b"a\0b", b"..\\..\\x",
                                  b"x" * 1100])
def test_hostile_herald_paths_fall_back_to_the_output_directory(tmp_path, path):
    out = tmp_path / "out"
    c, img = clean_dump(size=3000, path=path)
    (rec,) = extract(c.items, out)
    assert rec.files[0] == "info.192.0.2.7.0"
    assert "path-refused" in [a["kind"] for a in rec.anomalies]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_symlink_in_the_output_directory_is_not_followed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "crash")
    c, img = clean_dump(size=3000, path=b"crash/web1")
    (rec,) = extract(c.items, out)
    assert os.listdir(tmp_path / "elsewhere") == []
    assert rec.files[0] == "info.192.0.2.7.0"


def test_offsets_past_the_size_limit_are_refused(tmp_path):
    c = Conversation()
    c.herald()
    c.send(MsgType.VMCORE, offset=2**64 - 10, payload=b"x" * 8)
    (rec,) = extract(c.items, tmp_path)
    assert "offset-out-of-range" in [a["kind"] for a in rec.anomalies]
    assert os.path.getsize(tmp_path / "crash/web1/vmcore.192.0.2.7.0") == 0


def test_index_skips_every_name_already_used_by_that_host(tmp_path):
    out = tmp_path / "out"
    (out / "crash/web1").mkdir(parents=True)
    for name in ("vmcore.192.0.2.7.0", "vmcore_encrypted.192.0.2.7.1.zst", "key.192.0.2.7.2",
                 "info.192.0.2.70.3", "vmcore.192.0.2.7.last"):
        (out / "crash/web1" / name).write_bytes(b"keep")
    c, img = clean_dump(size=3000)
    (rec,) = extract(c.items, out)
    assert rec.files[0] == "crash/web1/info.192.0.2.7.3"
    (rec2,) = extract(c.items, out)  # a second run sees the first one's files
    assert rec2.files[0] == "crash/web1/info.192.0.2.7.4"
    assert (out / "crash/web1/vmcore.192.0.2.7.0").read_bytes() == b"keep"


def test_many_dumps_in_one_run_take_consecutive_indices(tmp_path):
    items = []
    for i in range(5):
        c, img = clean_dump(size=2000)
        items += c.items
    items = [d._replace(frame=n + 1, ts=10**9 + n * 1000) for n, d in enumerate(items)]
    recs = extract(items, tmp_path)
    assert [r.files[0] for r in recs] == [f"crash/web1/info.192.0.2.7.{i}" for i in range(5)]


def test_one_way_capture_without_any_ack_still_yields_the_dump(tmp_path):
    img = image(20000)
    c = Conversation()
    c.herald(ack=False)
    c.data(img, ack=False)
    c.kdh(len(img), ack=False)
    c.finished(ack=False)
    (rec,) = extract(c.items, tmp_path)
    assert rec.complete and rec.server_port == 40001 and rec.acks == 0
    assert (tmp_path / "crash/web1/vmcore.192.0.2.7.0").read_bytes() == img
