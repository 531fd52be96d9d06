"""Snapshots taken as blocks are committed: every interval, of the state of their height,
one at a time, and one at start for a node that has none recent."""

from __future__ import annotations

from pathlib import Path

import trio

from chain.snapshot import Manifest, manifest_root
from node.snapshotter import Snapshotter
from storage.memory import MemoryKV
from storage.snapshots import SnapshotStore
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH, commit_next_outcome, transfers


async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.01)


async def test_snapshots_every_interval_of_their_heights_state(tmp_path: Path) -> None:
    chain = LocalChain(users=10)
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    for _ in range(3):
        commit_next_outcome(chain, store, transfers(chain, 4))
    snapshots = SnapshotStore(tmp_path, keep=2)
    snapshotter = Snapshotter(store, snapshots, 5, chain.genesis.initial_height)
    async with trio.open_nursery() as nursery:
        await nursery.start(snapshotter.run)
        await until(lambda: [d.height for d in snapshots.descriptors()] == [3], "the start's snapshot")
        for _ in range(7):
            block, outcome = commit_next_outcome(chain, store, transfers(chain, 4))
            snapshotter.on_commit(block, outcome)
            if block.header.height % 5 == 0:
                await until(lambda h=block.header.height: snapshots.descriptors()[0].height == h, "snapshot")
        nursery.cancel_scope.cancel()
    assert [d.height for d in snapshots.descriptors()] == [10, 5]
    for height in (5, 10):
        raw = snapshots.manifest(height)
        assert raw is not None
        assert manifest_root(Manifest.decode(raw)) == store.state.root_at(height)


async def test_no_snapshot_at_start_with_a_recent_one_or_no_block(tmp_path: Path) -> None:
    chain = LocalChain(users=4)
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    snapshots = SnapshotStore(tmp_path, keep=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(Snapshotter(store, snapshots, 5, chain.genesis.initial_height).run)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert snapshots.descriptors() == []
