"""Load on a devnet of real node processes: ``bizra-node bench load`` (see its --help
and node/loadgen.py). Run: ``python bench/load.py [options]``."""

from __future__ import annotations

import sys

from node.cli import main

if __name__ == "__main__":
    main(["bench", "load", *sys.argv[1:]])
