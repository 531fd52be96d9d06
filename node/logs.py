"""Logging: text for a terminal, or one JSON object per line for log collectors
(``log.format = "json"``), with the ``extra`` fields of each record."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_QUIET = ("libp2p", "multiaddr")
"""Libraries whose info-level chatter is not the node's (their warnings still show)."""
_ROUTINE = ("libp2p.transport.tcp.tcp", "libp2p.host.basic_host")
"""py-libp2p loggers that report as errors what the node expects and handles: a dial to
a peer that is down, a stream a peer would not open (the peer manager and the caller
retry, and say so). They show as debug records."""


class _Demote(logging.Filter):
    """Turns a record into a debug record, shown only when the node logs at debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


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
    # py-libp2p detaches its loggers when imported, so their records reached Python's
    # last-resort handler: bare lines on stderr, not JSON. They go through ours.
    libp2p = logging.getLogger("libp2p")
    libp2p.handlers.clear()
    libp2p.propagate = True
    for name in _ROUTINE:
        routine = logging.getLogger(name)
        if not any(isinstance(f, _Demote) for f in routine.filters):
            routine.addFilter(_Demote())
