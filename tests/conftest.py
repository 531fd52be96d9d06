"""What every test runs under: the installed package, never the checkout's sources, and
Hypothesis's profiles.

``python -m pytest`` puts the working directory first on ``sys.path``; run from the
repository's root, the uncompiled sources there would shadow the installed package and
its compiled modules. So the root is taken off ``sys.path`` before any test imports the
project, unless the install is an editable one of this very checkout (which loads these
sources anyway) or there is no install at all.

Hypothesis: ``ci`` is loaded when the CI environment variable is set: a bounded number of
examples and no per-example deadline (CI machines are shared, so timings vary). Elsewhere
the ``default`` profile applies. ``HYPOTHESIS_PROFILE`` picks one explicitly, including
``soak`` for long local runs.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("chain", "consensus", "storage", "p2p", "node")


def _runs_the_checkout() -> bool:
    """Whether the sources in ``ROOT`` are what ``import chain`` should load: the
    installed distribution is an editable install, or there is none."""
    try:
        direct_url = metadata.distribution("bizra-node").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return True
    return bool(direct_url and json.loads(direct_url).get("dir_info", {}).get("editable"))


def _on_root(entry: str) -> bool:
    return Path(entry or ".").resolve() == ROOT


if not _runs_the_checkout():
    sys.path[:] = [entry for entry in sys.path if not _on_root(entry)]
    shadowed = sorted(
        name for name in PACKAGES
        if name in sys.modules and Path(sys.modules[name].__file__ or "").resolve().is_relative_to(ROOT)
    )
    if shadowed:
        raise pytest.UsageError(f"{', '.join(shadowed)} were imported from the checkout ({ROOT}), "
                                "not from the installed package")

settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.register_profile("soak", max_examples=20_000, deadline=None)
ON_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if ON_CI else "default"))
