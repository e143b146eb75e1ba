"""GUI smoke test: Wireshark (Qt) under Xvfb with the plugin, its menus and the Dumps window.

A small hook script runs what Statistics > FreeBSD netdump and Tools > FreeBSD netdump >
Dumps... run (the functions registered for those menu items) once the file is loaded, and on
every redraw of the taps writes the display filter and both windows' text to a log. xdotool
then presses the Dumps window's buttons as a user would: "Export dumps..." (a folder typed
into the dialog; the files must equal extract's), "Colour problems", and "Filter this dump"
(dump 1: the filter must be applied, which retaps every packet and redraws). The statistics
window must show the table of tshark -z fbsd_netdump,stats. No Lua error may reach stderr or
a window. A screenshot (xwd) is kept beside the test's files.

Deterministic and bounded: Wireshark gets its own HOME and configuration folders (no
recent files, no first-run state), windows are told apart by name, the statistics window is
moved off the Dumps window so that no click lands on it, every wait has a limit, and
Wireshark and Xvfb are killed at the end whatever happens. Needs wireshark-qt, Xvfb,
xdotool and xwd (make test-deps installs them); skipped otherwise.
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

HOOK = r"""
-- test hook: once the capture is loaded, run what the two menu items run; at every redraw
-- of the taps, log the display filter and the windows' text (written whole, then renamed)
local G = FBSD_NETDUMP_GUI
local log = os.getenv("FBSD_NETDUMP_HOOK_LOG")
local windows
local draws, resets, frames = 0, 0, 0
local tap = Listener.new("frame", "fbsd_netdump")
function tap.reset() resets = resets + 1; frames = 0 end
function tap.packet() frames = frames + 1 end
function tap.draw()
    draws = draws + 1
    local ok, text = pcall(function()
        if windows == nil then
            windows = { stats = G.menus["Statistics/FreeBSD netdump"](),
                        dumps = G.menus["Tools/FreeBSD netdump/Dumps..."]() }
        end
        return string.format("draw %d resets %d frames %d\nfilter %s\n=== stats\n%s\n=== dumps\n%s",
            draws, resets, frames, tostring(get_filter()), windows.stats:get_text(), windows.dumps:get_text())
    end)
    local f = io.open(log .. ".tmp", "w")
    f:write(ok and text or ("ERROR " .. tostring(text) .. "\n"))
    f:close()
    os.rename(log .. ".tmp", log)
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


def hook_state(log: Path) -> dict | None:
    """The hook's last log: draw/resets/frames counts, the filter, both windows' text."""
    if not log.exists():
        return None
    text = log.read_text()
    assert not text.startswith("ERROR"), "the hook failed: " + text
    head, rest = text.split("\n=== stats\n", 1)
    stats, dumps = rest.split("\n=== dumps\n", 1)
    counts, filt = head.split("\n", 1)
    words = counts.split()
    state = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    return dict(state, filter=filt[len("filter "):], stats=stats, dumps=dumps)


def press(display: Display, win: str, tabs: int) -> None:
    """The Dumps window's button ``tabs`` Tab presses after its text (2 export, 3 filter, 4 colour)."""
    display.run("xdotool", "windowraise", win)
    display.click(win, 0.5, 0.3)  # focus the text
    display.run("xdotool", "key", *["Tab"] * tabs, "space")


def answer(display: Display, win: str, tabs: int, title: str, text: str, done, what: str,
           attempts: int = 3) -> None:
    """Press a button that asks for one value, type it, confirm; again if a key was lost."""
    for _ in range(attempts):
        if not display.windows(title):
            press(display, win, tabs)
        try:
            dialog = wait_for(f"the {title!r} dialog", lambda: display.windows(title), 20)[-1]
        except AssertionError:
            continue
        time.sleep(1)
        display.click(dialog, 0.5, 0.25)  # the field
        display.run("xdotool", "key", "ctrl+a", "BackSpace")
        display.run("xdotool", "type", "--delay", "10", text)
        display.run("xdotool", "key", "Return")
        try:
            wait_for(what, done, 30)
            return
        except AssertionError:
            continue
    raise AssertionError(f"no {what} after {attempts} attempts")


