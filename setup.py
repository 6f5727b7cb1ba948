"""Build of the one extension, sockdiag._fast (metadata lives in pyproject.toml).

SOCKDIAG_DEBUG=1 builds with line tracing (for coverage and profilers), an
annotated HTML listing, no optimisation and the SOCKDIAG_DEBUG define.
"""

import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("SOCKDIAG_DEBUG", "") not in ("", "0")

macros = [("SOCKDIAG_DEBUG", "1"), ("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []
extra_compile_args = ["-O0", "-g3"] if DEBUG else ["-O2"]

extension = Extension(
    "sockdiag._fast",
    ["sockdiag/_fast.pyx"],
    define_macros=macros,
    extra_compile_args=extra_compile_args + ["-Wno-unused-function"],
    # Cython tracks the .pxi/.pxd it reads, not the C headers they name.
    depends=glob.glob("sockdiag/includes/*.h"),
)

setup(
    ext_modules=cythonize(
        [extension],
        annotate=DEBUG,
        compiler_directives={"linetrace": DEBUG, "embedsignature": True},
    )
)
