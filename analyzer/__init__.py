__version__ = "0.1.0"

import os as _os

from analyzer import speedups as _speedups

# NETDUMP_ANALYZER_PURE=1: run the .py files even where they are compiled (speedups.py)
_speedups.install(pure=_os.environ.get("NETDUMP_ANALYZER_PURE") == "1")
