"""The sync progress bar: height of target, a bar, blocks/s and ETA on one line that a
terminal redraws in place (tqdm), while the node's log lines scroll above it.

The bar is for a person watching ``bizra-node start`` in a terminal with text logs;
with JSON logs, or stderr not a terminal (a file, a pipe, a service manager's journal)
or one that reports no width, the progress stays log lines
(:class:`node.sync.ProgressLines`)."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from typing import Never, TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from node.sync import Progress, ProgressLines, SyncDisplay

BAR_EVERY_S = 0.5
BAR_FORMAT = "syncing {n}/{total} |{bar}| {desc}"
"""Height of target, the bar, then the rate and ETA (:meth:`SyncBar.show` writes them as the
description: tqdm's own rate would count from the bar's first drawing, not the sync's start)."""


class SyncBar:
    """A :class:`~node.sync.SyncDisplay` drawing on ``stream``: the bar appears with the
    first progress of a catch-up and stays, complete, when it ends; meanwhile the root
    logger's records are written above it."""

    every_s = BAR_EVERY_S

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._bar: tqdm[Never] | None = None  # a bar over no iterable
        self._redirect = ExitStack()

    def show(self, progress: Progress, now: float) -> None:
        if self._bar is None:
            self._bar = tqdm(initial=progress.start_height, total=progress.target,
                             file=self.stream, unit="block", bar_format=BAR_FORMAT, dynamic_ncols=True)
            self._redirect.enter_context(logging_redirect_tqdm())
        bar = self._bar
        eta = progress.eta(now)
        bar.total = progress.target
        bar.n = progress.height
        bar.set_description_str(f"{progress.rate(now):.1f} blocks/s, ETA "
                                f"{tqdm.format_interval(eta) if eta is not None else '?'}")

    def done(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._redirect.close()


def sync_display(log_format: str, stream: TextIO = sys.stderr) -> SyncDisplay:
    """A bar on ``stream`` if it is a terminal and the logs are text, else log lines."""
    if log_format == "text" and stream.isatty() and not _no_width(stream):
        return SyncBar(stream)
    return ProgressLines()


def _no_width(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that reports no columns, as one that a container
    runtime opened does until its client sends a size: tqdm would then drop the bar's
    format and show a rate of its own (counted from the bar's first drawing)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns == 0
    except (OSError, ValueError):  # no descriptor (a stream in memory), or a closed one
        return False
