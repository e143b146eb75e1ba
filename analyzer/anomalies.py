"""Every anomaly keyword the tool reports, with its meaning: the one list of them.

The keywords are a contract (the JSON report's ``kind``, stable across versions); the
README's anomaly table is checked against :data:`MEANINGS` by the tests. Readers, core,
recovery, writer and report name a keyword through :class:`Kind`, never as a bare string.
"""
from __future__ import annotations

import enum


class Kind(enum.StrEnum):
    """An anomaly keyword; a ``str`` equal to the keyword itself."""

    RUNT = "runt"
    BAD_LENGTH = "bad-length"
    UNKNOWN_TYPE = "unknown-type"
    PATH_REFUSED = "path-refused"
    OFFSET_OUT_OF_RANGE = "offset-out-of-range"
    CONFLICTING_RETRANSMIT = "conflicting-retransmit"
    KDH_PARITY = "kdh-parity"
    KDH_MISSING = "kdh-missing"
    FINISHED_MISSING = "finished-missing"
    TRUNCATED_CAPTURE = "truncated-capture"
    SNAPLEN_TRUNCATED = "snaplen-truncated"
    IP_FRAGMENTS = "ip-fragments"
    OVERSIZED_PAYLOAD = "oversized-payload"
    HERALD_MISSING = "herald-missing"
    SERVER_PORT_CHANGED = "server-port-changed"
    SESSION_LIMIT = "session-limit"
    BAD_CHECKSUM = "bad-checksum"
    IP_CONFLICT = "ip-conflict"
    DUMP_RESTARTED = "dump-restarted"
    NO_FREE_INDEX = "no-free-index"
    ICMP_UNREACHABLE = "icmp-unreachable"
    NAME_TAKEN = "name-taken"
    UNSUPPORTED_LINK = "unsupported-link"
    OVERSIZED_RECORD = "oversized-record"
    PART_FILES_FOUND = "part-files-found"
    VANTAGE_CONFLICT = "vantage-conflict"


MEANINGS: dict[Kind, str] = {
    Kind.RUNT: "datagram shorter than the 24-byte message header",
    Kind.BAD_LENGTH: "header length and datagram size disagree (netdumpd drops these), or a "
                     "reply that is not a 4-byte ACK",
    Kind.UNKNOWN_TYPE: "message type other than 1-5",
    Kind.PATH_REFUSED: "the HERALD path was unsafe or unusable; the dump went to the output "
                       "directory",
    Kind.OFFSET_OUT_OF_RANGE: "data past the KDH dumplength or past `--max-dump-size`; not "
                              "written",
    Kind.CONFLICTING_RETRANSMIT: "a resend whose bytes differ from the earlier copy; the last "
                                 "copy is kept, as netdumpd keeps it",
    Kind.KDH_PARITY: "the kernel dump header's parity check fails",
    Kind.KDH_MISSING: "no kernel dump header was captured",
    Kind.FINISHED_MISSING: "no FINISHED message was captured",
    Kind.TRUNCATED_CAPTURE: "the capture file ends in the middle of a record, or is corrupt from "
                            "some record on",
    Kind.SNAPLEN_TRUNCATED: "a frame was cut by the capture's snap length; its lost bytes are "
                            "missing",
    Kind.IP_FRAGMENTS: "fragmented IPv4 (netdump never fragments); reassembled, or reported "
                       "as lost",
    Kind.OVERSIZED_PAYLOAD: "payload above 4096 bytes: a 13+ client on a jumbo-frame link, "
                            "which netdumpd rejects",
    Kind.HERALD_MISSING: "the capture starts after the HERALD; the session was found from "
                         "later packets",
    Kind.SERVER_PORT_CHANGED: "the client sent to a second server port within one dump",
    Kind.SESSION_LIMIT: "more sessions than the open-session limit (a flood); data-less ones "
                        "are closed first, then new ones dropped",
    Kind.BAD_CHECKSUM: "a UDP or IP checksum is wrong (and does not look like offload); the "
                       "datagram's data is not trusted",
    Kind.IP_CONFLICT: "a second host (another MAC) sends as the same client address; its "
                      "packets are kept in a dump of their own",
    Kind.DUMP_RESTARTED: "a new HERALD after data: the client started over; the old dump "
                         "ends here",
    Kind.NO_FREE_INDEX: "all 1024 indices for this client are taken in the directory; the "
                        "dump is not written",
    Kind.ICMP_UNREACHABLE: "an ICMP port-unreachable for the client's datagram: after "
                           "FINISHED, netdumpd had closed the session and the FINISHED ACK "
                           "was lost",
    Kind.NAME_TAKEN: "a final file name appeared during the run; the data stays under its "
                     "`.part` name",
    Kind.UNSUPPORTED_LINK: "a capture or pcapng interface of a link type not decoded: its "
                           "frames are counted, not read",
    Kind.OVERSIZED_RECORD: "a record longer than the file header's snap length (read all the "
                           "same; the first of each file is reported)",
    Kind.PART_FILES_FOUND: "the output directory holds `.part` files of an interrupted run; "
                           "they are named, and left as they are",
    Kind.VANTAGE_CONFLICT: "two capture points (`--merge`) hold different bytes for the same "
                           "copy; the one from the view nearest the server is kept",
}
