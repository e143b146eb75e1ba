"""``--json-lines FILE``: one JSON object per line, written the moment its subject ends.

A finished dump gives its report session object plus ``"event": "dump"``; a capture-level
anomaly gives ``{"event": "anomaly", "kind", "frame", "detail"}``. Each line is flushed at
once, so a log shipper can follow the file as it follows Suricata's EVE log.
"""
from __future__ import annotations

import json
import os
import sys
from typing import IO, Callable

from analyzer.recovery.dump import DumpRecord

_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class JsonLines:
    """``dump(rec)`` and ``anomaly(entry)`` as the pipeline's callbacks; ``close()``."""

    def __init__(self, target: str, extra: Callable[[DumpRecord], dict] | None = None):
        self.extra = extra  # keys the report's session gets after the run (its "inspect")
        if target == "-":
            self.stream: IO[str] = sys.stdout
            self._own = False
        else:  # appended to: an existing file is never overwritten
            self.stream = os.fdopen(os.open(target, _APPEND, 0o644), "w", encoding="utf-8")
            self._own = True

    def _write(self, obj: dict) -> None:
        self.stream.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.stream.flush()

    def dump(self, rec: DumpRecord) -> None:
        from analyzer.report import session_json
        more = self.extra(rec) if self.extra else {}
        self._write({"event": "dump", **session_json(rec, rec.frames), **more})

    def anomaly(self, entry: dict) -> None:
        self._write({"event": "anomaly", **entry})

    def close(self) -> None:
        if self._own:
            self.stream.close()
