"""netdump wire formats: one declarative definition per structure, used to parse and to build.

Facts from the FreeBSD sources (netdump.h, debugnet.h, sys/kerneldump.h); see the project's
protocol reference for the citations. Every integer on the wire is big-endian.
"""
from __future__ import annotations

import enum
import struct
from collections import namedtuple
from typing import Any

HERALD_PORT = 20023  # server port the HERALD goes to
CLIENT_PORT = 20024  # every client packet leaves from here; every ACK comes back here
DATASIZE = 4096  # netdumpd's receive buffer holds a header plus this many bytes
MAX_IN_FLIGHT = 64  # size of the client's ACK bitmap
MAX_PATH = 1024  # MAXPATHLEN: longest HERALD payload (path + NUL) netdumpd accepts
MAX_DUMPS = 1024  # netdumpd's per-host index limit
KDH_SIZE = 512
EKCD_BLOB_SIZE = 4096


class MsgType(enum.IntEnum):
    HERALD = 1
    FINISHED = 2
    VMCORE = 3
    KDH = 4
    EKCD_KEY = 5


TYPE_NAMES = {t.value: t.name for t in MsgType}


class WireStruct:
    """A fixed-size record: named fields over one ``struct.Struct``.

    ``parse`` returns a namedtuple, ``build`` takes keyword fields (missing ones are zero).
    """

    def __init__(self, name: str, fields: list[tuple[str, str]], byteorder: str = ">"):
        self.name = name
        self.fields = [f for f, _ in fields]
        self.struct = struct.Struct(byteorder + "".join(code for _, code in fields))
        self.size = self.struct.size
        self.record = namedtuple(name, self.fields)  # type: ignore[misc]
        self._defaults = {f: (b"" if code.endswith("s") else 0) for f, code in fields}

    def parse(self, buf: bytes | memoryview, offset: int = 0) -> Any:
        return self.record._make(self.struct.unpack_from(buf, offset))

    def build(self, **values: Any) -> bytes:
        unknown = set(values) - set(self.fields)
        if unknown:
            raise TypeError(f"{self.name} has no field(s) {sorted(unknown)}")
        merged = {**self._defaults, **values}
        return self.struct.pack(*(merged[f] for f in self.fields))


# struct debugnet_msg_hdr / netdump_msg_hdr: 24 bytes, then mh_len payload bytes.
MSG_HDR = WireStruct(
    "MessageHeader",
    [("type", "I"), ("seqno", "I"), ("offset", "Q"), ("length", "I"), ("aux2", "I")],
)

# struct debugnet_ack / netdump_ack: the server's whole reply.
ACK = WireStruct("Ack", [("seqno", "I")])

# struct kerneldumpheader, versions 1 to 4 (512 bytes each). Version 4 is what 12.0+ sends.
_KDH_HEAD = [("magic", "20s"), ("architecture", "12s"), ("version", "I"),
             ("architectureversion", "I"), ("dumplength", "Q")]
KDH_LAYOUTS: dict[int, WireStruct] = {
    1: WireStruct("KernelDumpHeaderV1", _KDH_HEAD + [
        ("dumptime", "Q"), ("blocksize", "I"), ("hostname", "64s"),
        ("versionstring", "192s"), ("panicstring", "192s"), ("parity", "I")]),
    2: WireStruct("KernelDumpHeaderV2", _KDH_HEAD + [
        ("dumptime", "Q"), ("dumpkeysize", "I"), ("blocksize", "I"), ("hostname", "64s"),
        ("versionstring", "192s"), ("panicstring", "188s"), ("parity", "I")]),
    3: WireStruct("KernelDumpHeaderV3", _KDH_HEAD + [
        ("dumpextent", "Q"), ("dumptime", "Q"), ("dumpkeysize", "I"), ("blocksize", "I"),
        ("compression", "B"), ("hostname", "64s"), ("versionstring", "192s"),
        ("panicstring", "179s"), ("parity", "I")]),
    4: WireStruct("KernelDumpHeaderV4", _KDH_HEAD + [
        ("dumptime", "Q"), ("dumpkeysize", "I"), ("blocksize", "I"), ("hostname", "64s"),
        ("versionstring", "192s"), ("panicstring", "175s"), ("compression", "B"),
        ("dumpextent", "Q"), ("unused", "I"), ("parity", "I")]),
}
KDH_V4 = KDH_LAYOUTS[4]
assert all(layout.size == KDH_SIZE for layout in KDH_LAYOUTS.values())

KDH_MAGIC = b"FreeBSD Kernel Dump"
COMPRESSION_NAMES = {0: "none", 1: "gzip", 2: "zstd"}
COMPRESSION_SUFFIXES = {1: ".gz", 2: ".zst"}

