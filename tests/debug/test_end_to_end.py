"""Simulated captures of every generation with loss -> extract (--private-key, --decompress)
-> the dump ready to debug, compared with the simulator's ground truth."""
from __future__ import annotations

import hashlib
import json

import pytest

from analyzer.simulate.minidump import image_from
from tests.debug.conftest import run_cli
from tests.support.dump_builders import pem

HOST = "192.0.2.10"
SCENARIOS = {
    # id: simulate options
    "12-aes-cbc-amd64-v2": ["--generation", "12", "--encrypt", "--minidump-version", "2",
                            "--capture-loss", "0.01", "--seed", "5"],
    "13-chacha20-arm64-v3-wrapped": ["--generation", "13", "--encrypt", "--arch", "arm64",
                                     "--msgbuf-wrapped", "--capture-loss", "0.01",
                                     "--seed", "11"],
    "13-aes-cbc-arm64-v3": ["--generation", "13", "--encrypt", "--cipher", "aes256-cbc",
                            "--arch", "arm64", "--capture-loss", "0.01", "--seed", "12"],
    "main-chacha20-zstd-arm64-wrapped": ["--generation", "main", "--encrypt", "--compress",
                                         "zstd", "--arch", "arm64", "--msgbuf-wrapped",
                                         "--capture-loss", "0.01", "--seed", "7"],
    "13-gzip-arm64-v2": ["--generation", "13", "--compress", "gzip", "--arch", "arm64",
                         "--minidump-version", "2", "--capture-loss", "0.01", "--seed", "8"],
    "13-plain-amd64-v2-wrapped": ["--generation", "13", "--minidump-version", "2",
                                  "--msgbuf-wrapped", "--capture-loss", "0.02", "--seed", "9"],
    "main-plain-amd64-v3": ["--generation", "main", "--capture-loss", "0.01", "--seed", "3"],
}
CBC = {"12-aes-cbc-amd64-v2", "13-aes-cbc-arm64-v3"}  # 12.x always uses AES-256-CBC


def _simulate(tmp_path, options):
    args = ["simulate", "--size", "2m", "--image", "minidump", "-o", tmp_path / "cap.pcap",
            "--expected", tmp_path / "exp", *options]
    if "--encrypt" in options:
        args += ["--write-private-key", tmp_path / "op.pem"]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads((tmp_path / "exp" / "truth.json").read_text())["dumps"][0]["image"]


def _cbc_rule(holes, length):
    """Independently: a CBC plaintext block is lost when its ciphertext block lost a byte,
    or when the block before it did (its chaining input)."""
    lost = set()
    for a, b in holes:
        for block in range(a - a % 16, b + 16, 16):
            lost.update(range(block, min(block + 16, length)))
    out = []
    for p in sorted(lost):
        if out and out[-1][1] == p:
            out[-1][1] = p + 1
        else:
            out.append([p, p + 1])
    return out


@pytest.mark.parametrize("scenario", SCENARIOS, ids=list(SCENARIOS))
def test_a_lossy_capture_becomes_a_dump_equal_to_the_truth(tmp_path, scenario):
    options = SCENARIOS[scenario]
    truth = _simulate(tmp_path, options)
    out = tmp_path / "out"
    args = ["extract", tmp_path / "cap.pcap", "-o", out, "--json", tmp_path / "r.json"]
    if "--encrypt" in options:
        args += ["--private-key", tmp_path / "op.pem"]
    if "--compress" in options:
        args += ["--decompress"]
    proc = run_cli(*args)
    assert proc.returncode in (0, 3), proc.stderr
    session, = json.loads((tmp_path / "r.json").read_text())["sessions"]
    holes = [tuple(r) for r in session["vmcore"]["missing"]]
    assert holes, "the scenario is meant to lose data"

    # The file ready to debug: byte-identical wherever its map says it holds data.
    plain = (out / f"vmcore.{HOST}.0").read_bytes()
    image = image_from(truth["regenerate"])
    assert hashlib.sha256(image.read(0, image.size)).hexdigest() == truth["sha256"]
    sidecar = json.loads((out / f"vmcore.{HOST}.0.missing").read_text()) \
        if (out / f"vmcore.{HOST}.0.missing").exists() else {"missing": holes}
    missing = [list(r) for r in sidecar["missing"]]
    assert len(plain) == image.size
    pos = 0
    for a, b in missing + [[image.size, image.size]]:
        assert plain[pos:a] == image.read(pos, a - pos)
        assert plain[a:b] == bytes(b - a)  # a hole stays a hole
        pos = b

    lost_truth = truth["missing"]
    assert missing == lost_truth
    if scenario in CBC:
        assert missing == _cbc_rule(holes, image.size)
    if truth.get("compression"):
        assert missing == [[truth["compression"]["decoded_bytes"], image.size]]

    ins = session["inspect"]
    assert ins["kgdb"] == truth["kgdb"]
    if ins["minidump"] is None:  # the header itself was lost
        assert truth["sections"][0]["missing_bytes"] and truth["kgdb"] == "unusable"
        return
    md = ins["minidump"]
    assert md["lost_pages_pa"] == truth["lost_pages_pa"]
    assert md["pages_total"] == truth["pages_total"] and md["pages_lost"] == truth["pages_lost"]
    assert [(s["name"], s["offset"], s["length"]) for s in md["sections"]] == \
        [(s["name"], s["offset"], s["length"]) for s in truth["sections"]]
    mb, tmb = ins["msgbuf"], truth["msgbuf"]
    assert mb["missing"] == tmb["missing"]
    assert len(mb["text"]) == len(tmb["text"])
    assert all(c == t or any(a <= i < b for a, b in mb["missing"])
               for i, (c, t) in enumerate(zip(mb["text"], tmb["text"])))
    assert (mb["panic"], mb["version_line"]) == (tmb["panic"], tmb["version_line"])


def test_a_wrong_private_key_is_refused_for_a_simulated_dump(tmp_path, other_rsa_key):
    _simulate(tmp_path, ["--generation", "13", "--encrypt", "--seed", "2"])
    run_cli("extract", tmp_path / "cap.pcap", "-o", tmp_path / "out")
    (tmp_path / "wrong.pem").write_bytes(pem(other_rsa_key))
    proc = run_cli("decrypt", tmp_path / "out" / f"vmcore_encrypted.{HOST}.0",
                   "--private-key", tmp_path / "wrong.pem")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / f"vmcore.{HOST}.0").exists()
    right = run_cli("decrypt", tmp_path / "out" / f"vmcore_encrypted.{HOST}.0",
                    "--private-key", tmp_path / "op.pem")
    assert right.returncode == 0, right.stderr
