"""``bench/screening.py`` runs on the installed node and ends with its JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "screening.py"


def test_the_screening_bench_runs_and_reports_every_figure() -> None:
    out = subprocess.run([sys.executable, "-P", str(BENCH), "--votes", "40", "--rounds", "1"],
                         capture_output=True, text=True, check=True, timeout=120)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["votes"] == 40 and figures["floor_us"] > 0
    for way in ("tasks", "inline", "batched"):
        assert figures[f"{way}_loop_us_per_vote"] > 0 and figures[f"{way}_wall_ms"] > 0
    assert figures["batches_per_burst"] >= 1
