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


def test_py_libp2p_info_records_stay_out_even_from_loggers_it_sets_to_info(
        capsys: pytest.CaptureFixture[str], restored_logging: None) -> None:
    connector = logging.getLogger("libp2p.network.auto_connector")
    assert connector.level == logging.INFO  # py-libp2p's own setting, below the node's "libp2p" level
    for fmt in ("text", "json"):
        setup("info", fmt)
        connector.info("Connections (0, in_flight=0) below target (200); initiating 200 new dials")
        logging.getLogger("libp2p.pubsub.gossipsub").info("mesh\nupdated")
        logging.getLogger("node.daemon").info("node started")
        (line,) = capsys.readouterr().err.splitlines()
        assert "node started" in line


def test_every_text_record_is_one_line_its_fields_before_its_traceback(
        capsys: pytest.CaptureFixture[str], restored_logging: None) -> None:
    setup("info", "text")
    log = logging.getLogger("node.test")
    log.warning("a message\nof two lines", extra={"error": "first\r\nsecond"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", extra={"height": 7})
    first, second = capsys.readouterr().err.splitlines()
    assert first.endswith("WARNING node.test: a message\\nof two lines error=first\\r\\nsecond")
    assert "ERROR   node.test: failed height=7\\nTraceback (most recent call last):\\n" in second
    assert second.endswith("ValueError: boom")


def test_every_json_record_is_one_object_on_one_line(capsys: pytest.CaptureFixture[str],
                                                     restored_logging: None) -> None:
    setup("info", "json")
    log = logging.getLogger("node.test")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed\nhere", extra={"height": 7})
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["message"] == "failed\nhere" and record["height"] == 7
    assert record["exc_info"].endswith("ValueError: boom")
