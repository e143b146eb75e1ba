"""Everything else is in pyproject.toml; this only declares the optional compiled modules.

Cython compiles the hot path's own ``.py`` files (``analyzer.speedups.MODULES``) into
extension modules, in Python semantics: nothing in them is written for Cython. The build
is optional: without Cython, a C compiler or the Python headers, or when a module fails to
compile, the ``.py`` files run as they are, with the same results.
"""
import os
import sys

from setuptools import Extension, setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from analyzer.speedups import MODULES  # noqa: E402  (a module that imports nothing else)


def extensions() -> list:
    if os.environ.get("NETDUMP_ANALYZER_PURE") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("netdump-analyzer: Cython not found; the modules run uncompiled", file=sys.stderr)
        return []
    exts = [Extension(name, [name.replace(".", "/") + ".py"], optional=True) for name in MODULES]
    try:
        return cythonize(exts, build_dir="build/cython", quiet=True,
                         compiler_directives={"language_level": 3, "binding": True,
                                              # Python semantics: annotations are not C types
                                              "annotation_typing": False})
    except Exception as exc:  # a module Cython cannot translate: run them all uncompiled
        print(f"netdump-analyzer: Cython failed ({exc}); the modules run uncompiled",
              file=sys.stderr)
        return []


setup(ext_modules=extensions())
