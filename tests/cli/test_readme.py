"""The README's exit-status table, its error examples and its sample walkthrough are what
the tool does: each example runs, and prints exactly the lines shown, with the status the
table gives."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import exits
from tests.cli.test_edges import as_user

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"### {title}\n")
    return README[start:README.index("\n### ", start + 1)]


def test_the_exit_status_table_lists_every_status_the_tool_uses():
    table = re.findall(r"^\| (\d+) \|", _section("Exit status"), re.M)
    used = {v for k, v in vars(exits).items() if k.startswith("EXIT_")}
    assert sorted(map(int, table)) == sorted(used)


def _examples() -> list[tuple[list[str], str]]:
    out = []
    for block in re.findall(r"```\n(\$ netdump-analyzer .*?)```", _section("Exit status"),
                            re.S):
        lines = block.strip().splitlines()
        for command, expected in zip(lines[::2], lines[1::2]):
            out.append((command.split()[2:], expected))
    return out


EXAMPLES = _examples()


def test_the_examples_were_found():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("argv, expected", EXAMPLES, ids=[" ".join(a) for a, _ in EXAMPLES])
def test_each_error_example_is_what_the_tool_prints(argv, expected, tmp_path):
    shutil.copyfile(ROOT / "samples" / "clean-13x.pcap", tmp_path / "dump.pcap")
    (tmp_path / "crash" / "ro").mkdir(parents=True)
    (tmp_path / "crash" / "ro").chmod(0o555)
    (tmp_path / "plain.txt").write_text("notes\n")
    (tmp_path / "dumps").mkdir()
    try:
        p = as_user(*argv, cwd=tmp_path)
    finally:
        (tmp_path / "crash" / "ro").chmod(0o755)
    assert p.stderr.strip() == expected
    assert p.returncode == (exits.EXIT_USAGE if "Invalid value" in expected
                            else exits.EXIT_UNREADABLE)
    assert p.stdout == ""


def _sessions(title: str) -> list[tuple[list[str], list[str]]]:
    """(argv, output lines) of each `$ netdump-analyzer` command in the section's blocks."""
    out = []
    for block in re.findall(r"```\n(\$ netdump-analyzer .*?)```", _section(title), re.S):
        for command in re.split(r"^\$ ", block, flags=re.M)[1:]:
            first, *lines = command.rstrip("\n").split("\n")
            out.append((first.split()[1:], lines))
    return out


def test_the_sample_inspect_example_is_a_real_run(tmp_path):
    """The multi-client walkthrough, run in order in a fresh folder: each command prints
    exactly the lines shown (a lossy dump's lost pages included) and exits 3."""
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    session = _sessions("Example: the multi-client sample")
    assert [argv[0] for argv, _ in session] == ["extract", "inspect"]
    for argv, lines in session:
        p = subprocess.run([sys.executable, "-m", "analyzer", *argv], capture_output=True,
                           text=True, cwd=tmp_path, timeout=120)
        assert (p.returncode, p.stderr) == (exits.EXIT_INCOMPLETE, ""), argv
        assert p.stdout.splitlines() == lines, argv