# struct kerneldumpkey: fixed part, then kdk_encryptedkeysize bytes of RSA-wrapped key.
KDK_HEAD = WireStruct(
    "KernelDumpKey", [("encryption", "B"), ("iv", "32s"), ("encryptedkeysize", "I")]
)
ENCRYPTION_NAMES = {1: "aes-256-cbc", 2: "chacha20"}
DUMP_KEY_SIZE = 64  # KERNELDUMP_KEY_MAX_SIZE: the random key dumpon wraps
ENCRYPTED_KEY_MAX = 2048  # KERNELDUMP_ENCKEY_MAX_SIZE

# struct minidumphdr (sys/<arch>/include/minidump.h): the first page of a minidump, in the
# host's byte order (little-endian on amd64 and arm64). Fields an older version lacks read 0
# (the rest of the page is zero). "dumpavailsize" exists from version 3 on.
MINIDUMP_MAGIC_PREFIX = b"minidump FreeBSD/"
MINIDUMP_HEADERS = {
    "amd64": WireStruct("MinidumpHeaderAmd64", [
        ("magic", "24s"), ("version", "I"), ("msgbufsize", "I"), ("bitmapsize", "I"),
        ("pmapsize", "I"), ("kernbase", "Q"), ("dmapbase", "Q"), ("dmapend", "Q"),
        ("dumpavailsize", "I")], "<"),
    "arm64": WireStruct("MinidumpHeaderArm64", [
        ("magic", "24s"), ("version", "I"), ("msgbufsize", "I"), ("bitmapsize", "I"),
        ("pmapsize", "I"), ("kernbase", "Q"), ("dmapphys", "Q"), ("dmapbase", "Q"),
        ("dmapend", "Q"), ("dumpavailsize", "I"), ("flags", "I")], "<"),
}

_WORDS = struct.Struct("<128I")


def kdh_parity(raw: bytes) -> int:
    """XOR of the 128 32-bit words; 0 for a valid header (byte order does not matter)."""
    acc = 0
    for word in _WORDS.unpack_from(raw):
        acc ^= word
    return acc


def kdh_version(raw: bytes) -> int:
    return struct.unpack_from(">I", raw, 32)[0]


def cstring(raw: bytes) -> str:
    """A NUL-padded C string as text; undecodable bytes kept visible as escapes."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def parse_kdh(raw: bytes) -> dict[str, Any]:
    """Decode a 512-byte kerneldumpheader with the layout its version names (v4 when unknown)."""
    version = kdh_version(raw)
    layout = KDH_LAYOUTS.get(version, KDH_V4)
    fields = layout.parse(raw)._asdict()
    fields.pop("unused", None)
    for name in ("magic", "architecture", "hostname", "versionstring", "panicstring"):
        fields[name] = cstring(fields[name])
    fields.setdefault("dumpkeysize", 0)
    fields.setdefault("compression", 0)
    fields.setdefault("dumpextent", 0)
    fields["parity_ok"] = kdh_parity(raw) == 0
    return fields


def build_kdh(version: int = 4, **fields: Any) -> bytes:
    """A header of the given version with a correct parity word (unless ``parity`` is given)."""
    layout = KDH_LAYOUTS[version]
    for name in ("magic", "architecture", "hostname", "versionstring", "panicstring"):
        if isinstance(fields.get(name), str):
            fields[name] = fields[name].encode()
    fields.setdefault("magic", KDH_MAGIC)
    explicit_parity = "parity" in fields
    raw = layout.build(version=version, **fields)
    if explicit_parity:
        return raw
    parity = kdh_parity(raw)
    # The parity word is the last 4 bytes; store it so that the XOR of all words becomes 0.
    return raw[:-4] + struct.pack("<I", parity)


def parse_kdk(raw: bytes) -> dict[str, Any]:
    head = KDK_HEAD.parse(raw)
    return {
        "encryption": head.encryption,
        "encryption_name": ENCRYPTION_NAMES.get(head.encryption, "unknown"),
        "iv": head.iv.hex(),
        "encryptedkeysize": head.encryptedkeysize,
    }


def build_kdk(encryption: int, iv: bytes, encrypted_key: bytes, size: int = EKCD_BLOB_SIZE) -> bytes:
    blob = KDK_HEAD.build(encryption=encryption, iv=iv,
                          encryptedkeysize=len(encrypted_key)) + encrypted_key
    return blob + bytes(max(0, size - len(blob)))


def build_message(mtype: int, seqno: int, offset: int = 0, payload: bytes = b"", aux2: int = 0) -> bytes:
    return MSG_HDR.build(type=mtype, seqno=seqno, offset=offset,
                         length=len(payload), aux2=aux2) + payload


def build_ack(seqno: int) -> bytes:
    return ACK.build(seqno=seqno)
