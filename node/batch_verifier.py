"""Signature checks for gossip validation, gathered into batches and run off the loop.

Every vote, proposal and block announcement a peer gossips is checked before it is
forwarded (docs/network.md). The checks waiting at a moment are taken together, up to
``MAX_BATCH`` signatures, and verified as one batch on a worker thread
(:func:`chain.crypto.verify_many`, which spreads a large batch over every core): the
event loop never runs the curve math, and a burst of votes costs one hop to a thread,
not one per vote.

What waits is bounded: at most ``MAX_PENDING`` signatures in all. A caller that would
go beyond is answered ``None`` at once (the verifier is busy); gossip validation then
ignores the message, without penalty, and the peer's rate limit keeps any one peer from
filling the queue for long.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio

from chain.crypto import SignedItem, verify_many
from chain.service import TaskStatus

MAX_BATCH = 1_024
"""Signatures checked in one batch at most (about 0.1 s of one core)."""
MAX_PENDING = 8_192
"""Signatures waiting to be checked at most."""


@dataclass
class _Batch:
    items: list[SignedItem] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)
    verdicts: list[bool] = field(default_factory=list)


class BatchVerifier:
    """See the module docstring. :meth:`run` must be running for :meth:`verify` to
    answer. ``check`` is the batch check (``verify_many``; a test may count calls)."""

    def __init__(self, *, max_batch: int = MAX_BATCH, max_pending: int = MAX_PENDING,
                 check: Callable[[Sequence[SignedItem]], list[bool]] = verify_many) -> None:
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._check = check
        self._batches: deque[_Batch] = deque([_Batch()])
        """Batches waiting, in order; callers add to the last one until it is full."""
        self._ready = trio.Event()
        """Set while the first batch has items."""
        self._pending = 0
        self.batches = 0
        """Batches checked since the start."""
        self.checked = 0
        """Signatures checked since the start."""
        self.busy = 0
        """Checks refused because ``max_pending`` signatures were waiting."""

    @property
    def pending(self) -> int:
        """Signatures waiting to be checked."""
        return self._pending

    async def verify(self, items: Sequence[SignedItem]) -> list[bool] | None:
        """Whether each ``(public_key, message, signature)`` is valid, in order; None if
        the verifier is busy (``items`` were not checked)."""
        if not items:
            return []
        if self._pending + len(items) > self.max_pending:
            self.busy += 1
            return None
        batch = self._batches[-1]
        if batch.items and len(batch.items) + len(items) > self.max_batch:
            batch = _Batch()
            self._batches.append(batch)
        start = len(batch.items)
        batch.items.extend(items)
        self._pending += len(items)
        self._ready.set()
        await batch.done.wait()
        return batch.verdicts[start:start + len(items)]

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Check what callers wait for, batch after batch, until cancelled."""
        task_status.started()
        while True:
            await self._ready.wait()
            batch = self._batches.popleft()
            if not self._batches:
                self._batches.append(_Batch())
            if not self._batches[0].items:
                self._ready = trio.Event()
            batch.verdicts = await trio.to_thread.run_sync(self._check, batch.items)
            self.batches += 1
            self.checked += len(batch.items)
            self._pending -= len(batch.items)
            batch.done.set()
