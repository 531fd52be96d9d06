"""Committed blocks and their commits, by height and by block id."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TypeVar

from chain.errors import DecodeError, StorageError
from chain.types import Block, Commit, decode, encode
from storage import schema
from storage.kv import KeyValueStore, WriteBatch

_T = TypeVar("_T", Block, Commit)
CACHED_BLOCKS = 8
CACHED_BYTES = 32 * 1024 * 1024
"""The decoded blocks kept for readers (the RPC asks for the latest ones again and
again): at most this many, whose encodings come to at most this many bytes."""


class BlockStore:
    """Blocks from :attr:`base` to :attr:`height`, each with its commit: the one the
    next block carries, or for the latest height the commit this node saw."""

    __slots__ = ("_cache", "_cached_bytes", "_kv", "_lock", "base", "height")

    def __init__(self, kv: KeyValueStore, base: int, height: int) -> None:
        self._kv = kv
        self.base = base
        self.height = height
        self._cache: OrderedDict[int, tuple[Block, int]] = OrderedDict()
        """Decoded blocks by height, the least recently read first, with their sizes."""
        self._cached_bytes = 0
        self._lock = threading.Lock()  # blocks are read from worker threads too

    def reset(self, base: int, height: int) -> None:
        """The store was restored (``storage/restore.py``): blocks from ``base``, the
        latest ``height``."""
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0
        self.base = base
        self.height = height

    def stage(self, batch: WriteBatch, block: Block, seen_commit: Commit) -> None:
        """Put ``block`` (the next height) and ``seen_commit`` into ``batch``; the commit
        of the previous height is the one ``block`` carries."""
        height = block.header.height
        batch.put(schema.block(height), encode(block))
        batch.put(schema.block_id(block.block_id()), schema.encode_height(height))
        batch.put(schema.seen_commit(height), encode(seen_commit))
        if block.last_commit is not None:
            batch.put(schema.commit(height - 1), encode(block.last_commit))
            batch.delete(schema.seen_commit(height - 1))
        self.height = height

    def block(self, height: int) -> Block | None:
        """The block at ``height``, or ``None`` if this node does not have it. A block
        at a height never changes, so the latest ones read are kept decoded."""
        with self._lock:
            cached = self._cache.get(height)
            if cached is not None:
                self._cache.move_to_end(height)
                return cached[0]
        raw = self._kv.get(schema.block(height))
        if raw is None:
            return None
        block = _decode(Block, raw, f"block {height}")
        with self._lock:
            if height not in self._cache:
                self._cache[height] = (block, len(raw))
                self._cached_bytes += len(raw)
            while len(self._cache) > CACHED_BLOCKS or (self._cached_bytes > CACHED_BYTES
                                                       and len(self._cache) > 1):
                self._cached_bytes -= self._cache.popitem(last=False)[1][1]
        return block

    def block_size(self, height: int) -> int | None:
        """The length in bytes of the block at ``height``'s canonical encoding (what
        ``len(encode(block))`` gives), read from the store without decoding the block;
        ``None`` if this node does not have it."""
        raw = self.encoded_block(height)
        return None if raw is None else len(raw)

    def block_height(self, block_id: bytes) -> int | None:
        """The height of the block ``block_id``, or ``None``."""
        raw = self._kv.get(schema.block_id(block_id))
        return None if raw is None else schema.decode_height(raw)

    def block_by_id(self, block_id: bytes) -> Block | None:
        height = self.block_height(block_id)
        return None if height is None else self.block(height)

    def encoded_block(self, height: int) -> bytes | None:
        """The canonical encoding of the block at ``height`` as stored (what
        ``encode(block)`` gives), or ``None``: for peers, with nothing decoded."""
        return self._kv.get(schema.block(height))

    def commit(self, height: int) -> Commit | None:
        """The commit of ``height``: canonical (from block ``height + 1``) when there is
        one, else the seen commit of the latest height; ``None`` beyond either."""
        raw = self.encoded_commit(height)
        return None if raw is None else _decode(Commit, raw, f"commit {height}")

    def encoded_commit(self, height: int) -> bytes | None:
        """:meth:`commit`'s canonical encoding as stored, or ``None``."""
        raw = self._kv.get(schema.commit(height))
        if raw is None:
            raw = self._kv.get(schema.seen_commit(height))
            if raw is None:
                # Block height + 1 was written between the two reads: its batch put the
                # canonical commit in the same write that deleted the seen one.
                raw = self._kv.get(schema.commit(height))
        return raw

    def seen_commit(self) -> Commit | None:
        """The commit this node saw for the latest height (what the next block carries)."""
        raw = self._kv.get(schema.seen_commit(self.height))
        return None if raw is None else _decode(Commit, raw, f"seen commit {self.height}")


def _decode(cls: type[_T], raw: bytes, what: str) -> _T:
    try:
        return decode(cls, raw)
    except DecodeError as exc:
        raise StorageError(f"{what} on disk does not decode ({exc}): the store is corrupt") from None
