"""Everything else is in pyproject.toml; this only declares the optional compiled walker
loops (analyzer/capture/_speedups.c). Without a C compiler the build skips them and the
pure-Python walkers do the work."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("analyzer.capture._speedups", ["analyzer/capture/_speedups.c"],
                             optional=True, extra_compile_args=["-O2"])])
