"""The shipped manual page is the commands' own help, and shell completion works."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from analyzer.cli import cli
from analyzer.manpage import render, roff

PAGE = Path(__file__).resolve().parents[2] / "docs" / "netdump-analyzer.1"


def test_the_shipped_man_page_is_up_to_date_with_the_commands():
    assert PAGE.read_text() == render(cli), \
        "docs/netdump-analyzer.1 differs from the commands: run `make man` and commit it"


def _every_command(group, ctx, path):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        sub = click.Context(cmd, info_name=name, parent=ctx)
        yield " ".join(path + [name]), cmd
        if isinstance(cmd, click.Group):
            yield from _every_command(cmd, sub, path + [name])


def test_every_command_and_option_is_in_the_page():
    page = render(cli)
    ctx = click.Context(cli, info_name="netdump-analyzer")
    commands = list(_every_command(cli, ctx, ["netdump-analyzer"]))
    assert {"netdump-analyzer extract", "netdump-analyzer audit",
            "netdump-analyzer wireshark install"} <= {c for c, _ in commands}
    for path, cmd in commands:
        assert f'.SS "{roff(path)}"' in page
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert all(roff(o) in page for o in param.opts), (path, param.opts)


def test_the_page_is_valid_roff_for_man():
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    check = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(PAGE)],
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stderr == "", check.stderr  # -ww: every warning
    text = subprocess.run([groff, "-man", "-Tutf8", "-P-cbou", str(PAGE)],
                          capture_output=True, text=True).stdout
    assert "EXIT STATUS" in text and "netdump-analyzer extract [OPTIONS] CAPTURES..." in text


def _complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "_NETDUMP_ANALYZER_COMPLETE": "bash_complete",
           "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    p = subprocess.run([sys.executable, "-c", "from analyzer.cli import main; main()"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    return [line.split(",", 1)[1] for line in p.stdout.splitlines()]


def test_shell_completion_as_the_page_and_readme_describe_it():
    env = {**os.environ, "_NETDUMP_ANALYZER_COMPLETE": "bash_source"}
    p = subprocess.run([sys.executable, "-c", "from analyzer.cli import main; main()"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and "complete -o nosort -F" in p.stdout
    assert _complete("netdump-analyzer ex", 1) == ["extract"]
    assert "--frames" in _complete("netdump-analyzer messages --", 2)
