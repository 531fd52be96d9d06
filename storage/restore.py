"""Restoring a snapshot into a store (§11.4), under a marker so that a crash at any
instant leaves nothing half-restored in use.

1. :meth:`StateRestore.begin` writes the ``RESTORING`` marker and deletes the genesis
   state in one batch. From then on, a store opened with the marker is discarded whole
   and made again from genesis (:func:`discard_interrupted`), and state sync starts over.
2. :meth:`StateRestore.apply_chunk` writes a verified chunk's keys: their latest values
   and their versions at the snapshot's height.
3. :meth:`StateRestore.finish` rebuilds the state root from the values written and
   refuses unless it is the snapshot's; writes the trie records of every internal node
   at the snapshot's height (so proofs at it and after work as for any height); then in
   one last synced batch the anchor block and its commit, the proposer priorities, the
   latest-height record, the state and block bases, and deletes the marker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from chain.codec import dumps, expect_array, expect_bytes, expect_uint, loads_canonical
from chain.errors import DecodeError, StorageError
from chain.sizes import HASH_LEN
from chain.statetree import StateTree, key_path
from chain.types import Block, Commit, encode
from storage import schema
from storage.kv import KeyValueStore, iter_prefix

log = logging.getLogger(__name__)

BATCH_KEYS = 50_000
"""Keys deleted or written per batch."""
_STATE_FAMILIES = (schema.STATE, schema.STATE_VERSION, schema.TRIE, schema.STATE_CHANGES, schema.STATE_ROOT)


def restoring(kv: KeyValueStore) -> tuple[int, bytes] | None:
    """The height and app hash of the restore the store was left in, or None."""
    raw = kv.get(schema.RESTORING)
    if raw is None:
        return None
    try:
        height, app_hash = expect_array(loads_canonical(raw, "restore marker"), 2, "restore marker")
        return expect_uint(height, "restore marker.height"), expect_bytes(app_hash, "restore marker.app_hash",
                                                                          HASH_LEN)
    except DecodeError as exc:
        raise StorageError(f"the restore marker does not decode ({exc}): the store is corrupt") from None


def discard_interrupted(kv: KeyValueStore) -> None:
    """Delete every key of a store left in the middle of a restore, the marker last (so
    that a crash meanwhile leaves it to discard again)."""
    keys = 0
    batch = kv.write_batch(sync=False)
    for key, _ in kv.iterate(b"", b""):
        if key != schema.RESTORING:
            batch.delete(key)
            keys += 1
            if keys % BATCH_KEYS == 0:
                batch.write()
                batch = kv.write_batch(sync=False)
    batch.write()
    final = kv.write_batch(sync=True)
    final.delete(schema.RESTORING)
    final.write()
    log.warning("an interrupted state sync was discarded", extra={"keys": keys})


class _Restored:
    """The values written so far, as a :class:`~chain.ledger.StateReader`."""

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    def get(self, key: bytes) -> bytes | None:
        return self._kv.get(schema.state(key))

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key, value in iter_prefix(self._kv, schema.state(prefix)):
            yield schema.state_key_of(key), value


class StateRestore:
    """The restore of the state after block ``height``, whose root is ``app_hash``,
    into ``kv`` (the store of a node with no block yet). One thread at a time."""

    def __init__(self, kv: KeyValueStore, height: int, app_hash: bytes) -> None:
        self._kv = kv
        self.height = height
        self.app_hash = app_hash
        self.reader = _Restored(kv)
        """The state written so far (the whole state once every chunk is)."""

    def begin(self) -> None:
        """Write the marker and delete the store's state (the genesis state)."""
        batch = self._kv.write_batch(sync=True)
        batch.put(schema.RESTORING, dumps([self.height, self.app_hash]))
        batch.delete(schema.CONSENSUS)
        batch.write()
        for family in _STATE_FAMILIES:
            batch = self._kv.write_batch(sync=False)
            for count, (key, _) in enumerate(iter_prefix(self._kv, family), 1):
                batch.delete(key)
                if count % BATCH_KEYS == 0:
                    batch.write()
                    batch = self._kv.write_batch(sync=False)
            batch.write()

    def apply_chunk(self, pairs: Sequence[tuple[bytes, bytes]]) -> None:
        """Write the keys and values of a verified chunk."""
        batch = self._kv.write_batch(sync=False)
        for key, value in pairs:
            batch.put(schema.state(key), value)
            batch.put(schema.version(schema.state_versions(key_path(key)), self.height), b"\x01" + value)
        batch.write()

    def finish(self, block: Block, commit: Commit, consensus_state: bytes) -> StateTree:
        """Complete the restore with ``block`` (of the snapshot's height, the anchor the
        next block follows) and ``commit`` (one that finalizes it) and the proposer
        priorities of the height; return the rebuilt state tree. StorageError, leaving
        the marker, unless the values written hash to the snapshot's root."""
        height = self.height
        if block.header.height != height or commit.height != height or commit.block_id != block.block_id():
            raise StorageError(f"restore of height {height}: the anchor block or its commit is of "
                               "another block")
        tree = StateTree()
        pending: dict[bytes, bytes | None] = {}
        for key, value in self.reader.iter_prefix(b""):
            pending[key] = value
            if len(pending) >= BATCH_KEYS:
                tree.update(pending)
                pending = {}
        tree.update(pending)
        if tree.root() != self.app_hash:
            raise StorageError(f"restore of height {height}: the state written hashes to "
                               f"{tree.root().hex()}, not the snapshot's {self.app_hash.hex()}")
        records = tree.trail(key_path(key) for key, _ in self.reader.iter_prefix(b""))
        batch = self._kv.write_batch(sync=False)
        for count, (version, record) in enumerate(
                zip(schema.trie_version_keys(records, height), records.values(), strict=True), 1):
            batch.put(version, record)
            if count % BATCH_KEYS == 0:
                batch.write()
                batch = self._kv.write_batch(sync=False)
        batch.write()
        final = self._kv.write_batch(sync=True)
        final.put(schema.block(height), encode(block))
        final.put(schema.block_id(block.block_id()), schema.encode_height(height))
        final.put(schema.seen_commit(height), encode(commit))
        final.put(schema.state_root(height), self.app_hash)
        final.put(schema.CONSENSUS, consensus_state)
        final.put(schema.STATE_BASE, schema.encode_height(height))
        final.put(schema.BLOCK_BASE, schema.encode_height(height + 1))
        final.put(schema.LATEST, dumps([height, self.app_hash]))
        final.delete(schema.RESTORING)
        final.write()
        log.info("state restored", extra={"height": height, "keys": len(tree),
                                          "app_hash": self.app_hash.hex()})
        return tree
