"""GUI smoke test: Wireshark (Qt) under Xvfb with the plugin, the Dumps window's export.

A small hook script opens Tools > FreeBSD netdump > Dumps... (the same function the menu
calls) once the file is loaded; xdotool then presses "Export dumps...", types the folder into
the dialog and confirms, as a user would. The written files must equal extract's; no Lua
error may reach stderr or a window. A screenshot (xwd) is kept beside the test's files.
Needs wireshark-qt, Xvfb, xdotool and xwd (make test-deps installs them); skipped otherwise.
Every wait is bounded, and Wireshark and Xvfb are killed at the end whatever happens.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.dissector.test_dissector import tshark_env
from tests.dissector.test_export import extract, tree_hashes

REPO = Path(__file__).resolve().parents[2]
LUA = REPO / "dissectors" / "netdump.lua"
SAMPLE = REPO / "samples" / "clean-13x.pcap"
TOOLS = ("wireshark", "Xvfb", "xdotool", "xwd")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

HOOK = """
-- test hook: open the Dumps window once the capture is loaded
local opened = false
local tap = Listener.new("frame", "fbsd_netdump")
function tap.draw()
    if opened then return end
    opened = true
    local ok, err = pcall(function()
        FBSD_NETDUMP_GUI.stats_window()
        FBSD_NETDUMP_GUI.dumps_window()
    end)
    local f = io.open(os.getenv("FBSD_NETDUMP_HOOK_LOG"), "w")
    f:write(ok and "opened\\n" or ("ERROR " .. tostring(err) .. "\\n"))
    f:close()
end
"""


@pytest.fixture
def gui_tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        if IN_CI:
            pytest.fail(f"{', '.join(missing)} required in CI (make test-deps installs them)")
        pytest.skip(f"not installed: {', '.join(missing)}")


def wait_for(what: str, check, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Display:
    """An Xvfb server on a free display number (Xvfb picks it: -displayfd)."""

    def __init__(self):
        read, write = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24",
                                      "-nolisten", "tcp"], pass_fds=(write,),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as f:
            number = f.readline().strip()
        assert number.isdigit(), "Xvfb did not start"
        self.name = f":{number}"

    def run(self, *args: str) -> str:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, DISPLAY=self.name))
        return proc.stdout

    def windows(self, name: str) -> list[str]:
        return self.run("xdotool", "search", "--name", name).split()

    def geometry(self, wid: str) -> dict[str, int]:
        out = self.run("xdotool", "getwindowgeometry", "--shell", wid)
        return {k: int(v) for k, v in (ln.split("=") for ln in out.split()) if k in ("X", "Y", "WIDTH", "HEIGHT")}

    def click(self, wid: str, fx: float, fy: float) -> None:
        g = self.geometry(wid)
        self.run("xdotool", "mousemove", str(g["X"] + int(g["WIDTH"] * fx)),
                 str(g["Y"] + int(g["HEIGHT"] * fy)), "click", "1")

    def screenshot(self, path: Path) -> None:
        with open(path, "wb") as f:
            subprocess.run(["xwd", "-root", "-silent"], stdout=f, timeout=30,
                           env=dict(os.environ, DISPLAY=self.name))

    def close(self) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def exported(out: Path) -> bool:
    return any(b"Dump complete" in p.read_bytes() for p in out.rglob("info.*"))


def export_through_the_window(display: Display, win: str, out: Path, attempts: int = 3) -> None:
    """Press "Export dumps...", type the folder, confirm; again if a slow display lost a key."""
    for _ in range(attempts):
        if not display.windows("Export dumps"):
            display.click(win, 0.5, 0.3)  # focus the text; then Tab, Tab: "Export dumps..."
            display.run("xdotool", "key", "Tab", "Tab", "space")
        try:
            dialog = wait_for("the export dialog", lambda: display.windows("Export dumps"), 30)[-1]
        except AssertionError:
            continue
        time.sleep(2)
        display.click(dialog, 0.5, 0.25)  # the folder field
        display.run("xdotool", "key", "ctrl+a", "BackSpace")
        display.run("xdotool", "type", "--delay", "10", str(out))
        display.run("xdotool", "key", "Return")
        try:
            wait_for("the exported info file", lambda: exported(out), 60)
            return
        except AssertionError:
            continue
    raise AssertionError(f"no export after {attempts} attempts")


def error_windows(display: Display) -> list[str]:
    names = [display.run("xdotool", "getwindowname", w).strip() for w in display.windows(".")]
    return [n for n in names if "error" in n.lower() or n.lower().startswith("lua")]


def test_dumps_window_exports_like_extract(gui_tools, tmp_path):
    # A Wireshark start under Xvfb now and then never draws its windows in time on a loaded
    # machine; a second, fresh start tells that apart from a real failure.
    try:
        _dumps_window_once(tmp_path / "first")
    except AssertionError as exc:
        if "timed out" not in str(exc):
            raise
        _dumps_window_once(tmp_path / "second")


def _dumps_window_once(tmp_path):
    tmp_path.mkdir()
    hook = tmp_path / "hook.lua"
    hook.write_text(HOOK)
    out, log = tmp_path / "export", tmp_path / "hook.log"
    env = dict(tshark_env(tmp_path), FBSD_NETDUMP_HOOK_LOG=str(log))
    display = Display()
    env["DISPLAY"] = display.name
    stderr = open(tmp_path / "wireshark.stderr", "w")
    ws = subprocess.Popen(["wireshark", "-r", str(SAMPLE), "-X", f"lua_script:{LUA}",
                           "-X", f"lua_script:{hook}"], env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                          cwd=tmp_path)  # a folder typed with a key lost stays inside tmp_path
    try:
        screen = tmp_path / "screen.xwd"
        wait_for("the hook", lambda: log.exists() and log.read_text())
        assert log.read_text() == "opened\n"
        assert wait_for("the statistics window", lambda: display.windows("FreeBSD netdump: statistics"))
        (win,) = wait_for("the Dumps window", lambda: display.windows("FreeBSD netdump: dumps"))
        time.sleep(3)  # a loaded machine draws slowly
        export_through_the_window(display, win, out)
        # "Colour problems": the fourth button (temporary colour slots; no dialog)
        display.click(win, 0.5, 0.3)
        display.run("xdotool", "key", "Tab", "Tab", "Tab", "Tab", "space")
        time.sleep(1)
        display.screenshot(tmp_path / "screen.xwd")
        assert not error_windows(display)
        assert ws.poll() is None, "Wireshark exited"
    except AssertionError:
        display.screenshot(screen)
        raise
    finally:
        stop(ws)
        display.close()
        stderr.close()
    lua_errors = [ln for ln in (tmp_path / "wireshark.stderr").read_text().splitlines()
                  if "lua" in ln.lower() or "error" in ln.lower()]
    assert not lua_errors, "\n".join(lua_errors)
    extract(SAMPLE, tmp_path / "extract")
    ours = tree_hashes(out)
    assert ours == tree_hashes(tmp_path / "extract")
    assert sorted(ours) == ["crash/web1/info.10.0.0.21.0", "crash/web1/vmcore.10.0.0.21.0"]
