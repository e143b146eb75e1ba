"""One CSV per dump: a row per message copy and per ACK, streamed to disk.

Rows wait in a small buffer until their burst is done (so a message row can name the frame
of its ACK), then go to the file; memory stays bounded by one burst (or 10000 rows).
ACK rows always name the frame of the message they acknowledge ("acks_frame").
Frames are numbered as Wireshark numbers them, within the file the "file" column names
(:mod:`analyzer.framemap`); rows are mapped as they are written, when their file has started.
"""
from __future__ import annotations

import csv
import os

from analyzer.framemap import FrameMap
from analyzer.newfiles import create_exclusive
from analyzer.wire import TYPE_NAMES

COLUMNS = ["frame", "time", "direction", "type", "seqno", "offset", "length",
           "retransmission", "acked_in_frame", "acks_frame", "rtt", "file"]
FLUSH_ROWS = 10000
ACKED_IN, ACKS, RTT = 8, 9, 10


def csv_path(directory: str, session: int, client: str) -> str:
    return os.path.join(directory, f"dump-{session}-{client}.csv")


class SessionRows:
    def __init__(self, directory: str, session: int, client: str,
                 frames: FrameMap | None = None):
        self.frames = frames or FrameMap([])
        os.makedirs(directory, exist_ok=True)
        self.path = csv_path(directory, session, client)
        # made new: a name already taken raises Failure and is left as it is
        self.file = os.fdopen(create_exclusive(self.path, 0o644), "w", newline="",
                              encoding="ascii")
        self.writer = csv.writer(self.file)
        self.writer.writerow(COLUMNS)
        self.buffer: list[list] = []

    def message(self, ev) -> list:
        row = [ev.frame, ev.ts, "C->S", TYPE_NAMES[ev.type], ev.seqno, ev.offset, ev.length,
               1 if ev.retransmit else 0, "", "", ""]
        self.buffer.append(row)
        if len(self.buffer) >= FLUSH_ROWS:
            self.flush()
        return row

    def ack(self, ev) -> list:
        row = [ev.frame, ev.ts, "S->C", "ACK", ev.seqno, "", "", 1 if ev.duplicate else 0,
               "", ev.message_frame or "", ""]
        self.buffer.append(row)
        if len(self.buffer) >= FLUSH_ROWS:
            self.flush()
        return row

    def flush(self) -> None:
        if not self.buffer:
            return
        locate = self.frames.locate
        for row in self.buffer:
            path, row[0] = locate(row[0])
            row.append(path or "")
            for i in (ACKED_IN, ACKS):
                if row[i] != "":
                    row[i] = locate(row[i])[1]
            row[1] = f"{row[1] / 1e9:.9f}"
            if row[RTT] != "":
                row[RTT] = f"{row[RTT] / 1e9:.9f}"
        self.writer.writerows(self.buffer)
        self.buffer = []

    def close(self) -> None:
        if self.file.closed:
            return
        self.flush()
        self.file.close()
