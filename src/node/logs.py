"""Logging: text for a terminal, or one JSON object per line for log collectors
(``log.format = "json"``), with the ``extra`` fields of each record."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_QUIET = ("libp2p", "multiaddr", "hypercorn.access")
"""Libraries whose info-level chatter is not the node's (their warnings still show)."""


class _TextWithExtras(logging.Formatter):
    """Text lines with the record's extra fields appended as ``key=value``."""

    _standard = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in self._standard}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def setup(level: str, fmt: str) -> None:
    """Send the node's logs to stderr at ``level`` (debug, info, warning, error) as
    ``fmt`` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"levelname": "level", "asctime": "time"}))
    else:
        handler.setFormatter(_TextWithExtras(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
