"""Logging: text for a terminal, or one JSON object per line for log collectors
(``log.format = "json"``), with the ``extra`` fields of each record.

Every record is one line in either format: a text record's newlines (a traceback, a
library's multi-line message, an error text in a field) are written as ``\\n``, and JSON
escapes them. What reaches the log at info is the node's own: other libraries show their
warnings and errors only, and py-libp2p's routine dial errors only at debug."""

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


class _QuietLibraries(logging.Filter):
    """Drops the records below warning of the ``_QUIET`` libraries (but the ``_ROUTINE``
    ones ``_Demote`` let through). Their loggers are set to warning too, but py-libp2p
    sets levels of its own on some (its auto-connector's is at info), and a parent's
    level does not override a child's: this filter on the handler does."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if record.levelno >= logging.WARNING or name in _ROUTINE:
            return True
        return not any(name == lib or name.startswith(lib + ".") for lib in _QUIET)


class _TextWithExtras(logging.Formatter):
    """Text lines with the record's extra fields appended as ``key=value``, then its
    traceback; the whole record on one line (newlines written as ``\\n``)."""

    _standard = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in self._standard}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")


def setup(level: str, fmt: str) -> None:
    """Send the node's logs to stderr at ``level`` (debug, info, warning, error) as
    ``fmt`` (text or json), one line per record."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"levelname": "level", "asctime": "time"}))
    else:
        handler.setFormatter(_TextWithExtras(TEXT_FORMAT))
    handler.addFilter(_QuietLibraries())
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
