"""Everything else is in pyproject.toml; this only declares the optional compiled helpers
(analyzer/_speedups.c: the capture walkers' inner loops, a named-tuple constructor). Without a
C compiler the build skips them and pure Python does the work."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("analyzer._speedups", ["analyzer/_speedups.c"],
                             optional=True, extra_compile_args=["-O2"])])
