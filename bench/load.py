"""Load on a devnet of real node processes: ``bizra-node bench load`` (see its --help
and src/node/loadgen.py). Run: ``python bench/load.py [options]``."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path (see bench/p2p.py).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from node.cli import main

if __name__ == "__main__":
    main(["bench", "load", *sys.argv[1:]])
