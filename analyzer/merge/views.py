"""What a view is (one capture point, maybe several ring-buffer files), and the key that
says two datagrams of different views are copies of one transmission."""
from __future__ import annotations

from analyzer.datagram import Datagram, Unreachable
from analyzer.framemap import FRAME_REFERENCE, FrameMap, frame_label
from analyzer.wire import CLIENT_PORT, HERALD_PORT


class View:
    """One capture point: its files read in sequence as one capture, its own frame numbers.

    ``name`` is the view as the command line wrote it (``A1.pcap,A2.pcap``): the name every
    report and table uses for it.
    """

    def __init__(self, index: int, name: str, paths: list[str]):
        self.index = index
        self.name = name
        self.paths = paths
        self.reader = None  # a CaptureReader, once opened
        self.frames = FrameMap([])  # its frame numbers to (file, frame in that file)
        self.delay_ns = 0  # one-way delay from the reference view, toward the server
        self.clock = None  # its Clock against the reference's over the whole view

    def open(self, reader) -> None:
        self.reader = reader
        self.frames = FrameMap(reader)

    def locate(self, frame: int) -> tuple[str | None, int]:
        return self.frames.locate(frame)

    def where(self, frame: int) -> str:
        """'frame N of file' for one of this view's frame numbers."""
        path, n = self.frames.locate(frame)
        return f"frame {frame_label(n, path or self.name, True)}"

    def retext(self, text: str) -> str:
        """The view's frames named in free text as 'frame N of file', its own file always
        named (several captures are read)."""
        return FRAME_REFERENCE.sub(lambda m: m[1] + ", ".join(
            frame_label(n, p or self.name, True)
            for p, n in (self.frames.locate(int(x)) for x in m[2].split(", "))), text)


def parse_views(captures) -> list[View]:
    """Each positional capture is one view; commas join the ring-buffer files of one view."""
    views = []
    for i, spec in enumerate(captures):
        paths = [p for p in spec.split(",") if p]
        views.append(View(i, spec, paths))
    return views


def match_key(d) -> tuple | None:
    """Copies of one transmission share this key in every view: the flow and, for a client
    message, its type, seqno and offset (the header's first 16 bytes); for an ACK, the acked
    seqno. The body is left out so that views disagreeing on bytes still match (and the
    disagreement is reported). None for what is not a datagram."""
    kind = type(d)
    if kind is Datagram:
        p = d.payload
        if d.sport == CLIENT_PORT or d.dport == HERALD_PORT:
            head = p[:16] if len(p) >= 24 else p
            return (0, d.src, d.dst, d.sport, d.dport, head)
        return (1, d.src, d.dst, d.sport, d.dport, p if len(p) <= 8 else p[:8])
    if kind is Unreachable:
        return (3, d.src, d.orig_src, d.orig_sport, d.orig_dport)
    return None
