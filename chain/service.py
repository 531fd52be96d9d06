"""The shape every long-running service of the node shares, whichever package holds it:
``async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED)``, started
with ``await nursery.start(service.run)`` and ready when it calls
``task_status.started()``. It is defined here, in the package every other one may
import, so that it is defined once."""

from __future__ import annotations

from typing import Any

TaskStatus = Any
"""``trio.TaskStatus``. py-libp2p depends on trio-typing, whose stubs (written for an
older trio) take precedence over trio's own types for the type checker and have no
``trio.TaskStatus``."""
