"""How a sync shows its progress: a bar when a person watches a terminal with text logs,
log lines otherwise; the bar says height of target, blocks/s and ETA, and the log lines
written meanwhile go above it."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import struct
import termios
from collections.abc import Iterator

import pytest

from node.logs import setup
from node.sync import Progress, ProgressLines
from node.syncbar import SyncBar, sync_display


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def test_a_bar_only_on_a_terminal_with_text_logs() -> None:
    assert isinstance(sync_display("text", Terminal()), SyncBar)
    assert isinstance(sync_display("json", Terminal()), ProgressLines)
    assert isinstance(sync_display("text", io.StringIO()), ProgressLines)


def test_log_lines_on_a_terminal_that_reports_no_width() -> None:
    """A terminal opened by a container runtime has no size until its client sends one
    (a new pseudo-terminal is 0 × 0): a bar there would lose its format."""
    main, side = os.openpty()
    try:
        with open(side, "w", closefd=False) as tty:
            assert tty.isatty() and os.get_terminal_size(side).columns == 0
            assert isinstance(sync_display("text", tty), ProgressLines)
            fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            assert isinstance(sync_display("text", tty), SyncBar)
    finally:
        os.close(main)
        os.close(side)


def test_the_bar_shows_height_target_rate_and_eta_and_logs_go_above_it(
        monkeypatch: pytest.MonkeyPatch, restored_logging: None) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    setup("info", "text")
    bar = SyncBar(terminal)
    progress = Progress(start_height=100, started=1.0, height=100, target=1_000)
    bar.show(progress, 1.0)
    progress.height = 400
    bar.show(progress, 11.0)
    logging.getLogger("node.test").info("a line while syncing")
    shown = terminal.getvalue()
    assert "\rsyncing 400/1000 |" in shown and "| 30.0 blocks/s, ETA 00:20" in shown
    assert "INFO    node.test: a line while syncing\n" in shown
    bar.done()
    logging.getLogger("node.test").info("after")
    assert terminal.getvalue().endswith("INFO    node.test: after\n")
    assert logging.getLogger().handlers[0].stream is terminal  # type: ignore[attr-defined]
