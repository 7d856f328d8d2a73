"""Build the Cython core (engine/core/*.pyx).

Environment switches:
  VENUE_ANNOTATE=1   write cython -a HTML next to each .pyx
  VENUE_TRACE=1      line tracing (for coverage / line profilers)
  VENUE_SANITIZE=1   build with AddressSanitizer + UndefinedBehaviorSanitizer
  VENUE_DEBUG=1      -O0 -g (no optimisation, debug symbols; Cython checks unchanged)
"""

import os
from glob import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


compile_args = ["-O3", "-fno-strict-aliasing"]
link_args: list[str] = []
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
directives = {
    "language_level": 3,
    "embedsignature": True,
    "cdivision": True,
    "warn.undeclared": False,
}
if flag("VENUE_DEBUG"):
    compile_args = ["-O0", "-g"]
if flag("VENUE_SANITIZE"):
    compile_args += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    link_args += ["-fsanitize=address,undefined"]
if flag("VENUE_TRACE"):
    directives.update(linetrace=True, binding=True)
    macros.append(("CYTHON_TRACE_NOGIL", "1"))

extensions = [
    Extension(
        path[:-4].replace(os.sep, "."),
        [path],
        include_dirs=[numpy.get_include()],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for path in sorted(glob(os.path.join("engine", "core", "*.pyx")))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=flag("VENUE_ANNOTATE"),
    ),
)
