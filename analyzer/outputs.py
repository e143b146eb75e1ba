"""What a run tells the world while it runs: a line, a JSON line and a hook per dump ended.

The command line builds one :class:`LiveOutputs` from its options and hands its callbacks to
:func:`analyzer.pipeline.run_analysis`; nothing here reads the capture or writes the dumps.
"""
from __future__ import annotations

from typing import IO, Callable

from analyzer.exechook import DEFAULT_TIMEOUT, ExecHook
from analyzer.jsonlines import JsonLines


class LiveOutputs:
    """``on_dump``/``on_anomaly`` callbacks for the pipeline, and ``close()`` at the end."""

    def __init__(self, lines_to: IO[str] | None = None, json_lines: str | None = None,
                 exec_program: str | None = None, exec_timeout: float = DEFAULT_TIMEOUT,
                 outdir: str | None = None, warn: Callable[[str], None] | None = None,
                 live: bool = True, ready=None):
        self.lines_to = lines_to  # the per-dump lines, None when quiet
        self.ready = ready  # a ReadyStep: each dump derived and inspected first, as it ends
        self.json = JsonLines(json_lines, ready.extra if ready else None) \
            if json_lines else None
        self.hook = ExecHook(exec_program, outdir, exec_timeout, warn) \
            if exec_program and outdir else None
        self.on_dump: list[Callable] = ([ready] if ready else []) + [self._line]
        self.on_anomaly: list[Callable] = []
        if self.json:
            self.on_dump.append(self.json.dump)
            self.on_anomaly.append(self.json.anomaly)
        if self.hook:
            self.on_dump.append(self.hook)
        # the keyword arguments of run_analysis (none when the run cannot call back)
        self.callbacks = {"on_dump": self.on_dump, "on_anomaly": self.on_anomaly} if live else {}

    def _line(self, rec) -> None:
        if self.lines_to is not None:
            from analyzer.report import summary_line
            print(summary_line(rec), file=self.lines_to, flush=True)
            note = self.ready.notes.get(rec.session) if self.ready else None
            if note:  # what the dump itself says, on a line of its own (README)
                print(f"dump {rec.session}:{note}", file=self.lines_to, flush=True)

    def close(self) -> None:
        if self.hook:
            self.hook.close()
        if self.json:
            self.json.close()
