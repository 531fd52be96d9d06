"""How late the node's event loop runs: the overload signal behind refusing clients' txs.

Everything the node does on its event loop (gossip, votes, RPC, admissions) waits its
turn; when more work arrives than the loop can do, every task runs late, votes and
block parts included, and consensus misses its timeouts. A task that asks to wake up
every ``PERIOD_S`` and notes how late it woke measures that directly, whatever the cause.
"""

from __future__ import annotations

import trio

from chain.service import TaskStatus

PERIOD_S = 0.05
DECAY = 0.9
"""Per period: a lag is remembered for about half a second after the loop caught up."""


class LoopLag:
    """The event loop's recent lag in seconds: the latest wake-up's lateness, or a
    decaying memory of a larger one. Run :meth:`run` in the loop it measures."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.worst = 0.0
        """The largest lag seen since the node started."""

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            due = trio.current_time() + PERIOD_S
            await trio.sleep_until(due)
            self.note(trio.current_time() - due)

    def note(self, late: float) -> None:
        """Record a wake-up ``late`` seconds after it was due."""
        self.seconds = max(late, self.seconds * DECAY)
        self.worst = max(self.worst, late)
