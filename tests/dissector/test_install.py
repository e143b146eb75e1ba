"""``netdump-analyzer wireshark install``, and the installed dissector under the real tshark:
the plugin with its parts, the colouring profile, a second copy stepping aside, and the
client field read from another Lua script."""
from __future__ import annotations

import subprocess
from pathlib import Path

from tests.dissector.test_dissector import LUA, Capture, assert_no_lua_errors, sc_clean, tshark, tshark_env  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "lossy-12x.pcapng"


def _fake_tshark(tmp_path: Path, folder: Path) -> Path:
    exe = tmp_path / "fake-tshark"
    exe.write_text("#!/bin/sh\n"
                   f"printf 'Personal configuration:\\t{tmp_path / 'config'}\\n'\n"
                   f"printf 'Personal Lua Plugins:\\t{folder}\\n'\n")
    exe.chmod(0o755)
    return exe


def test_install_uses_tshark_folder(tmp_path):
    from click.testing import CliRunner

    from analyzer.wireshark import wireshark_group

    folder = tmp_path / "plugins"
    exe = _fake_tshark(tmp_path, folder)
    runner = CliRunner()
    res = runner.invoke(wireshark_group, ["install", "--tshark", str(exe)])
    assert res.exit_code == 0, res.output
    target = folder / "netdump.lua"
    assert target.read_bytes() == LUA.read_bytes()
    assert (folder / "fbsd_netdump" / "audit.lua").read_bytes() == \
        (LUA.parent / "fbsd_netdump" / "audit.lua").read_bytes()
    assert str(target) in res.output
    # the colouring rule, as a profile in the personal configuration folder
    rules = (tmp_path / "config" / "profiles" / "FreeBSD netdump" / "colorfilters").read_text()
    assert rules.startswith("@FreeBSD netdump problems@fbsd_netdump.analysis.flags@")
    # same file again: fine, nothing to do
    res = runner.invoke(wireshark_group, ["install", "--tshark", str(exe)])
    assert res.exit_code == 0 and "already installed" in res.output
    # a different file is not overwritten without --force
    target.write_text("-- someone else's dissector\n")
    res = runner.invoke(wireshark_group, ["install", "--tshark", str(exe)])
    assert res.exit_code != 0 and "--force" in res.output
    assert target.read_text() == "-- someone else's dissector\n"
    res = runner.invoke(wireshark_group, ["install", "--tshark", str(exe), "--force"])
    assert res.exit_code == 0, res.output
    assert target.read_bytes() == LUA.read_bytes()


def test_install_without_tshark_falls_back(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from analyzer import wireshark

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(wireshark.shutil, "which", lambda name: None)
    res = CliRunner().invoke(wireshark.wireshark_group, ["install"])
    assert res.exit_code == 0, res.output
    target = tmp_path / ".local" / "lib" / "wireshark" / "plugins" / "netdump.lua"
    assert target.read_bytes() == LUA.read_bytes()
    assert str(target) in res.output


def test_install_dest_option(tmp_path):
    from click.testing import CliRunner

    from analyzer.wireshark import wireshark_group

    res = CliRunner().invoke(wireshark_group, ["install", "--dest", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "x" / "netdump.lua").is_file()


def test_installed_plugin_loads_from_personal_folder(tshark, tmp_path):
    """Installed with the command, tshark picks the dissector up with no -X option."""
    from click.testing import CliRunner

    from analyzer.wireshark import wireshark_group

    env = tshark_env(tmp_path)
    folders = subprocess.run([tshark, "-G", "folders"], capture_output=True, text=True, env=env).stdout
    folder = next(ln.split(":", 1)[1].strip() for ln in folders.splitlines()
                  if ln.startswith("Personal Lua Plugins:"))
    assert folder.startswith(str(tmp_path)), folder  # isolated HOME, not the real one
    res = CliRunner().invoke(wireshark_group, ["install", "--dest", folder])
    assert res.exit_code == 0, res.output
    cap = Capture()
    sc_clean(cap)
    pcap = cap.write(tmp_path / "clean.pcap")
    proc = subprocess.run([tshark, "-n", "-2", "-r", str(pcap), "-T", "fields",
                           "-e", "fbsd_netdump.type"], capture_output=True, text=True, env=env)
    assert_no_lua_errors(proc.stdout, proc.stderr)
    assert proc.stdout.split() == ["1", "3", "3", "3", "4", "2"]




def _installed(tshark: str, tmp_path: Path) -> tuple[dict, str]:
    """Install with the command into an isolated personal folder; (environment, folder)."""
    from click.testing import CliRunner

    from analyzer.wireshark import wireshark_group

    env = tshark_env(tmp_path)
    folders = subprocess.run([tshark, "-G", "folders"], capture_output=True, text=True, env=env).stdout
    folder = next(ln.split(":", 1)[1].strip() for ln in folders.splitlines()
                  if ln.startswith("Personal Lua Plugins:"))
    config = next(ln.split(":", 1)[1].strip() for ln in folders.splitlines()
                  if ln.startswith("Personal configuration:"))
    res = CliRunner().invoke(wireshark_group, ["install", "--dest", folder, "--config", config])
    assert res.exit_code == 0, res.output
    return env, folder


def test_install_with_a_missing_tshark_is_a_usage_error(tmp_path):
    from click.testing import CliRunner

    from analyzer.wireshark import wireshark_group

    res = CliRunner().invoke(wireshark_group, ["install", "--tshark", str(tmp_path / "nonexist"),
                                               "--dest", str(tmp_path / "x")])
    assert res.exit_code == 2, res.output
    assert "nonexist" in res.output
    assert not (tmp_path / "x").exists()


def test_script_given_again_steps_aside(tshark, tmp_path):
    """Installed as a plugin and given with -X lua_script: the second copy says so and yields."""
    env, folder = _installed(tshark, tmp_path)
    proc = subprocess.run([tshark, "-n", "-2", "-r", str(SAMPLE), "-X", f"lua_script:{LUA}",
                           "-Y", "fbsd_netdump.analysis.out_of_order", "-T", "fields", "-e", "frame.number"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "two protocols" not in proc.stderr
    assert f"fbsd_netdump: already loaded from {folder}/netdump.lua; {LUA} steps aside" in proc.stderr
    assert proc.stdout.split() == ["59", "85", "117", "212", "227", "232", "268"]


READER = """
local client = Field.new("fbsd_netdump.client")
local tap = Listener.new("frame", "fbsd_netdump")
function tap.packet(pinfo, tvb)
    local fi = client()
    io.write(string.format("%d %s %d %d\\n", pinfo.number, tostring(fi.value), fi.range:len(), fi.offset))
end
"""


def test_client_field_read_from_another_script(tshark, tmp_path):
    """Field.new("fbsd_netdump.client")().value works: the field has the IP address's range."""
    reader = tmp_path / "reader.lua"
    reader.write_text(READER)
    proc = subprocess.run([tshark, "-n", "-r", str(SAMPLE), "-q", "-X", f"lua_script:{LUA}",
                           "-X", f"lua_script:{reader}"],
                          capture_output=True, text=True, env=tshark_env(tmp_path), timeout=120)
    assert_no_lua_errors(proc.stdout, proc.stderr)
    lines = proc.stdout.split("\n")
    # frame 1 is the HERALD from the client: the IP source (offset 14 + 12 in the frame);
    # frame 2 its ACK: the IP destination (14 + 16)
    assert lines[0] == "1 10.0.0.23 4 26"
    assert lines[1] == "2 10.0.0.23 4 30"
    assert len([ln for ln in lines if ln]) == 292
