"""The simulate command's key options: a given public key, a generated private key written
only where asked (never over a file), and the combinations dumpon refuses."""
from __future__ import annotations

import json
import os
import stat

from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from analyzer.simulate.command import simulate_command

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def _wrapped(path):
    blob = path.read_bytes()
    return blob[37:37 + int.from_bytes(blob[33:37], "big")]


def test_a_given_public_key_wraps_the_dump_key(tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    pub = tmp_path / "op.pub"
    pub.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    res = CliRunner().invoke(simulate_command, [
        "-o", str(tmp_path / "c.pcap"), "--encrypt", "--public-key", str(pub),
        "--image", "minidump", "--arch", "arm64", "--expected", str(tmp_path / "exp")])
    assert res.exit_code == 0, res.output
    wrapped = _wrapped(tmp_path / "exp" / "key.192.0.2.10.0")
    assert len(wrapped) == 384 and len(private.decrypt(wrapped, OAEP)) == 64
    assert not list(tmp_path.glob("*.pem"))


def test_the_generated_private_key_goes_only_where_asked(tmp_path):
    keyfile = tmp_path / "operator.pem"
    args = ["-o", str(tmp_path / "c.pcap"), "--encrypt", "--generation", "12",
            "--write-private-key", str(keyfile), "--expected", str(tmp_path / "exp")]
    res = CliRunner().invoke(simulate_command, args)
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    private = serialization.load_pem_private_key(keyfile.read_bytes(), None)
    wrapped = _wrapped(tmp_path / "exp" / "key.192.0.2.10.0")
    assert len(private.decrypt(wrapped, padding.PKCS1v15())) == 64  # 12.x wraps with v1.5
    for path in (tmp_path / "exp").rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    assert b"PRIVATE KEY" not in (tmp_path / "c.pcap").read_bytes()
    before = keyfile.read_bytes()
    again = CliRunner().invoke(simulate_command, args)
    assert again.exit_code == 2 and "never overwritten" in again.output
    assert keyfile.read_bytes() == before


def test_refused_combinations_are_one_line_errors(tmp_path):
    out = str(tmp_path / "c.pcap")
    for extra, words in ((["--encrypt", "--generation", "13", "--cipher", "aes256-cbc",
                           "--compress", "zstd"], "compression"),
                         (["--encrypt", "--generation", "12", "--cipher", "chacha20"], "AES"),
                         (["--image", "minidump", "--size", "16k"], "too small"),
                         (["--write-private-key", str(tmp_path / "k.pem")], "--encrypt")):
        res = CliRunner().invoke(simulate_command, ["-o", out] + extra)
        assert res.exit_code == 2, (extra, res.output)
        assert words in res.output and "Traceback" not in res.output
    assert not (tmp_path / "k.pem").exists()


def test_minidump_options_reach_the_truth(tmp_path):
    res = CliRunner().invoke(simulate_command, [
        "-o", str(tmp_path / "c.pcap"), "--image", "minidump", "--arch", "arm64",
        "--minidump-version", "2", "--msgbuf-wrapped", "--expected", str(tmp_path / "exp")])
    assert res.exit_code == 0, res.output
    image = json.loads((tmp_path / "exp" / "truth.json").read_text())["dumps"][0]["image"]
    assert (image["arch"], image["minidump_version"], image["msgbuf"]["wrapped"]) == \
        ("arm64", 2, True)
