"""State-root update cost against the size of the state (§5).

Builds a state tree of ``--small`` keys (10,000) and one of ``--large`` keys
(1,000,000), then times a batch of ``--batch`` changed values (10,000) in each: every
key of the small tree, random keys of the large one. The cost of a block's update
should grow with the keys it changes, not with the keys in the state
(docs/state-root.md, "Cost"); the target
here is a large/small ratio of at most 1.5. Beside each figure: the SHA-256 floor.

Run: ``python bench/state_root.py`` (``--help`` for sizes) with the package installed;
it times whichever build is loaded (compiled by ``pip install .``, interpreted with
``BIZRA_NO_MYPYC=1``) and says which. Its last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from hashlib import sha256

import chain.statetree
from chain.sizes import ADDRESS_LEN
from chain.statetree import StateTree

RATIO_TARGET = 1.5
KEY_LEN = 1 + ADDRESS_LEN  # a namespace byte and an address, like the ledger's keys


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


def hash_floor(rng: random.Random, batch: int, value_len: int, repeat: int) -> float:
    """Seconds for the hashing no state root can avoid per changed key: the key's path,
    its value's hash and its leaf (three SHA-256 calls), for ``batch`` keys."""
    items = [(rng.randbytes(KEY_LEN), rng.randbytes(value_len)) for _ in range(batch)]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for key, value in items:
            sha256(b"\x00" + sha256(key).digest() + sha256(value).digest()).digest()
        best = min(best, time.perf_counter() - start)
    return best


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

    floor = hash_floor(rng, args.batch, args.value_len, args.repeat)
    print(f"floor: hashing {args.batch:,} changed keys (path, value, leaf): {floor * 1000:.1f} ms")
    figures: dict[str, object] = {"compiled": compiled, "batch": args.batch,
                                  "floor_ms": round(floor * 1000, 2)}
    medians = {}
    for label, size in (("small", args.small), ("large", args.large)):
        tree, keys, build_s = build(rng, size, args.value_len)
        times = time_batches(rng, tree, keys, args.batch, args.repeat, args.value_len)
        median = statistics.median(times)
        medians[label] = median
        per_1k = median * 1000 / (args.batch / 1000)
        print(f"{size:>9,} keys: build {build_s:7.2f} s; update of {args.batch:,} keys: "
              f"median {median * 1000:7.1f} ms (min {min(times) * 1000:.1f}), "
              f"{per_1k:.2f} ms per 1k keys, x{median / floor:.1f} the floor")
        figures[f"{label}_keys"] = size
        figures[f"{label}_build_s"] = round(build_s, 3)
        figures[f"{label}_update_ms"] = round(median * 1000, 2)
        figures[f"{label}_ms_per_1k_keys"] = round(per_1k, 3)
        del tree, keys
    ratio = medians["large"] / medians["small"]
    verdict = "ok" if ratio <= RATIO_TARGET else "ABOVE TARGET"
    print(f"update ratio large/small: {ratio:.2f} (target: <= {RATIO_TARGET}) {verdict}")
    figures["ratio"] = round(ratio, 3)
    figures["ratio_target"] = RATIO_TARGET
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
