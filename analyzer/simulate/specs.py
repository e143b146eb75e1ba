"""What a simulation is asked to model: the network between client and server, and each
client's dump. Plain data; the engine (engine.py) runs them."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NetworkSpec:
    """Per-direction network behaviour. Probabilities are per datagram."""

    loss: float = 0.0  # client -> server
    ack_loss: float = 0.0  # server -> client
    dup: float = 0.0  # client -> server duplication
    ack_dup: float = 0.0
    reorder: float = 0.0  # probability a datagram (either way) gets an extra delay
    reorder_delay_us: float = 400.0  # that extra delay: uniform(0, this)
    delay_us: float = 100.0  # one-way base delay
    jitter_us: float = 5.0  # uniform(0, this) added to every datagram
    link_mbps: float = 1000.0  # client NIC rate: spaces the packets of a burst
    host_jitter: float = 0.0  # probability that the host stalls before a packet of a burst
    host_delay_us: tuple = (50.0, 5000.0)  # that stall (a scheduler delay): uniform
    server_delay_us: tuple = (50.0, 300.0)  # arrival -> ACK, uniform; ACKs stay in FIFO order
    icmp: bool = True  # closed port -> ICMP port unreachable from the server host


@dataclass
class DumpSpec:
    """One client and its dump. ``restart_after``: bytes of VMCORE after which the client
    starts over with a new HERALD (a second dump attempt, full this time)."""

    generation: str = "13"
    size: int = 256 * 1024
    mtu: int = 1500
    compress: str = "none"
    encrypt: bool = False
    path: str | None = None
    client_ip: str = "192.0.2.10"
    server_ip: str = "192.0.2.1"
    hostname: str = "crashbox"
    panic: str = "page fault"
    dumptime: int = 1700000000
    versionstring: str | None = None
    start_ms: float = 0.0
    seed: int | None = None  # image seed; default derived from the run seed and client index
    restart_after: int | None = None
    restart_delay_ms: float = 5.0
    drop_packets: tuple = ()  # 1-based client transmission numbers (over the whole client) to drop
    drop_seqnos: dict = field(default_factory=dict)  # seqno -> drop its first k transmissions
    drop_acks: dict = field(default_factory=dict)  # seqno -> drop its first k ACKs
    blackout_ms: tuple = ()  # ((start, end), ...) relative to start: drop everything both ways
    work_us: float = 10.0  # client time between calls (copy / compress the next buffer)
    capture_loss: float = 0.0  # capture-only loss for this client's frames (both directions)
    # What the dump contains (minidump.py, ekcd.py). image: "legacy" (the default stand-in)
    # or "minidump" (consistent; arch "amd64"/"arm64", minidump_version 2/3).
    image: str = "legacy"
    arch: str = "amd64"
    minidump_version: int = 3
    msgbuf_wrapped: bool = False
    cipher: str | None = None  # "aes256-cbc" or "chacha20"; default by generation
    public_key: str | None = None  # PEM; default: the simulated operator's key


PROBABILITIES = ("loss", "ack_loss", "dup", "ack_dup", "reorder", "host_jitter")


def check_network(net: NetworkSpec) -> None:
    """Refuse values the model cannot mean (a probability outside [0, 1], a link of 0 b/s)."""
    for name in PROBABILITIES:
        check_probability(name, getattr(net, name))
    if not net.link_mbps > 0:
        raise ValueError(f"link_mbps must be positive, not {net.link_mbps}")
    lo, hi = net.host_delay_us
    if not 0 <= lo <= hi:
        raise ValueError(f"host_delay_us must be (low, high) with 0 <= low <= high, not {lo, hi}")


def check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} is a probability: {p} is not in [0, 1]")


def spec_dict(spec: DumpSpec) -> dict:
    """The spec as JSON-ready values, for the ground truth."""
    d = dict(spec.__dict__)
    d["drop_seqnos"] = {str(k): v for k, v in spec.drop_seqnos.items()}
    d["drop_acks"] = {str(k): v for k, v in spec.drop_acks.items()}
    d["drop_packets"] = list(spec.drop_packets)
    d["blackout_ms"] = [list(x) for x in spec.blackout_ms]
    return d
