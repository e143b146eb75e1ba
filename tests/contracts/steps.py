"""The steps the contract tests share: a capture of a dump, extract, inspect, the maps."""
from __future__ import annotations

import json

from tests.contracts import dump_build as D
from tests.contracts import wire_build as W

IP = "192.0.2.7"


def pem_file(tmp, key, name="op.pem"):
    p = tmp / name
    p.write_bytes(D.pem(key))
    return p


def encrypted_capture(tmp, rsa, image, cipher, *, oaep=True, compression=0, lose=(),
                      length=None):
    """A capture of one encrypted dump: (capture path, ciphertext)."""
    dk, iv = D.new_dump_key()
    enc = D.encrypt(cipher, dk, iv, image)
    n = len(image) if length is None else length
    s = W.Session(dump=enc, kdh=W.kdh(n, keysize=4096, compression=compression),
                  key=D.key_file(rsa, cipher, dk, iv, oaep=oaep), lose=set(lose))
    cap = tmp / "enc.pcap"
    W.write_capture(cap, [s])
    return cap, enc


def extract(run, cap, out, *extra):
    report = out.parent / f"{out.name}.report.json"  # a report is never overwritten: one per run
    res = run("extract", cap, "-o", out, "--json", report, *extra)
    assert res.code in (0, 3), res
    return json.loads(report.read_text())


def missing_map(path) -> list:
    return json.loads(open(str(path) + ".missing").read())["missing"]


ENTRY_KEYS = {"file", "format", "arch", "length", "missing", "minidump", "msgbuf", "kdh",
              "kgdb", "problems"}
MINIDUMP_KEYS = {"version", "msgbufsize", "bitmapsize", "pmapsize", "dumpavailsize",
                 "kernbase", "dmapbase", "dmapend", "sections", "pages_total", "pages_lost",
                 "lost_pages_pa", "length_ok"}


def plain_capture(tmp, md, lose=(), kdh=True, arch="amd64"):
    k = W.kdh(len(md.image), arch="amd64" if arch == "amd64" else "aarch64",
              archver=2 if arch == "amd64" else 1) if kdh else None
    s = W.Session(dump=md.image, kdh=k, lose=set(lose))
    W.write_capture(tmp / "p.pcap", [s])
    return tmp / "p.pcap"


def inspect(run, tmp, path):
    res = run("inspect", path, "--json", tmp / "inspect.json")
    assert res.code in (0, 3), res
    report = json.loads((tmp / "inspect.json").read_text())
    return res, report["dumps"][0]


def plain_capture_of(tmp, image, lose):
    s = W.Session(dump=image, kdh=W.kdh(len(image)), lose=set(lose))
    W.write_capture(tmp / "f.pcap", [s])
    return tmp / "f.pcap"
