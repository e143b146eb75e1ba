"""The manual page, written from the commands themselves (``make man``).

``python -m analyzer.manpage > docs/netdump-analyzer.1``: every command, its arguments and
options with their help and defaults come from click, so the page cannot drift from the
tool; a test compares the shipped page with a fresh rendering.
"""
from __future__ import annotations

import sys

import click

from analyzer import __version__

PROG = "netdump-analyzer"

EXIT_STATUS = [
    ("0", "every dump found is complete (also when no dump was found)"),
    ("3", "at least one dump is incomplete"),
    ("1", "a capture file, or an output, cannot be used at all (the dumps in the other, "
          "readable files are still written and reported)"),
    ("2", "usage error, also a messages filter that matches nothing"),
    ("130", "interrupted (Ctrl-C); the message says what was left"),
    ("141", "the reader of standard output went away (| head): the command stops quietly"),
]

ENVIRONMENT = [
    ("NETDUMP_ANALYZER_PURE=1", "run the hot modules from their .py files even where "
                                "Cython compiled them (same results)"),
    ("NETDUMP_ANALYZER_DEBUG=1", "show the traceback of an internal error instead of its "
                                 "one-line summary"),
    ("_NETDUMP_ANALYZER_COMPLETE", "shell completion, see SHELL COMPLETION"),
]

COMPLETION = [
    "bash, in ~/.bashrc:",
    None, 'eval "$(_NETDUMP_ANALYZER_COMPLETE=bash_source netdump-analyzer)"', None,
    "zsh, in ~/.zshrc:",
    None, 'eval "$(_NETDUMP_ANALYZER_COMPLETE=zsh_source netdump-analyzer)"', None,
    "fish, in ~/.config/fish/completions/netdump-analyzer.fish:",
    None, "_NETDUMP_ANALYZER_COMPLETE=fish_source netdump-analyzer | source", None,
]


def roff(text: str) -> str:
    """Text safe in a roff line: backslashes and hyphens escaped, no leading control dot."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + out if out[:1] in (".", "'") else out


def _paragraphs(text: str) -> list[str]:
    lines = []
    for para in click.unstyle(text or "").strip().split("\n\n"):
        para = " ".join(para.split())
        if para and not para.startswith("\b"):
            lines += [roff(para), ".PP"]
    return lines[:-1]


def _commands(group: click.Group, ctx: click.Context, path: list[str]):
    """(path, command, context) of every command below ``group``, in name order."""
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        sub = click.Context(cmd, info_name=name, parent=ctx)
        yield path + [name], cmd, sub
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, sub, path + [name])


def _options(cmd: click.Command, ctx: click.Context) -> list[str]:
    lines = []
    for param in cmd.get_params(ctx):
        if not isinstance(param, click.Option):  # arguments are in the usage line
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        lines += [".TP", f"\\fB{roff(names)}\\fR"]
        lines.append(roff(" ".join(click.unstyle(help_text).split())) or "\\&")
    return lines


def render(cli: click.Group) -> str:
    ctx = click.Context(cli, info_name=PROG, **cli.context_settings)
    summary = (cli.help or "").strip().splitlines()[0].rstrip(".")
    lines = [
        f'.TH NETDUMP\\-ANALYZER 1 "" "{PROG} {__version__}" "User Commands"',
        ".SH NAME", f"{roff(PROG)} \\- {roff(summary[0].lower() + summary[1:])}",
        ".SH SYNOPSIS", f".B {roff(PROG)}", "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]...",
        ".SH DESCRIPTION", *_paragraphs(cli.help), ".PP",
        roff(f"Each command below has -h and --help. {PROG} --version prints the version."),
        ".SH COMMANDS",
    ]
    for path, cmd, sub in _commands(cli, ctx, [PROG]):
        usage = " ".join(cmd.collect_usage_pieces(sub))
        lines += [f'.SS "{roff(" ".join(path))}"', ".B " + roff(" ".join(path)),
                  roff(usage), ".PP", *_paragraphs(cmd.help)]
        options = _options(cmd, sub)
        if options:
            lines += [".PP", "Options:", ".RS", *options, ".RE"]
    lines.append(".SH EXIT STATUS")
    for code, meaning in EXIT_STATUS:
        lines += [".TP", f"\\fB{code}\\fR", roff(meaning)]
    lines.append(".SH ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        lines += [".TP", f"\\fB{roff(name)}\\fR", roff(meaning)]
    lines.append(".SH SHELL COMPLETION")
    verbatim = False
    for line in COMPLETION:
        if line is None:
            verbatim = not verbatim
            lines.append(".nf" if verbatim else ".fi")
        else:
            lines.append(roff(line))
    lines += [".SH SEE ALSO", "\\fBnetdumpd\\fR(8), \\fBnetdump\\fR(4), \\fBdumpon\\fR(8), "
              "\\fBsavecore\\fR(8), \\fBtshark\\fR(1)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    from analyzer.cli import cli
    sys.stdout.write(render(cli))


if __name__ == "__main__":
    main()
