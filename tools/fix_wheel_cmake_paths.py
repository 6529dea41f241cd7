"""Rewrite the include paths that the ROS 2 PyPI wheels bake into their CMake exports.

The wheels were built in a manylinux container and their exported CMake files name
``/opt/python/cp311-cp311/include/python3.11`` and that prefix's numpy include directory,
neither of which exists here; rosidl's Python generator then fails to configure. This
replaces them with this interpreter's include directory and numpy's. Idempotent.

Usage: python tools/fix_wheel_cmake_paths.py VENV_DIR
"""
import pathlib
import re
import sys
import sysconfig

import numpy

BUILD_PREFIX = "/opt/python/cp311-cp311"


def fix(venv: pathlib.Path) -> int:
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    numpy_pattern = re.compile(re.escape(BUILD_PREFIX) + r"/lib/python3\.11/site-packages/numpy/_core/include")
    python_pattern = re.compile(re.escape(BUILD_PREFIX) + r"/include/python3\.11")
    changed = 0
    for path in (venv / "share").rglob("*.cmake"):
        text = path.read_text()
        if BUILD_PREFIX not in text:
            continue
        new = numpy_pattern.sub(numpy_include, text)
        new = python_pattern.sub(python_include, new)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    n = fix(pathlib.Path(sys.argv[1]))
    print(f"fix_wheel_cmake_paths: rewrote {n} file(s)")
