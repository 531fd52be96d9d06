"""Compiles the pure hot modules with mypyc, unless ``BIZRA_NO_MYPYC=1``.

An editable install (``pip install -e``) is never compiled: its extensions would be
written next to the sources and shadow every later edit of them.

Everything else about the distribution is in ``pyproject.toml``. The modules to compile
are listed once, in ``chain/compiled.py``: this file reads that list without
importing the package, and ``bizra-node version`` reports on the same list.
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
LIST_FILE = HERE / "chain" / "compiled.py"


def compiled_modules() -> list[str]:
    """The ``COMPILED_MODULES`` tuple of ``chain/compiled.py``."""
    tree = ast.parse(LIST_FILE.read_text(encoding="utf-8"), filename=str(LIST_FILE))
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "COMPILED_MODULES" for t in targets):
                return [str(name) for name in ast.literal_eval(stmt.value)]
    raise SystemExit(f"{LIST_FILE}: no COMPILED_MODULES")


def ext_modules() -> list[Extension]:
    # The build directory is made afresh: extensions left in it by an earlier build (of a
    # module since dropped from the list, say) would otherwise go into this wheel.
    shutil.rmtree(HERE / "build", ignore_errors=True)
    if os.environ.get("BIZRA_NO_MYPYC") == "1" or "editable_wheel" in sys.argv:
        return []
    from mypyc.build import mypycify

    paths = [f"{name.replace('.', '/')}.py" for name in compiled_modules()]
    return mypycify(paths, opt_level="3")


setup(ext_modules=ext_modules())
