"""``netdump-analyzer wireshark``: install the fbsd_netdump Lua dissector for Wireshark/tshark.

The dissector is ``dissectors/netdump.lua`` plus its parts in ``dissectors/fbsd_netdump/``;
the colouring rules are a Wireshark profile, ``dissectors/profile/`` ("FreeBSD netdump"),
because Lua on Wireshark 4.0 cannot add permanent colouring rules. An installed copy of the
package carries them under ``<prefix>/share/netdump-analyzer/``.
"""
from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

from analyzer.exits import EXIT_USAGE

DISSECTOR_NAME = "netdump.lua"
PARTS_DIR = "fbsd_netdump"
PROFILE_NAME = "FreeBSD netdump"
FALLBACK_DIR = Path("~/.local/lib/wireshark/plugins")  # Wireshark's default on Unix
FALLBACK_CONFIG = Path("~/.config/wireshark")
FOLDER_LABEL = "Personal Lua Plugins"
CONFIG_LABEL = "Personal configuration"
GLOBAL_LABEL = "Global configuration"


class UsageFailure(click.ClickException):
    exit_code = EXIT_USAGE


def dissector_source() -> Path | None:
    """The dissector shipped with this project, or None when it cannot be found."""
    here = Path(__file__).resolve().parent
    candidates = [
        here.parent / "dissectors" / DISSECTOR_NAME,  # source checkout / editable install
        Path(sys.prefix) / "share" / "netdump-analyzer" / DISSECTOR_NAME,  # data-files install
    ]
    for path in candidates:
        if path.is_file() and (path.parent / PARTS_DIR).is_dir():
            return path
    return None


def tshark_folders(tshark: str | None = None) -> tuple[dict[str, str], str | None]:
    """``tshark -G folders`` as a dict, and the tshark asked (None: none found).

    An explicit ``tshark`` that cannot be run is a usage error, never a silent fallback.
    """
    exe = tshark or shutil.which("tshark")
    if not exe:
        return {}, None
    try:
        proc = subprocess.run([exe, "-G", "folders"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        if tshark:
            raise UsageFailure(f"cannot run --tshark {tshark}: {exc}") from None
        return {}, None
    if proc.returncode != 0:
        if tshark:
            raise UsageFailure(f"--tshark {tshark} -G folders failed (exit {proc.returncode})")
        return {}, None
    folders: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        label, sep, value = line.partition(":")
        if sep and value.strip():
            folders.setdefault(label.strip(), value.strip())
    return folders, exe


def personal_lua_plugins(tshark: str | None = None) -> tuple[Path, str]:
    """Wireshark's personal Lua plugins folder and where that answer came from."""
    folders, exe = tshark_folders(tshark)
    if FOLDER_LABEL in folders:
        return Path(folders[FOLDER_LABEL]).expanduser(), f"{exe} -G folders"
    return FALLBACK_DIR.expanduser(), "default (tshark not found)"


def _same_tree(source: Path, target: Path) -> bool:
    if not target.is_dir() or target.is_symlink():
        return False
    cmp = filecmp.dircmp(source, target)
    return not (cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files) and \
        all(filecmp.cmp(source / n, target / n, shallow=False) for n in cmp.common_files)


def _copy_file(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _install_profile(config: Path, global_config: str | None, force: bool) -> Path:
    """The colouring rules as the profile "FreeBSD netdump": ours first, then Wireshark's."""
    source = dissector_source().parent / "profile" / "colorfilters"
    text = source.read_text()
    if global_config and (Path(global_config) / "colorfilters").is_file():
        defaults = (Path(global_config) / "colorfilters").read_text().splitlines(keepends=True)
        text += "".join(ln for ln in defaults if ln.startswith("@"))
    folder = config / "profiles" / PROFILE_NAME
    target = folder / "colorfilters"
    if target.exists() and target.read_text() != text and not force:
        raise click.ClickException(f"{target} exists and differs; use --force to overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".colorfilters.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
    return folder


@click.group("wireshark")
def wireshark_group() -> None:
    """Wireshark integration: the fbsd_netdump Lua dissector."""


@wireshark_group.command("install")
@click.option("--force", is_flag=True, help="Overwrite a different netdump.lua already installed there.")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Install into this folder instead of Wireshark's personal Lua plugins folder.")
@click.option("--config", "config_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Wireshark's personal configuration folder for the profile "
                   "(default: from tshark -G folders).")
@click.option("--tshark", "tshark_path", default=None, metavar="PATH",
              help="tshark to ask for the folders (default: the one on PATH).")
def install(force: bool, dest: Path | None, config_dir: Path | None, tshark_path: str | None) -> None:
    """Copy the dissector into Wireshark's personal Lua plugins folder, and its profile."""
    source = dissector_source()
    if source is None:
        raise click.ClickException(f"cannot find {DISSECTOR_NAME} (expected in dissectors/ of the source tree)")
    folders, exe = tshark_folders(tshark_path)
    if dest is not None:
        folder, origin = dest.expanduser(), "--dest"
    elif FOLDER_LABEL in folders:
        folder, origin = Path(folders[FOLDER_LABEL]).expanduser(), f"{exe} -G folders"
    else:
        folder, origin = FALLBACK_DIR.expanduser(), "default (tshark not found)"
    config = config_dir.expanduser() if config_dir is not None else \
        Path(folders.get(CONFIG_LABEL, str(FALLBACK_CONFIG))).expanduser()
    target, parts = folder / DISSECTOR_NAME, folder / PARTS_DIR
    if (target.is_file() and filecmp.cmp(source, target, shallow=False)
            and _same_tree(source.parent / PARTS_DIR, parts)):
        click.echo(f"already installed: {target} (folder from {origin})")
        return
    if (target.exists() or target.is_symlink() or parts.exists() or parts.is_symlink()) and not force:
        raise click.ClickException(
            f"{target} exists and differs from {source}; use --force to overwrite it")
    try:
        parts.mkdir(parents=True, exist_ok=True)
        for piece in sorted((source.parent / PARTS_DIR).glob("*.lua")):
            _copy_file(piece, parts / piece.name)
        _copy_file(source, target)
        profile = _install_profile(config, folders.get(GLOBAL_LABEL), force)
    except OSError as exc:
        raise click.ClickException(f"cannot install into {folder}: {exc}") from None
    click.echo(f"installed {source} -> {target} (folder from {origin})")
    click.echo(f"colouring rules: profile {PROFILE_NAME!r} in {profile} "
               "(Edit > Configuration Profiles, or wireshark -C 'FreeBSD netdump')")
    click.echo("restart Wireshark or use Analyze > Reload Lua Plugins; filter with: fbsd_netdump")