def error_windows(display: Display) -> list[str]:
    names = [display.run("xdotool", "getwindowname", w).strip() for w in display.windows(".")]
    return [n for n in names if "error" in n.lower() or n.lower().startswith("lua")]


def no_error_window(display: Display) -> bool:
    """True while no error window is up (a Lua error fails the test at once, not at a timeout)."""
    errors = error_windows(display)
    assert not errors, f"error window: {errors}"
    return True


def stats_of_tshark(tmp: Path) -> str:
    proc = subprocess.run(["tshark", "-n", "-r", str(SAMPLE), "-X", f"lua_script:{LUA}", "-q",
                           "-z", "fbsd_netdump,stats"], capture_output=True, text=True,
                          env=tshark_env(tmp), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_menus_and_dumps_window(gui_tools, tmp_path):
    # A Wireshark start under Xvfb now and then never draws its windows in time on a loaded
    # machine; a second, fresh start tells that apart from a real failure.
    try:
        _gui_once(tmp_path / "first")
    except AssertionError as exc:
        if "timed out" not in str(exc):
            raise
        _gui_once(tmp_path / "second")


def _gui_once(tmp_path):
    tmp_path.mkdir()
    hook = tmp_path / "hook.lua"
    hook.write_text(HOOK)
    out, log = tmp_path / "export", tmp_path / "hook.log"
    env = dict(tshark_env(tmp_path), FBSD_NETDUMP_HOOK_LOG=str(log))
    expected_stats = stats_of_tshark(tmp_path)
    display = Display()
    env["DISPLAY"] = display.name
    stderr = open(tmp_path / "wireshark.stderr", "w")
    ws = subprocess.Popen(["wireshark", "-r", str(SAMPLE), "-X", f"lua_script:{LUA}",
                           "-X", f"lua_script:{hook}"], env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                          cwd=tmp_path)  # a folder typed with a key lost stays inside tmp_path
    try:
        screen = tmp_path / "screen.xwd"
        loaded = wait_for("the hook", lambda: no_error_window(display) and hook_state(log), 90)
        # Statistics > FreeBSD netdump: the stats table in a window
        assert loaded["stats"].strip() == expected_stats
        assert loaded["dumps"].startswith("Dump 1: client 10.0.0.21, path crash/web1, host web1\n")
        (stats,) = wait_for("the statistics window", lambda: display.windows("FreeBSD netdump: statistics"), 60)
        (win,) = wait_for("the Dumps window", lambda: display.windows("FreeBSD netdump: dumps"), 60)
        display.run("xdotool", "windowmove", stats, "700", "0")  # off the Dumps window
        time.sleep(2)  # a loaded machine draws slowly
        answer(display, win, 2, "Export dumps", str(out), lambda: exported(out), "exported info file")
        # "Colour problems": temporary colour slots, no dialog
        press(display, win, 4)
        # "Filter this dump", dump 1: the filter is applied, so every packet is retapped and
        # the taps redrawn with it in place (a filter only typed in would draw nothing)
        def applied():
            state = hook_state(log)
            return state["filter"] == "fbsd_netdump.session == 1" and state["resets"] > before["resets"]
        before = hook_state(log)
        answer(display, win, 3, "Filter this dump", "1", applied, "retap with the filter applied")
        filtered = hook_state(log)
        assert filtered["frames"] == loaded["frames"]  # (every packet of the sample is dump 1's)
        assert filtered["dumps"].endswith(
            "colouring: slot 1 fbsd_netdump.analysis.flags, slot 2 the other netdump frames\n"
            "filter: fbsd_netdump.session == 1\n")
        display.screenshot(screen)
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
