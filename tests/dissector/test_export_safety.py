"""The export never writes outside its folder and never overwrites, symbolic links included.

Lua has no lstat and no O_EXCL; ``dissectors/fbsd_netdump/safepath.lua`` tells a real
folder from a link with rename(2). Its rules are pinned first, through tshark's own Lua;
then hostile layouts are planted in two output folders, one exported into by the dissector
and one extracted into by the analyzer: both write the same files in the same places, and
the folder outside, which every planted link points at, is left as it was.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from analyzer.wire import build_kdk
from tests.dissector.test_dissector import (  # noqa: F401  (tshark is a fixture)
    CLIENT, EKCD_KEY, FINISHED, KDH, VMCORE, Capture, assert_no_lua_errors, data, herald_and_ack,
    kdh, tshark, tshark_env,
)
from tests.dissector.test_export import export, extract

REPO = Path(__file__).resolve().parents[2]
SAFEPATH = REPO / "dissectors" / "fbsd_netdump" / "safepath.lua"
H = CLIENT

PROBE_SCRIPT = """
local safe = dofile(arg_safepath)
local d = arg_top .. "/d"
for _, n in ipairs({ "real", "to_outside", "to_sibling", "dangling", "file", "to_file", "none" }) do
    print(string.format("%s taken=%s real_dir=%s inside=%s", n, tostring(safe.taken(d .. "/" .. n)),
        tostring(safe.real_dir(d, n)), tostring(safe.taken(d .. "/" .. n) and safe.inside(d, n))))
end
print("create dangling " .. tostring(safe.create(d .. "/dangling") ~= nil))
print("create to_file " .. tostring(safe.create(d .. "/to_file") ~= nil))
local f = safe.create(d .. "/fresh")
f:write("x")
f:close()
print("rename onto dangling " .. tostring(safe.rename(d .. "/fresh", d .. "/dangling")))
print("rename to a free name " .. tostring(safe.rename(d .. "/fresh", d .. "/moved")))
print("dir_in over to_outside " .. tostring(safe.dir_in(d, "to_outside")))
print("dir_in new " .. tostring(safe.dir_in(d, "new") == d .. "/new"))
"""


def test_safepath_rules(tshark, tmp_path):
    top, outside = tmp_path / "top", tmp_path / "outside"
    (top / "d" / "real").mkdir(parents=True)
    outside.mkdir()
    (outside / "victim").write_text("keep")
    d = top / "d"
    (d / "to_outside").symlink_to(outside)
    (d / "to_sibling").symlink_to("real")
    (d / "dangling").symlink_to(outside / "planted")
    (d / "file").write_text("f")
    (d / "to_file").symlink_to(outside / "victim")
    script = tmp_path / "probe.lua"
    script.write_text(f"arg_safepath = {str(SAFEPATH)!r}\narg_top = {str(top)!r}\n" + PROBE_SCRIPT)
    proc = subprocess.run([tshark, "-r", str(REPO / "samples" / "restart.pcap"), "-c", "1",
                           "-X", f"lua_script:{script}"], capture_output=True, text=True,
                          env=tshark_env(tmp_path), timeout=120)
    assert_no_lua_errors(proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if not ln.lstrip()[:1].isdigit()]
    assert lines == [
        "real taken=true real_dir=true inside=true",
        "to_outside taken=true real_dir=false inside=false",
        "to_sibling taken=true real_dir=false inside=true",  # a link, though it stays inside
        "dangling taken=true real_dir=false inside=false",
        "file taken=true real_dir=false inside=false",
        "to_file taken=true real_dir=false inside=false",
        "none taken=false real_dir=false inside=false",
        "create dangling false",
        "create to_file false",
        "rename onto dangling false",
        "rename to a free name true",
        "dir_in over to_outside nil",
        "dir_in new true",
    ]
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "keep"
    assert not [p for p in d.iterdir() if p.name.startswith(".fbsd_netdump-probe")]


# --------------------------------------------------------------------------------------
# Hostile layouts: export and extract agree, and nothing outside changes
# --------------------------------------------------------------------------------------

def encrypted_dump(tmp: Path) -> Path:
    """A HERALD to crash/web1, a key, data, the KDH and FINISHED: every file kind is written."""
    cap = Capture()
    herald_and_ack(cap)
    key = build_kdk(2, bytes(range(32)), b"\xab" * 256)
    cap.msg(EKCD_KEY, 2, 0, key)
    cap.ack(2)
    cap.msg(VMCORE, 3, 0, data(4096))
    cap.ack(3)
    cap.msg(KDH, 4, 0, kdh(dumpkeysize=len(key)))
    cap.ack(4)
    cap.msg(FINISHED, 5)
    cap.ack(5)
    return cap.write(tmp / "dump.pcap")


def entries(top: Path, outside: Path) -> dict[str, str]:
    """Every entry below ``top``: a file's sha256, a link's target (``OUTSIDE`` for the outside folder)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(top))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p).replace(str(outside), "OUTSIDE")
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


