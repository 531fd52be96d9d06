"""State-root update cost against the size of the state (§5) and its floor.

Builds a state tree of ``--small`` keys (10,000) and one of ``--large`` keys
(1,000,000), then times a batch of ``--batch`` changed values (10,000) in each: every
key of the small tree, random keys of the large one. §5 wants the cost of a block's
update to grow with the keys it changes, not with the keys in the state; the floor
here is a large/small ratio of at most 1.5.

Run: ``PYTHONPATH=src python bench/state_root.py`` (``--help`` for sizes). To time the
mypyc build, compile a copy of the package outside the tree and put it first on the path:
copy ``src/chain/{__init__,errors,merkle,statetree}.py`` to ``$TMP/chain/``, run
``python -m mypyc chain/merkle.py chain/statetree.py`` in ``$TMP``, then run this script
with ``PYTHONPATH=$TMP``. The output says which build ran; its last line is one JSON
object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time

import chain.statetree
from chain.statetree import StateTree

RATIO_FLOOR = 1.5
KEY_LEN = 21  # a namespace byte and a 20-byte address, like the ledger's keys


def build(rng: random.Random, size: int, value_len: int) -> tuple[StateTree, list[bytes], float]:
    """A tree of ``size`` random keys and the seconds its bulk build took."""
    keys = [rng.randbytes(KEY_LEN) for _ in range(size)]
    changes: dict[bytes, bytes | None] = {k: rng.randbytes(value_len) for k in keys}
    tree = StateTree()
    gc.collect()
    start = time.perf_counter()
    tree.update(changes)
    return tree, keys, time.perf_counter() - start


def time_batches(rng: random.Random, tree: StateTree, keys: list[bytes], batch: int,
                 repeat: int, value_len: int) -> list[float]:
    """Seconds per update of ``batch`` keys drawn from ``keys``, ``repeat`` times."""
    times = []
    for _ in range(repeat):
        chosen = keys if batch == len(keys) else rng.sample(keys, batch)
        changes: dict[bytes, bytes | None] = {k: rng.randbytes(value_len) for k in chosen}
        gc.collect()
        start = time.perf_counter()
        tree.update(changes)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000, help="keys in the small tree")
    parser.add_argument("--large", type=int, default=1_000_000, help="keys in the large tree")
    parser.add_argument("--batch", type=int, default=10_000, help="keys changed per update")
    parser.add_argument("--repeat", type=int, default=7, help="timed updates per tree")
    parser.add_argument("--value-len", type=int, default=64, help="bytes per value")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not 0 < args.batch <= min(args.small, args.large):
        parser.error("--batch must be positive and at most the size of each tree")

    compiled = not chain.statetree.__file__.endswith(".py")
    rng = random.Random(args.seed)
    print(f"python {sys.version.split()[0]}, chain.statetree "
          f"{'compiled (mypyc)' if compiled else 'interpreted'}: {chain.statetree.__file__}")

    figures: dict[str, object] = {"compiled": compiled, "batch": args.batch}
    medians = {}
    for label, size in (("small", args.small), ("large", args.large)):
        tree, keys, build_s = build(rng, size, args.value_len)
        times = time_batches(rng, tree, keys, args.batch, args.repeat, args.value_len)
        median = statistics.median(times)
        medians[label] = median
        per_1k = median * 1000 / (args.batch / 1000)
        print(f"{size:>9,} keys: build {build_s:7.2f} s; update of {args.batch:,} keys: "
              f"median {median * 1000:7.1f} ms (min {min(times) * 1000:.1f}), "
              f"{per_1k:.2f} ms per 1k keys")
        figures[f"{label}_keys"] = size
        figures[f"{label}_build_s"] = round(build_s, 3)
        figures[f"{label}_update_ms"] = round(median * 1000, 2)
        figures[f"{label}_ms_per_1k_keys"] = round(per_1k, 3)
        del tree, keys
    ratio = medians["large"] / medians["small"]
    verdict = "ok" if ratio <= RATIO_FLOOR else "ABOVE FLOOR"
    print(f"update ratio large/small: {ratio:.2f} (floor: <= {RATIO_FLOOR}) {verdict}")
    figures["ratio"] = round(ratio, 3)
    figures["ratio_floor"] = RATIO_FLOOR
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
