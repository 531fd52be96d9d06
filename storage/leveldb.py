"""The LevelDB :class:`~storage.kv.KeyValueStore` (plyvel): the only module that
imports plyvel.

LevelDB takes a lock file in its directory, so a second process opening the same store
fails at once; that failure, and every other plyvel error at open, becomes a
:class:`~chain.errors.StorageError` that says what to do. A second handle in this process
is refused before LevelDB sees it: LevelDB would open and close the lock file to find
out, and closing any descriptor of a file drops the process's POSIX lock on it, which
would let a third process in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plyvel

from chain.errors import StorageError
from storage.kv import WriteBatch

_MiB = 1 << 20
_open_paths: set[Path] = set()
_open_paths_lock = threading.Lock()


def _message(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


class LevelDB:
    """A LevelDB database in ``path``, created when missing unless ``create`` is false.

    ``cache_mib`` sizes the block cache; a 10-bit bloom filter makes a get of an absent
    key cost no disk read. ``write_buffer_mib`` sizes the memtable: at 16 MiB a block's
    batch goes in about twice as fast as at 64 MiB, a smaller skiplist to insert into
    (``bench/store_writes.py``; README). Tables are stored uncompressed (as Bitcoin Core keeps its
    chainstate, for the same reason): what the node writes is mostly hashes, keys and
    signatures, which snappy barely shrinks, while compressing every table written and
    compacted cost a syncing node a sizeable share of its CPU. A store written with
    compression opens as it is: LevelDB records each table block's own. Raises StorageError
    when the directory is locked by another process, is missing (``create=False``), or
    is not a readable LevelDB.
    """

    __slots__ = ("_db", "_key", "path")

    def __init__(self, path: Path, *, create: bool = True, cache_mib: int = 256,
                 write_buffer_mib: int = 16) -> None:
        self.path = path
        self._key = path.resolve()
        with _open_paths_lock:
            if self._key in _open_paths:
                raise StorageError(f"the store {path} is already open in this process")
            _open_paths.add(self._key)
        try:
            self._db = self._open(path, create, cache_mib, write_buffer_mib)
        except BaseException:
            with _open_paths_lock:
                _open_paths.discard(self._key)
            raise

    @staticmethod
    def _open(path: Path, create: bool, cache_mib: int, write_buffer_mib: int) -> Any:
        try:
            return plyvel.DB(
                str(path), create_if_missing=create, bloom_filter_bits=10,
                lru_cache_size=cache_mib * _MiB, write_buffer_size=write_buffer_mib * _MiB,
                max_file_size=8 * _MiB, compression=None)
        except plyvel.IOError as exc:
            message = _message(exc)
            if "lock" in message.lower():
                raise StorageError(
                    f"the store {path} is in use by another process (its LevelDB lock is held): "
                    "stop the other node, or give this one another home directory") from None
            raise StorageError(f"cannot open the store {path}: {message}") from None
        except plyvel.CorruptionError as exc:
            raise StorageError(f"the store {path} is corrupt: {_message(exc)}") from None
        except plyvel.Error as exc:
            raise StorageError(f"cannot open the store {path}: {_message(exc)}") from None

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def iterate(self, start: bytes, stop: bytes, *,
                reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        it: Iterator[tuple[bytes, bytes]] = self._db.iterator(
            start=start, stop=stop or None, reverse=reverse)
        return it

    def write_batch(self, *, sync: bool) -> WriteBatch:
        """plyvel's own batch: it has the put/delete/write of
        :class:`~storage.kv.WriteBatch`, with no wrapper to pay for per key."""
        batch: WriteBatch = self._db.write_batch(sync=sync)
        return batch

    def compact(self) -> None:
        """Compact the whole key range (reclaims space after pruning)."""
        self._db.compact_range()

    def close(self) -> None:
        """Close the database (idempotent)."""
        if not self._db.closed:
            self._db.close()
            with _open_paths_lock:
                _open_paths.discard(self._key)
