"""Hypothesis profiles.

``ci`` is loaded when the CI environment variable is set: a bounded number of examples
and no per-example deadline (CI machines are shared, so timings vary). Elsewhere the
``default`` profile applies. ``HYPOTHESIS_PROFILE`` picks one explicitly, including
``soak`` for long local runs.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.register_profile("soak", max_examples=20_000, deadline=None)
ON_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if ON_CI else "default"))
