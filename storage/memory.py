"""The in-memory :class:`~storage.kv.KeyValueStore`, for tests: it behaves as LevelDB
does (ordering, atomic batches, snapshot iterators) and keeps nothing across processes."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from chain.errors import StorageError


class MemoryBatch:
    """Operations recorded, then applied to the store all at once."""

    __slots__ = ("_ops", "_store")

    def __init__(self, store: MemoryKV) -> None:
        self._store = store
        self._ops: list[tuple[bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self._ops.append((bytes(key), bytes(value)))

    def delete(self, key: bytes) -> None:
        self._ops.append((bytes(key), None))

    def write(self) -> None:
        self._store.apply(self._ops)
        self._ops = []


class MemoryKV:
    """A dict with its keys sorted on demand.

    ``data``: the contents of a store closed earlier, to open it again (what a restart
    over the same directory is for LevelDB).
    """

    __slots__ = ("_closed", "_data", "_sorted")

    def __init__(self, data: dict[bytes, bytes] | None = None) -> None:
        self._data: dict[bytes, bytes] = {} if data is None else data
        self._sorted: list[bytes] | None = None
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed")

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._data.get(key)

    def iterate(self, start: bytes, stop: bytes, *,
                reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        if self._sorted is None:
            self._sorted = sorted(self._data)
        keys = self._sorted
        lo = bisect_left(keys, start)
        hi = bisect_left(keys, stop) if stop else len(keys)
        entries = [(k, self._data[k]) for k in keys[lo:hi]]
        if reverse:
            entries.reverse()
        return iter(entries)

    def write_batch(self, *, sync: bool) -> MemoryBatch:
        self._check_open()
        return MemoryBatch(self)

    def apply(self, ops: list[tuple[bytes, bytes | None]]) -> None:
        """Apply a batch's operations (all of them: nothing here can fail half-way)."""
        self._check_open()
        data = self._data
        for key, value in ops:
            if value is None:
                if data.pop(key, None) is not None:
                    self._sorted = None
            else:
                if key not in data:
                    self._sorted = None
                data[key] = value

    @property
    def data(self) -> dict[bytes, bytes]:
        """The contents (shared, not copied)."""
        return self._data

    def close(self) -> None:
        self._closed = True
