"""The node's logs as operators read them: every record, py-libp2p's included, in the
chosen format (JSON lines for collectors); py-libp2p's routine dial errors only at debug."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

import p2p.host  # noqa: F401  (py-libp2p sets up its loggers when imported)
from node.logs import setup


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root, libp2p = logging.getLogger(), logging.getLogger("libp2p")
    saved = (root.handlers[:], root.level, libp2p.handlers[:], libp2p.propagate, libp2p.level)
    yield
    root.handlers[:], level, libp2p.handlers[:], libp2p.propagate, libp2p_level = saved
    root.setLevel(level)
    libp2p.setLevel(libp2p_level)


def test_py_libp2p_records_are_json_lines_and_its_routine_dial_errors_show_at_debug(
        capsys: pytest.CaptureFixture[str], restored_logging: None) -> None:
    setup("info", "json")
    logging.getLogger("libp2p.network.swarm").warning("a libp2p warning")
    logging.getLogger("libp2p.transport.tcp.tcp").error("Failed to open TCP stream: refused")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["a libp2p warning"]
    assert json.loads(lines[0])["level"] == "WARNING"

    setup("debug", "json")
    logging.getLogger("libp2p.transport.tcp.tcp").error("Failed to open TCP stream: refused")
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line)["level"] == "DEBUG"
