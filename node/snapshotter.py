"""Taking snapshots of the state (§11.4) without holding up consensus.

Every ``snapshot_interval`` heights, as the block of such a height is committed (a
listener of :class:`~node.chainstate.NodeChain`, which runs before the next block can be
committed), the snapshotter opens an iterator over the latest state values: LevelDB
iterators see the store as it was when made, so that iterator reads the state of that
height, whatever is committed meanwhile. A worker thread then reads it, builds the
manifest and chunks, checks that they hash to the height's root, and writes them
(:class:`~storage.snapshots.SnapshotStore`). One snapshot is made at a time: a height
that comes due while one is being made is skipped. A node that stops waits for the
reading of the store (a second or two for a million keys), not for the rest: a snapshot
left half-written is a ``.tmp`` directory, removed at the next start.

A node that starts with blocks and no snapshot of the last ``snapshot_interval``
heights takes one of its height at once (a node that was stopped across its snapshot
heights, or whose chain was built elsewhere, serves one without waiting).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator

import trio

from chain.errors import StorageError
from chain.service import TaskStatus
from chain.transition import BlockOutcome
from chain.types import Block
from storage.snapshots import SnapshotStore, build_snapshot
from storage.store import Store

log = logging.getLogger(__name__)

_Due = tuple[int, bytes, Iterator[tuple[bytes, bytes]]]


class Snapshotter:
    """See the module docstring. Add :meth:`on_commit` to the chain's listeners and run
    :meth:`run`."""

    def __init__(self, store: Store, snapshots: SnapshotStore, interval: int, initial_height: int) -> None:
        if interval < 1:
            raise ValueError("a snapshot interval of at least 1")
        self.store = store
        self.snapshots = snapshots
        self.interval = interval
        self.initial_height = initial_height
        self._send, self._due = trio.open_memory_channel[_Due](0)

    def on_commit(self, block: Block, outcome: BlockOutcome) -> None:
        """A block was committed: take a snapshot of its height if one is due."""
        height = block.header.height
        if height % self.interval == 0:
            self._take(height)

    def _take(self, height: int) -> None:
        store = self.store
        if store.height != height:
            return  # a later block is stored already: the state is not the height's
        try:
            self._send.send_nowait((height, store.app_hash, store.state.entries()))
        except trio.WouldBlock:
            log.warning("snapshot skipped: the previous one is still being made", extra={"height": height})

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Make the snapshots that come due, one at a time, in a worker thread."""
        task_status.started()
        latest = max((d.height for d in self.snapshots.descriptors()), default=None)
        height = self.store.height
        if height >= max(self.initial_height, self.store.blocks.base) and (
                latest is None or latest + self.interval <= height):
            due: _Due | None = (height, self.store.app_hash, self.store.state.entries())
        else:
            due = None
        while True:
            if due is None:
                due = await self._due.receive()
            height, root, entries = due
            # Reading the store is waited for; the rest is not (the store may be closed then).
            items: list[tuple[bytes, bytes]] = await trio.to_thread.run_sync(list, entries)
            await trio.to_thread.run_sync(  # type: ignore[call-arg]  # the trio stubs predate the argument
                functools.partial(self._make, height, root, items), abandon_on_cancel=True)
            due = None

    def _make(self, height: int, root: bytes, entries: list[tuple[bytes, bytes]]) -> None:
        try:
            manifest, chunks = build_snapshot(height, root, entries)
            self.snapshots.write(manifest, chunks)
        except (StorageError, OSError) as exc:
            log.error("snapshot failed", extra={"height": height, "error": str(exc)})
