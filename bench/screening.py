"""What gossip validation's signature checks cost the event loop.

A burst of ``--votes`` gossiped votes arrives at once (as py-libp2p hands them to the
node's topic validator, each in its own task). Their signatures are checked two ways,
each measured on the event loop's thread (``time.thread_time``) and on the wall clock:

- tasks only: each task answers without any check (the cost of a task per message,
  which py-libp2p's pubsub pays whatever the check; the other two include it);
- inline: each task verifies its vote on the loop (what gossip validation did before);
- batched: each task asks the node's :class:`node.batch_verifier.BatchVerifier`, which
  checks the waiting votes as batches on worker threads (the node's path).

Beside them, the floor: one Ed25519 check (libsodium), so the loop's cost per vote is
shown as a multiple of it. Half of the votes are forged, to show a flood costs the same.

Run: ``python bench/screening.py`` (``--votes N``, ``--rounds R``). The last line is one
JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import trio

from chain.crypto import PrivateKey, SignedItem, verify
from node.batch_verifier import BatchVerifier


def votes(count: int) -> list[SignedItem]:
    keys = [PrivateKey.generate() for _ in range(4)]
    items = []
    for i in range(count):
        key = keys[i % len(keys)]
        message = b"bizra/vote/v1 bench vote %d" % i
        signature = key.sign(message) if i % 2 == 0 else bytes(64)
        items.append((key.public_key, message, signature))
    return items


def floor_us(items: Sequence[SignedItem]) -> float:
    start = time.perf_counter()
    for item in items:
        verify(*item)
    return (time.perf_counter() - start) / len(items) * 1e6


Check = Callable[[SignedItem], Awaitable[bool]]


async def burst(items: Sequence[SignedItem], check: Check) -> tuple[float, float]:
    """Loop-thread CPU µs per vote and wall ms for the burst."""
    verdicts: list[bool] = []

    async def one(item: SignedItem) -> None:
        verdicts.append(await check(item))

    cpu, wall = time.thread_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(one, item)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    assert verdicts.count(True) == (len(items) + 1) // 2, "a verdict is wrong"
    return cpu / len(items) * 1e6, wall * 1e3


async def measure(items: Sequence[SignedItem], rounds: int) -> dict[str, float]:
    async def tasks(item: SignedItem) -> bool:
        await trio.lowlevel.checkpoint()
        return item[2] != bytes(64)

    async def inline(item: SignedItem) -> bool:
        return verify(*item)

    verifier = BatchVerifier()

    async def batched(item: SignedItem) -> bool:
        verdicts = await verifier.verify([item])
        assert verdicts is not None, "the verifier was busy"
        return verdicts[0]

    results: dict[str, list[tuple[float, float]]] = {"tasks": [], "inline": [], "batched": []}
    async with trio.open_nursery() as nursery:
        await nursery.start(verifier.run)
        for _ in range(rounds):
            results["tasks"].append(await burst(items, tasks))
            results["inline"].append(await burst(items, inline))
            results["batched"].append(await burst(items, batched))
        nursery.cancel_scope.cancel()
    figures = {}
    for way, runs in results.items():
        figures[f"{way}_loop_us_per_vote"] = round(statistics.median(c for c, _ in runs), 1)
        figures[f"{way}_wall_ms"] = round(statistics.median(w for _, w in runs), 1)
    figures["batches_per_burst"] = round(verifier.batches / rounds, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=2_000, help="votes in a burst (default 2,000)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="bursts of each way; medians are shown (default 5)")
    args = parser.parse_args()
    items = votes(args.votes)
    floor = floor_us(items)
    figures = trio.run(measure, items, args.rounds)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"floor: one Ed25519 check {floor:.1f} µs")
    base = figures["tasks_loop_us_per_vote"]
    for way in ("tasks", "inline", "batched"):
        loop = figures[f"{way}_loop_us_per_vote"]
        wall = figures[f"{way}_wall_ms"]
        print(f"{way:8} loop {loop:7.1f} µs/vote, {loop - base:6.1f} beyond the task "
              f"({(loop - base) / floor:4.2f}× the floor)   burst of {args.votes}: {wall:.1f} ms")
    print(f"batched: {figures['batches_per_burst']} batches a burst")
    beyond = {way: figures[f"{way}_loop_us_per_vote"] - base for way in ("inline", "batched")}
    print(json.dumps({"votes": args.votes, "floor_us": round(floor, 1), **figures,
                      "check_loop_ratio": round(beyond["batched"] / beyond["inline"], 3)}))


if __name__ == "__main__":
    main()
