"""The modules that the build compiles with mypyc, and whether the compiled ones are loaded.

``COMPILED_MODULES`` is the one list of them: ``setup.py`` reads it (by parsing this file)
to choose what mypyc compiles, and ``bizra-node version`` reports on the same list. Each
is a pure, I/O-free module whose behaviour is identical compiled or interpreted; an
install made with ``BIZRA_NO_MYPYC=1`` loads all of them as plain Python.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES

COMPILED_MODULES: tuple[str, ...] = ("chain.merkle", "chain.poi", "chain.statetree", "chain.fastcodec")


def module_file(name: str) -> str | None:
    """Import module ``name`` and return the file it was loaded from (``None`` if none)."""
    module = importlib.import_module(name)
    path = getattr(module, "__file__", None)
    return path if isinstance(path, str) else None


def is_extension_file(path: str | None) -> bool:
    """Whether ``path`` names a compiled extension module for this interpreter."""
    return path is not None and path.endswith(tuple(EXTENSION_SUFFIXES))


def compiled_status() -> dict[str, bool]:
    """Map each of :data:`COMPILED_MODULES` to ``True`` when its compiled build is loaded.

    Importing the modules is a side effect; a module that fails to import raises.
    """
    return {name: is_extension_file(module_file(name)) for name in COMPILED_MODULES}