def link(target: str) -> Callable[[Path, Path], None]:
    """A dangling link (``planted``) or one to the outside file ``victim``, at ``target``."""
    def plant(top: Path, outside: Path, to: str = "planted") -> None:
        (top / "crash" / "web1").mkdir(parents=True)
        (top / "crash" / "web1" / target).symlink_to(outside / to)
    return plant


def link_to_victim(target: str) -> Callable[[Path, Path], None]:
    def plant(top: Path, outside: Path) -> None:
        link(target)(top, outside, "victim")
    return plant


def herald_folder_to_outside(top: Path, outside: Path) -> None:
    top.mkdir()
    (top / "crash").symlink_to(outside)


def deeper_folder_to_outside(top: Path, outside: Path) -> None:
    (top / "crash").mkdir(parents=True)
    (top / "crash" / "web1").symlink_to(outside)


def herald_folder_to_sibling(top: Path, outside: Path) -> None:
    (top / "other").mkdir(parents=True)
    (top / "crash").symlink_to("other")


def herald_folder_dangling(top: Path, outside: Path) -> None:
    top.mkdir()
    (top / "crash").symlink_to(outside / "nothing")


def herald_folder_is_a_file(top: Path, outside: Path) -> None:
    top.mkdir()
    (top / "crash").write_text("a file")


def files_already_there(top: Path, outside: Path) -> None:
    (top / "crash" / "web1").mkdir(parents=True)
    for name in (f"info.{H}.0", f"vmcore.{H}.0", f"key.{H}.1"):
        (top / "crash" / "web1" / name).write_text("an earlier dump")


NAMES = [f"info.{H}.0", f"info.{H}.0.part", f"vmcore.{H}.0", f"vmcore.{H}.0.part", f"key.{H}.0",
         f"key.{H}.0.part"]
LAYOUTS: dict[str, Callable[[Path, Path], None]] = {
    **{f"dangling link at {n}": link(n) for n in NAMES},
    **{f"link to an outside file at {n}": link_to_victim(n) for n in NAMES},
    "HERALD folder a link to an outside folder": herald_folder_to_outside,
    "HERALD subfolder a link to an outside folder": deeper_folder_to_outside,
    "HERALD folder a link to a folder inside": herald_folder_to_sibling,
    "HERALD folder a dangling link": herald_folder_dangling,
    "HERALD folder a file": herald_folder_is_a_file,
    "dump files already there": files_already_there,
}


@pytest.fixture(scope="module")
def dump_pcap(tmp_path_factory) -> Path:
    return encrypted_dump(tmp_path_factory.mktemp("safety"))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_hostile_layout_export_agrees_with_extract(tshark, tmp_path, dump_pcap, layout):
    results = {}
    for side in ("export", "extract"):
        top, outside = tmp_path / side / "out", tmp_path / side / "outside"
        outside.mkdir(parents=True)
        (outside / "victim").write_text("keep")
        LAYOUTS[layout](top, outside)
        if side == "export":
            export(tshark, dump_pcap, top, tmp_path)
        else:
            extract(dump_pcap, top)
        assert sorted(p.name for p in outside.iterdir()) == ["victim"], f"{side} wrote outside"
        assert (outside / "victim").read_text() == "keep", f"{side} overwrote a file outside"
        results[side] = entries(top, outside)
    assert results["export"] == results["extract"]
    # the dump was written in full somewhere below the output folder
    assert any(re.fullmatch(rf"(crash/web1/)?vmcore_encrypted\.{re.escape(H)}\.\d", name)
               for name in results["export"])


def test_output_folder_given_as_a_link_is_followed_as_extract_follows_it(tshark, tmp_path, dump_pcap):
    """The output folder is the user's choice: a link there is used, by both."""
    trees = {}
    for side in ("export", "extract"):
        real = tmp_path / side / "real"
        real.mkdir(parents=True)
        (tmp_path / side / "out").symlink_to(real)
        if side == "export":
            export(tshark, dump_pcap, tmp_path / side / "out", tmp_path)
        else:
            extract(dump_pcap, tmp_path / side / "out")
        trees[side] = entries(real, tmp_path)
    assert trees["export"] == trees["extract"]
    assert f"crash/web1/vmcore_encrypted.{H}.0" in trees["export"]
