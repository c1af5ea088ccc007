"""Only the extension module list; all metadata is in pyproject.toml.

The extension is the Cython wrapper `edgegru._runtime` compiled together with the C runtime's
sources from ext/ (which build on their own too: see ext/Makefile)."""

import sys
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

EXT = Path("ext")
c_sources = sorted(str(p) for p in EXT.glob("src/**/*.c"))

extension = Extension(
    "edgegru._runtime",
    # _egru_tpool.c: the pthread workers of load(..., threads=N), outside ext/ (the C runtime
    # links no threading library; it takes them through egru_model_use_workers).
    sources=["src/edgegru/_runtime.pyx", "src/edgegru/_egru_tpool.c", *c_sources],
    include_dirs=[str(EXT / "include"), str(EXT / "src"), "src/edgegru", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=["-O3", "-ffp-contract=off"],  # see ext/Makefile
    libraries=[] if sys.platform == "win32" else ["m", "pthread"],
)

setup(ext_modules=cythonize([extension], compiler_directives={"language_level": "3"}))
