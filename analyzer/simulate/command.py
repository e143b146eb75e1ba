"""``netdump-analyzer simulate``: write a synthetic netdump capture and its ground truth."""
from __future__ import annotations

import json
import os
import sys

import click

from . import CaptureSpec, DumpSpec, NetworkSpec, simulate

_PROB = click.FloatRange(0.0, 1.0)  # a probability outside [0, 1] is a usage error (exit 2)
_LINKS = ["ethernet", "vlan", "qinq", "sll", "sll2", "raw", "ipv4", "null"]


def _size(text: str) -> int:
    text = text.strip().lower()
    mult = 1
    for suffix, m in (("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("k", 1 << 10),
                      ("m", 1 << 20), ("g", 1 << 30)):
        if text.endswith(suffix):
            text, mult = text[: -len(suffix)], m
            break
    n = int(float(text) * mult)
    return max(4096, n // 4096 * 4096)


@click.command("simulate")
@click.option("--generation", type=click.Choice(["12", "13", "main"]), default="13",
              show_default=True, help="client kernel generation")
@click.option("--size", default="256k", show_default=True,
              help="uncompressed dump size (k/m/g suffixes; rounded down to 4 KiB)")
@click.option("--mtu", type=int, default=1500, show_default=True)
@click.option("--loss", type=_PROB, default=0.0, help="client->server loss probability")
@click.option("--ack-loss", type=_PROB, default=0.0, help="server->client loss probability")
@click.option("--dup", type=_PROB, default=0.0, help="duplication probability (both ways)")
@click.option("--reorder", type=_PROB, default=0.0, help="probability of an extra delay (reordering)")
@click.option("--capture-loss", type=_PROB, default=0.0,
              help="frames the capture misses although the endpoints got them")
@click.option("--link-mbps", type=click.FloatRange(min=0.0, min_open=True), default=1000.0,
              show_default=True, help="client link rate in Mb/s (100, 1000, 10000: frame spacing)")
@click.option("--host-jitter", type=_PROB, default=0.0,
              help="probability that the client host stalls 50 us - 5 ms before a packet of a burst")
@click.option("--capture-point", type=click.Choice(["server", "client", "mirror"]),
              default="server", show_default=True)
@click.option("--clients", type=int, default=1, show_default=True,
              help="number of clients dumping at the same time")
@click.option("--compress", type=click.Choice(["none", "gzip", "zstd"]), default="none",
              show_default=True)
@click.option("--encrypt", is_flag=True, help="EKCD: encrypted dump plus key")
@click.option("--path", default=None, help="HERALD path (netdumpd subdirectory)")
@click.option("--restart-after", type=int, default=None,
              help="client restarts with a new HERALD after this many VMCORE bytes")
@click.option("--format", "fmt", type=click.Choice(["pcap", "pcapng"]), default="pcap",
              show_default=True)
@click.option("--link", type=click.Choice(_LINKS), default="ethernet", show_default=True)
@click.option("--ns", is_flag=True, help="nanosecond timestamps")
@click.option("--gzip", "gz", is_flag=True, help="gzip the capture file")
@click.option("--snaplen", type=int, default=262144, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="capture file to write")
@click.option("--expected", type=click.Path(file_okay=False), default=None,
              help="directory for netdumpd's expected files, truth.json and SHA256SUMS")
@click.option("--image", "image_model", type=click.Choice(["legacy", "minidump"]),
              default="legacy", show_default=True,
              help="dump content: the legacy stand-in, or a consistent minidump")
@click.option("--arch", type=click.Choice(["amd64", "arm64"]), default="amd64",
              show_default=True, help="minidump architecture (with --image minidump)")
@click.option("--minidump-version", type=click.Choice(["2", "3"]), default="3",
              show_default=True, help="minidump version (2 has no dump_avail)")
@click.option("--msgbuf-wrapped", is_flag=True, help="the message buffer ring has wrapped")
@click.option("--cipher", type=click.Choice(["aes256-cbc", "chacha20"]), default=None,
              help="EKCD cipher (default: AES-256-CBC for 12, ChaCha20 later)")
@click.option("--public-key", type=click.Path(dir_okay=False), default=None,
              help="RSA public key (PEM) that wraps the dump key; default: a generated pair")
@click.option("--write-private-key", type=click.Path(dir_okay=False), default=None,
              help="write the generated private key here (PEM, mode 0600, never overwritten)")
@click.option("--capture-points", metavar="POINTS",
              help="several capture points on the path (e.g. client,mirror,server): one "
                   "capture per point, OUTPUT-<point>.pcap, and vantage.json in --expected")
@click.option("--point-loss", multiple=True, metavar="POINT=P",
              help="frames that capture point misses (with --capture-points; repeatable)")
@click.option("--point-clock", multiple=True, metavar="POINT=SECONDS",
              help="that capture point's clock offset (with --capture-points; repeatable)")
@click.option("--point-drift", multiple=True, metavar="POINT=PPM",
              help="how fast that capture point's clock runs ahead, in parts per million "
                   "(with --capture-points; repeatable)")
def simulate_command(generation, size, mtu, loss, ack_loss, dup, reorder, capture_loss,
                     link_mbps, host_jitter, capture_point, clients, compress, encrypt, path,
                     restart_after, fmt, link, ns, gz, snaplen, seed, output, expected,
                     image_model, arch, minidump_version, msgbuf_wrapped, cipher, public_key,
                     write_private_key, capture_points, point_loss, point_clock, point_drift):
    """Simulate FreeBSD netdump clients and netdumpd and write the capture."""
    nbytes = _size(size)
    pem = _read_public_key(public_key)
    if write_private_key and (pem is not None or not encrypt):
        raise click.UsageError("--write-private-key needs --encrypt without --public-key")
    dumps = []
    for i in range(clients):
        dumps.append(DumpSpec(
            generation=generation, size=nbytes, mtu=mtu, compress=compress, encrypt=encrypt,
            path=path, client_ip=f"192.0.2.{10 + i}", hostname=f"crashbox{i}" if clients > 1 else "crashbox",
            start_ms=i * 3.7, restart_after=restart_after if i == 0 else None,
            image=image_model, arch=arch, minidump_version=int(minidump_version),
            msgbuf_wrapped=msgbuf_wrapped, cipher=cipher, public_key=pem))
    network = NetworkSpec(loss=loss, ack_loss=ack_loss, dup=dup, ack_dup=dup, reorder=reorder,
                          link_mbps=link_mbps, host_jitter=host_jitter)
    capture = CaptureSpec(point=capture_point, loss=capture_loss, format=fmt, link=link,
                          snaplen=snaplen, tsres="ns" if ns else "us", gzip=gz)
    try:
        if capture_points:
            from .vantage import parse_points, simulate_points
            try:
                taps = parse_points(capture_points, point_loss, point_clock, point_drift)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--capture-points") from None
            summary, truth = simulate_points(output, taps, dumps, network, capture, seed,
                                             expected)
        else:
            out, truth = simulate(output, dumps, network, capture, seed=seed, expected=expected)
    except ValueError as exc:  # a dump the kernel would not make (cipher, size, key)
        raise click.UsageError(str(exc)) from None
    if write_private_key:
        _write_private_key(write_private_key, truth.dumps[0].material.stream.key.private_key_pem())
    if capture_points:
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    summary = {
        "capture": str(out),
        "frames": truth.capture.get("frames_written"),
        "dumps": [{"client": a.client_ip, "outcome": a.outcome,
                   "vmcore": a.session.core_name if a.session else None,
                   "missing_bytes": sum(e - s for s, e in a.missing())}
                  for a in truth.dumps],
    }
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")


def _read_public_key(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read the public key {path}: {exc}") from None


def _write_private_key(path: str, pem: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.UsageError(f"{path} exists; the private key is never overwritten") from None
    except OSError as exc:
        raise click.UsageError(f"cannot write the private key {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
