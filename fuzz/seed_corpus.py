#!/usr/bin/env python3
"""Build the fuzz seed corpus (deterministic):

    .venv/bin/python fuzz/seed_corpus.py [--check]

fuzz/corpus/capture/  capture files: the first 64 KiB of every capture in samples/, plus
                      small simulated captures in every format and link type the readers
                      know (pcap both byte orders, µs and ns, pcapng with several interfaces,
                      gzip, IPv4 fragments, a short snap length).
fuzz/corpus/core/     datagram sequences in the format of fuzz/common.py: the first
                      datagrams of every sample, and hand-built dumps (clean, lossy,
                      encrypted, compressed, restarted, hostile HERALD paths, two hosts on
                      one address, junk), with and without the file writer.

The whole corpus stays under 1 MB. ``--check`` only verifies the size and that every seed
is read without error.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT), str(ROOT / "tests" / "support")]

import common  # noqa: E402
from analyzer.capture import CaptureReader  # noqa: E402
from analyzer.datagram import Datagram  # noqa: E402
from analyzer.simulate import CaptureSpec, DumpSpec, NetworkSpec, simulate  # noqa: E402
from analyzer.wire import MsgType  # noqa: E402

CORPUS = HERE / "corpus"
SAMPLE_PREFIX = 64 << 10
CORE_SEED_MAX = 24 << 10  # bytes of encoded datagrams taken from each sample
LIMIT = 1 << 20


def _put(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


# -- capture seeds --------------------------------------------------------------------------

SIMULATED = {
    "sim-pcap-us": (DumpSpec(size=8 << 10), None, CaptureSpec()),
    "sim-pcap-ns-be": (DumpSpec(size=4 << 10, generation="12"), None,
                       CaptureSpec(tsres="ns", byteorder=">")),
    "sim-pcapng-2if": (DumpSpec(size=4 << 10, generation="main", encrypt=True), None,
                       CaptureSpec(format="pcapng", interfaces=[("ethernet", "us"),
                                                                ("sll", "ns")])),
    "sim-pcapng-vlan-lossy": (DumpSpec(size=8 << 10), NetworkSpec(loss=0.1, dup=0.1),
                              CaptureSpec(format="pcapng", link="vlan")),
    "sim-qinq": (DumpSpec(size=4 << 10, compress="gzip"), None, CaptureSpec(link="qinq")),
    "sim-sll2": (DumpSpec(size=4 << 10, compress="zstd"), None, CaptureSpec(link="sll2")),
    "sim-sll": (DumpSpec(size=4 << 10, path="crash/x"), None, CaptureSpec(link="sll")),
    "sim-null": (DumpSpec(size=4 << 10), None, CaptureSpec(link="null")),
    "sim-raw": (DumpSpec(size=4 << 10), None, CaptureSpec(link="raw")),
    "sim-fragments": (DumpSpec(size=4 << 10, mtu=9000), None, CaptureSpec(fragment=1500)),
    "sim-snaplen": (DumpSpec(size=4 << 10), None, CaptureSpec(snaplen=200)),
    "sim-gzip": (DumpSpec(size=8 << 10), None, CaptureSpec(gzip=True)),
    "sim-restart": (DumpSpec(size=8 << 10, restart_after=2 << 10), None, CaptureSpec()),
}


def capture_seeds(out: Path) -> None:
    for sample in sorted((ROOT / "samples").iterdir()):
        if sample.suffix in (".pcap", ".pcapng", ".gz") and sample.is_file():
            _put(out, f"sample-{sample.name}", sample.read_bytes()[:SAMPLE_PREFIX])
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (dump, net, cap)) in enumerate(SIMULATED.items()):
            path, _truth = simulate(Path(tmp) / name, dump, network=net, capture=cap, seed=i)
            _put(out, name, path.read_bytes())


# -- core seeds -----------------------------------------------------------------------------

def _sample_datagrams(path: Path) -> list:
    items = []
    size = 0
    for it in CaptureReader([str(path)]):
        items.append(it)
        size += 24 + (len(it.payload) if type(it) is Datagram else 0)
        if size > CORE_SEED_MAX:
            break
    return items


def _conversations() -> dict[str, list]:
    from datagrams import Conversation, clean_dump, image

    seeds = {}
    c, _ = clean_dump(size=4096)
    seeds["clean"] = c.items
    c, _ = clean_dump(size=3000, path=b"../../etc")
    seeds["path-dotdot"] = c.items
    c, _ = clean_dump(size=2000, path=b"\xff\xfe/a\\..\\b")
    seeds["path-odd-bytes"] = c.items
    c = Conversation()
    c.herald(b"")
    c.key()
    c.data(image(3000))
    c.kdh(3000, dumpkeysize=4096)
    c.finished()
    seeds["encrypted"] = c.items
    c = Conversation()
    c.herald(b"")
    c.data(image(5000) + bytes(3192))
    c.kdh(5000, compression=2)
    c.finished()
    seeds["compressed"] = c.items
    c = Conversation()
    c.herald(b"")
    c.data(image(3000)[:1448])
    c.herald(b"")
    c.data(image(3000))
    c.send(MsgType.VMCORE, offset=2**64 - 100, payload=b"x" * 64)
    c.kdh(3000)
    c.finished()
    seeds["restart-far-offset"] = c.items
    c = Conversation()
    c.herald(b"")
    c.raw(b"\x00" * 7)
    c.raw(b"\x00\x00\x00\x09" + bytes(20))
    c.ack(77)
    c._next(c.server, c.client, c.data_port, 20024, b"\x01\x02")
    c.send(MsgType.VMCORE, offset=0, payload=b"a" * 100, bad_checksum=True)
    c.send(MsgType.VMCORE, offset=0, payload=b"b" * 100, missing=50)
    seeds["junk"] = c.items
    a, _ = clean_dump(size=2000)
    b = Conversation(data_port=40002, t=a.items[0].ts + 1)
    b.herald(b"")
    b.data(image(2000, seed=5))
    mac_a, mac_b = common.MACS[1], common.MACS[2]
    items = [d._replace(link=(mac_a if d.sport == 20024 else common.MACS[3], ()))
             for d in a.items]
    items += [d._replace(link=(mac_b if d.sport == 20024 else common.MACS[3], (10,)))
              for d in b.items]
    seeds["two-hosts"] = sorted(items, key=lambda d: d.ts)
    return seeds


def core_seeds(out: Path) -> None:
    for sample in sorted((ROOT / "samples").iterdir()):
        if sample.suffix in (".pcap", ".pcapng") and sample.is_file():
            items = _sample_datagrams(sample)
            _put(out, f"sample-{sample.stem}", common.encode(items, flags=0))
    for i, (name, items) in enumerate(_conversations().items()):
        _put(out, f"{name}-summary", common.encode(items, flags=0, limit=i))
        _put(out, f"{name}-files", common.encode(items, flags=1, limit=0))


def corpus_size() -> int:
    return sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())


def check() -> None:
    total = corpus_size()
    assert total < LIMIT, f"corpus is {total} bytes, over {LIMIT}"
    for f in sorted((CORPUS / "capture").iterdir()):
        list(CaptureReader([str(f)]))
    for f in sorted((CORPUS / "core").iterdir()):
        _flags, _size, items = common.decode(f.read_bytes())
        assert items, f
    print(f"corpus: {sum(1 for _ in CORPUS.rglob('*') if _.is_file())} files, {total} bytes")


def main() -> None:
    if "--check" not in sys.argv[1:]:
        shutil.rmtree(CORPUS, ignore_errors=True)
        capture_seeds(CORPUS / "capture")
        core_seeds(CORPUS / "core")
    check()


if __name__ == "__main__":
    main()
