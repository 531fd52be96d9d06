"""The key/value store the node's stores are built on.

Two backends implement :class:`KeyValueStore` and behave identically: LevelDB
(:mod:`storage.leveldb`, the node's) and memory (:mod:`storage.memory`, for tests).
Keys and values are byte strings, ordered bytewise. A write batch is atomic: after a
crash it is wholly present or wholly absent. An iterator sees the store as it was when
the iterator was made.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class WriteBatch(Protocol):
    """Puts and deletes applied together, in order, by :meth:`write`."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def write(self) -> None:
        """Apply the batch atomically (and durably when it was made with ``sync``)."""


class KeyValueStore(Protocol):
    """An ordered byte-string map with atomic batches."""

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or ``None``."""

    def iterate(self, start: bytes, stop: bytes, *,
                reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """The entries with ``start <= key < stop``, ascending (descending if ``reverse``)."""

    def write_batch(self, *, sync: bool) -> WriteBatch:
        """A new batch; with ``sync`` its write returns once it is on stable storage."""

    def close(self) -> None:
        """Release the store; using it afterwards is an error."""


def prefix_end(prefix: bytes) -> bytes:
    """The least key greater than every key that starts with ``prefix`` (``b""``: none,
    for a prefix of only ``0xff`` bytes, which this project never uses)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b""
    return trimmed[:-1] + bytes((trimmed[-1] + 1,))


def iter_prefix(kv: KeyValueStore, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The entries whose key starts with ``prefix``, ascending."""
    return kv.iterate(prefix, prefix_end(prefix))


def last_before(kv: KeyValueStore, start: bytes, stop: bytes) -> tuple[bytes, bytes] | None:
    """The entry with the greatest key in ``[start, stop)``, or ``None``."""
    return next(kv.iterate(start, stop, reverse=True), None)
