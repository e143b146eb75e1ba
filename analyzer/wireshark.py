"""``netdump-analyzer wireshark``: install the fbsd_netdump Lua dissector for Wireshark/tshark.

The dissector lives in ``dissectors/netdump.lua`` of the source tree. An installed copy of
the package may also carry it under ``<prefix>/share/netdump-analyzer/``.
"""
from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

DISSECTOR_NAME = "netdump.lua"
FALLBACK_DIR = Path("~/.local/lib/wireshark/plugins")  # Wireshark's default on Unix
FOLDER_LABEL = "Personal Lua Plugins"


def dissector_source() -> Path | None:
    """The dissector shipped with this project, or None when it cannot be found."""
    here = Path(__file__).resolve().parent
    candidates = [
        here.parent / "dissectors" / DISSECTOR_NAME,  # source checkout / editable install
        here / DISSECTOR_NAME,  # packaged next to the module
        Path(sys.prefix) / "share" / "netdump-analyzer" / DISSECTOR_NAME,  # data-files install
    ]
    for path in candidates:
        if path.is_file():
            return path
    return None


def personal_lua_plugins(tshark: str | None = None) -> tuple[Path, str]:
    """Wireshark's personal Lua plugins folder and where that answer came from.

    Asks ``tshark -G folders``; falls back to ~/.local/lib/wireshark/plugins when tshark
    is missing or does not say.
    """
    exe = tshark or shutil.which("tshark")
    if exe:
        try:
            proc = subprocess.run([exe, "-G", "folders"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            proc = None
        if proc is not None and proc.returncode == 0:
            for line in proc.stdout.splitlines():
                label, sep, value = line.partition(":")
                if sep and label.strip() == FOLDER_LABEL and value.strip():
                    return Path(value.strip()).expanduser(), f"{exe} -G folders"
    return FALLBACK_DIR.expanduser(), "default (tshark not found)"


@click.group("wireshark")
def wireshark_group() -> None:
    """Wireshark integration: the fbsd_netdump Lua dissector."""


@wireshark_group.command("install")
@click.option("--force", is_flag=True, help="Overwrite a different netdump.lua already installed there.")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Install into this folder instead of Wireshark's personal Lua plugins folder.")
@click.option("--tshark", "tshark_path", default=None, metavar="PATH",
              help="tshark to ask for the plugins folder (default: the one on PATH).")
def install(force: bool, dest: Path | None, tshark_path: str | None) -> None:
    """Copy the dissector into Wireshark's personal Lua plugins folder."""
    source = dissector_source()
    if source is None:
        raise click.ClickException(f"cannot find {DISSECTOR_NAME} (expected in dissectors/ of the source tree)")
    if dest is None:
        folder, origin = personal_lua_plugins(tshark_path)
    else:
        folder, origin = dest.expanduser(), "--dest"
    target = folder / DISSECTOR_NAME
    if target.exists() or target.is_symlink():
        if target.is_file() and filecmp.cmp(source, target, shallow=False):
            click.echo(f"already installed: {target} (folder from {origin})")
            return
        if not force:
            raise click.ClickException(
                f"{target} exists and differs from {source}; use --force to overwrite it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{DISSECTOR_NAME}.{os.getpid()}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise click.ClickException(f"cannot install into {folder}: {exc}") from None
    click.echo(f"installed {source} -> {target} (folder from {origin})")
    click.echo("restart Wireshark or use Analyze > Reload Lua Plugins; filter with: fbsd_netdump")
