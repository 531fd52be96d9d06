"""The interpreter's cyclic garbage collector, set for a long-lived node and timed.

Every pass of the collector stops the whole process (the event loop, consensus, block
execution), and a pass over the oldest generation walks every object the node holds
(under load, every pending tx and its decoding, the caches). Most objects the node
makes are freed by reference counting as soon as they are unused, not by the collector,
so the node starts a young-generation pass after ``YOUNG_THRESHOLD`` allocations rather
than Python's 700, a middle one after 20 young passes (Python: 10) and a full one after
10 middle ones (as Python), and freezes the objects of its start (modules, genesis,
libraries), which no pass walks again.

Each pass is timed; ``/metrics`` gives the time spent per generation and the longest
pause (``bizra_node_gc_*``).
"""

from __future__ import annotations

import gc
import time
from typing import Any

YOUNG_THRESHOLD = 50_000
OLDER_THRESHOLDS = (20, 10)


class GcPauses:
    """Sets the collector's thresholds while running (:meth:`start` … :meth:`stop`)
    and adds up its passes: ``seconds`` and ``collections`` per generation (0, 1, 2),
    and the ``longest`` single pause."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self.longest = 0.0
        self._started = 0.0
        self._previous: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Set the node's thresholds and time every pass from now on."""
        if self._previous is None:
            self._previous = gc.get_threshold()
            gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
            gc.callbacks.append(self._on_pass)

    def freeze(self) -> None:
        """Collect, then leave every object alive out of all later passes (call it once
        the node has started: what it made to start lives as long as it does)."""
        gc.collect()
        gc.freeze()

    def stop(self) -> None:
        """Put Python's thresholds back and stop timing (the frozen objects stay so)."""
        if self._previous is not None:
            gc.callbacks.remove(self._on_pass)
            gc.set_threshold(*self._previous)
            self._previous = None

    def _on_pass(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
            return
        pause = now - self._started
        generation = info["generation"]
        self.seconds[generation] += pause
        self.collections[generation] += 1
        self.longest = max(self.longest, pause)
