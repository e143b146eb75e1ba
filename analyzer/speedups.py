"""Which modules are compiled, and the switch that refuses the compiled ones.

The hot path (capture walkers and decoders, protocol core, the recovery's per-message
path) is plain Python. At install time Cython compiles these same files, unchanged, into
extension modules beside them (``setup.py``); Python prefers an extension module to a
``.py`` of the same name. Nothing else differs: where no compiler or Cython is there, the
``.py`` files are the program. ``NETDUMP_ANALYZER_PURE=1`` makes ``analyzer/__init__.py``
call :func:`install` so that every module is loaded from its ``.py`` even when built. A
``.py`` file newer than its extension (edited since the build) is always loaded itself:
a stale build never hides a change to the source.

This module imports nothing from the package: ``setup.py`` reads :data:`MODULES` from it.
"""
from __future__ import annotations

import os
import sys
from importlib.machinery import (
    BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES, FileFinder, SourceFileLoader,
    SourcelessFileLoader,
)

MODULES = (
    "analyzer.capture.links",
    "analyzer.capture.frames",
    "analyzer.capture.decode",
    "analyzer.capture.walker",
    "analyzer.capture.pcap",
    "analyzer.capture.pcapng",
    "analyzer.protocol.session",
    "analyzer.protocol.notices",
    "analyzer.protocol.table",
    "analyzer.protocol.core",
    "analyzer.recovery.dump",
    "analyzer.intervals",
)
"""The modules compiled at install time (each a ``.py`` file that also runs as it is)."""

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def source_path(name: str) -> str:
    """The ``.py`` file of one of :data:`MODULES`."""
    return os.path.join(os.path.dirname(PACKAGE_DIR), *name.split(".")) + ".py"


def built() -> list[str]:
    """The modules of :data:`MODULES` that have a compiled extension beside their source."""
    out = []
    for name in MODULES:
        stem = source_path(name)[:-3]
        if any(os.path.exists(stem + suffix) for suffix in EXTENSION_SUFFIXES):
            out.append(name)
    return out


def loaded_compiled() -> list[str]:
    """The modules of :data:`MODULES` this process runs compiled (imported from an extension)."""
    return [name for name in MODULES if name in sys.modules
            and str(getattr(sys.modules[name], "__file__", "")).endswith(tuple(EXTENSION_SUFFIXES))]


STALE_AFTER = 60.0  # seconds: an installer writes a module's files within this of each other


def newer_than_build(src: str, ext: str) -> bool:
    """``src`` was changed after ``ext`` was built from it: more than STALE_AFTER seconds
    later (pip writes the files of a wheel one after the other, the .py after the .so)."""
    try:
        return os.stat(src).st_mtime > os.stat(ext).st_mtime + STALE_AFTER
    except OSError:
        return False


def _stale(fullname: str) -> bool:
    """The module's ``.py`` was changed after its extension was built."""
    src = source_path(fullname)
    for suffix in EXTENSION_SUFFIXES:
        if os.path.exists(src[:-3] + suffix):
            return newer_than_build(src, src[:-3] + suffix)
    return False


class PureFinder:
    """An import hook finding the package's modules as source (or bytecode) only: all of
    them, or (``stale_only``) those whose source is newer than their extension."""

    def __init__(self, stale_only: bool = False):
        self.stale_only = stale_only

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname not in MODULES or not path or (self.stale_only and not _stale(fullname)):
            return None
        loaders = [(SourceFileLoader, SOURCE_SUFFIXES), (SourcelessFileLoader, BYTECODE_SUFFIXES)]
        for entry in path:
            spec = FileFinder(entry, *loaders).find_spec(fullname, target)
            if spec is not None:
                return spec
        return None


def install(pure: bool) -> None:
    """From now on load every module of :data:`MODULES` from its ``.py`` file (``pure``),
    or those whose build is stale."""
    if not any(isinstance(f, PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, PureFinder(stale_only=not pure))
