"""Consensus's write-ahead log (CometBFT's WAL): every message the driver feeds its state
machine, and an end-of-height marker when a height is committed, so that a restarted
validator replays the height it was in and signs nothing it had not signed.

A directory of segment files ``<16-digit number>.wal``; the highest is written. A record
is ``crc32(payload) (4 bytes, big-endian) || len(payload) (4 bytes) || payload``, the
payload the CBOR ``[0, message]`` (a message, opaque bytes) or ``[1, height]`` (the end
of ``height``). :meth:`Wal.write` buffers (received messages); :meth:`Wal.write_sync`
and :meth:`Wal.end_height` flush and fsync, which makes everything written before them
durable too: the node's own votes and proposals are written with ``write_sync`` before
they are sent, so whatever led to them survives a crash with them.

Opening reads every record. A torn or corrupt tail (a crash mid-write, a bad checksum,
a length beyond the maximum, a payload that is not an envelope) is cut back to the end
of the last whole record, the segments after it are removed, and a :class:`Recovery`
says what was dropped; that is never fatal.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chain.codec import dumps, expect_array, expect_bytes, expect_uint, loads_canonical
from chain.errors import BizraError, DecodeError

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">II")
_MESSAGE = 0
_END_HEIGHT = 1
_SUFFIX = ".wal"


class WalError(BizraError):
    """The WAL cannot be used as asked (a record too large, an I/O failure)."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """What opening cut off: from ``offset`` of ``path``, ``dropped`` bytes (and every
    later segment), because of ``reason``."""

    path: Path
    offset: int
    dropped: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Marker:
    height: int
    segment: int
    end: int  # offset just after the marker record


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _decode(payload: bytes) -> tuple[int, bytes | int]:
    kind, value = expect_array(loads_canonical(payload, "wal record"), 2, "wal record")
    if kind == _MESSAGE:
        return _MESSAGE, expect_bytes(value, "wal message")
    if kind == _END_HEIGHT:
        return _END_HEIGHT, expect_uint(value, "wal end height")
    raise DecodeError(f"wal record: unknown kind {kind!r}")


class Wal:
    """An open WAL; see the module docstring. One writer (the consensus driver)."""

    def __init__(self, directory: Path, max_segment_bytes: int, max_record_bytes: int) -> None:
        self.directory = directory
        self.max_segment_bytes = max_segment_bytes
        self.max_record_bytes = max_record_bytes
        self.recoveries: list[Recovery] = []
        self._markers: list[_Marker] = []
        self._segments: list[int] = []
        self._file: BinaryIO | None = None
        self._size = 0

    @classmethod
    def open(cls, directory: Path, *, start_height: int = 0, max_segment_bytes: int = 64 << 20,
             max_record_bytes: int = 16 << 20) -> Wal:
        """Open (creating) the WAL in ``directory`` and recover its tail. A new WAL gets
        the marker of ``start_height`` (the last committed height), so the first height
        replays like any other."""
        directory.mkdir(parents=True, exist_ok=True)
        wal = cls(directory, max_segment_bytes, max_record_bytes)
        wal._recover()
        if not wal._segments:
            wal._roll()
            wal.end_height(start_height)
        else:
            wal._open_head()
        return wal

    # --- opening -------------------------------------------------------------------

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:016d}{_SUFFIX}"

    def _recover(self) -> None:
        numbers = sorted(int(p.stem) for p in self.directory.glob("*" + _SUFFIX) if p.stem.isdigit())
        for position, number in enumerate(numbers):
            path = self._path(number)
            data = path.read_bytes()
            bad = self._scan(number, data)
            self._segments.append(number)
            if bad is None:
                continue
            offset, reason = bad
            with open(path, "r+b") as f:
                f.truncate(offset)
                f.flush()
                os.fsync(f.fileno())
            later = numbers[position + 1:]
            for n in later:
                self._path(n).unlink()
            _fsync_dir(self.directory)
            recovery = Recovery(path, offset, len(data) - offset, reason)
            self.recoveries.append(recovery)
            log.warning("wal tail recovered", extra={
                "file": str(path), "offset": offset, "dropped_bytes": recovery.dropped,
                "reason": reason, "segments_removed": len(later)})
            break

    def _scan(self, segment: int, data: bytes) -> tuple[int, str] | None:
        """Index the markers of one segment; return where and why it goes bad, if it does."""
        at = 0
        while at < len(data):
            if len(data) - at < _HEADER.size:
                return at, f"a torn record header ({len(data) - at} of {_HEADER.size} bytes)"
            crc, length = _HEADER.unpack_from(data, at)
            if length > self.max_record_bytes:
                return at, f"a record length of {length} bytes, above the maximum {self.max_record_bytes}"
            start = at + _HEADER.size
            payload = data[start:start + length]
            if len(payload) < length:
                return at, f"a torn record ({len(payload)} of {length} bytes)"
            if zlib.crc32(payload) != crc:
                return at, "a checksum mismatch"
            try:
                kind, value = _decode(payload)
            except DecodeError as exc:
                return at, f"a record that does not decode ({exc})"
            at = start + length
            if kind == _END_HEIGHT:
                assert isinstance(value, int)
                self._markers.append(_Marker(value, segment, at))
        return None

    def _open_head(self) -> None:
        path = self._path(self._segments[-1])
        self._file = open(path, "ab")  # noqa: SIM115 (held open for the WAL's lifetime)
        self._size = path.stat().st_size

    def _roll(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        number = self._segments[-1] + 1 if self._segments else 1
        self._segments.append(number)
        self._file = open(self._path(number), "ab")  # noqa: SIM115
        self._size = 0
        _fsync_dir(self.directory)

    # --- writing -------------------------------------------------------------------

    def _append(self, payload: bytes) -> None:
        if len(payload) > self.max_record_bytes:
            raise WalError(f"a WAL record of {len(payload)} bytes is above the maximum "
                           f"{self.max_record_bytes}")
        if self._file is None:
            raise WalError("the WAL is closed")
        if self._size >= self.max_segment_bytes:
            self._roll()
        assert self._file is not None
        self._file.write(_HEADER.pack(zlib.crc32(payload), len(payload)) + payload)
        self._size += _HEADER.size + len(payload)

    def _sync(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())

    def write(self, message: bytes) -> None:
        """Append ``message``, buffered (made durable by the next synced write)."""
        self._append(dumps([_MESSAGE, message]))

    def write_sync(self, message: bytes) -> None:
        """Append ``message`` and make it, and everything before it, durable."""
        self._append(dumps([_MESSAGE, message]))
        self._sync()

    def end_height(self, height: int) -> None:
        """Mark ``height`` committed, durably."""
        self._append(dumps([_END_HEIGHT, height]))
        self._sync()
        assert self._file is not None
        self._markers.append(_Marker(height, self._segments[-1], self._size))

    # --- reading -------------------------------------------------------------------

    @property
    def last_end_height(self) -> int | None:
        """The last height marked committed."""
        return self._markers[-1].height if self._markers else None

    def messages_of(self, height: int) -> list[bytes] | None:
        """The messages written while ``height`` was under way: after the marker of
        ``height - 1`` and before the marker of ``height`` (or the end). ``None`` when
        the WAL has no marker of ``height - 1``."""
        start = next((m for m in reversed(self._markers) if m.height == height - 1), None)
        if start is None:
            return None
        if start.segment == self._segments[-1] and start.end == self._size:
            return []  # nothing written since (each height's start: not a read of the segment)
        if self._file is not None:
            self._file.flush()
        out: list[bytes] = []
        for number in self._segments[self._segments.index(start.segment):]:
            data = self._path(number).read_bytes()
            at = start.end if number == start.segment else 0
            while at < len(data):
                _, length = _HEADER.unpack_from(data, at)
                at += _HEADER.size
                kind, value = _decode(data[at:at + length])
                at += length
                if kind == _END_HEIGHT:
                    return out
                assert isinstance(value, bytes)
                out.append(value)
        return out

    def prune(self, height: int) -> int:
        """Remove the segments whose every record comes before the last marker of
        ``height``; returns how many. The head segment is never removed."""
        marker = next((m for m in reversed(self._markers) if m.height == height), None)
        if marker is None:
            return 0
        doomed = [n for n in self._segments[:-1] if n < marker.segment]
        for n in doomed:
            self._path(n).unlink()
        if doomed:
            _fsync_dir(self.directory)
            self._segments = [n for n in self._segments if n not in doomed]
            self._markers = [m for m in self._markers if m.segment not in doomed]
        return len(doomed)

    def close(self) -> None:
        if self._file is not None:
            self._sync()
            self._file.close()
            self._file = None
