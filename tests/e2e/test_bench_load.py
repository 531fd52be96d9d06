"""``bizra-node bench load`` on a devnet of real node processes: the figures it prints
are those of txs really committed, and it leaves no devnet behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodekit import node_cmd

pytestmark = pytest.mark.slow


def test_the_load_bench_reports_every_tx_committed_and_removes_its_devnet(tmp_path: Path) -> None:
    done = subprocess.run(
        node_cmd("bench", "load", "--validators", "1", "--rate", "300", "--seconds", "3",
                 "--accounts", "30", "--clients", "3", "--block-time-ms", "1000"),
        env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    sys.stdout.write(done.stdout)
    assert figures["sent"] == 900
    assert figures["accepted"] == figures["committed"] == 900
    assert figures["lost"] == 0
    assert figures["committed_tx_per_s"] > 0
    assert list(tmp_path.iterdir()) == []
