"""From recovered dump files to something kgdb can open: decrypt, decompress, inspect.

Every module here reads files the recovery wrote (or that a person hands us) and never the
capture; each derived file is written beside its source with a missing-bytes map
(:mod:`analyzer.debug.files`), so a zero-filled hole is never mistaken for data.
"""
