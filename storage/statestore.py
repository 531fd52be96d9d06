"""The ledger state on disk: the latest values, every value's versions, and the trie
positions behind each state root, so that the state of any retained height can be read
and proven.

Per committed height ``h`` it writes, in the block's batch (the keys are
:mod:`storage.schema`'s):

- ``state(key)``: the latest value (what block execution reads, one get per key);
- the version at ``h`` of ``state_versions(path)``: the value as set at ``h`` (empty:
  deleted), under the key's trie path, so a read at height ``h`` is the last version at
  or below ``h``;
- the version at ``h`` of ``trie_versions(position)``: the hash preimage of every
  internal trie node the changed paths pass through, and an empty record where the
  update removed one;
- ``state_changes(h)`` (what pruning ``h`` deletes) and ``state_root(h)``.

A proof at ``h`` walks down from the root, taking at each position the last record at or
below ``h`` whose hash is the one its parent holds; a child with no such record is a
leaf, found among the versions of the paths under its position (the one alive at ``h``
whose leaf hash matches). Leaves thus need no records of their own, and a leaf that moves
when keys beside it come or go costs nothing.

The state root itself comes from the in-memory :class:`~chain.statetree.StateTree`,
rebuilt from the latest values when the store opens and checked against the root on
disk. Reads at past heights use only the disk, so they are safe from any thread while
the committing thread updates the tree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256

from chain.codec import dumps, expect_array, expect_bytes, expect_list, loads_canonical
from chain.errors import StorageError
from chain.statetree import (
    EMPTY_ROOT,
    StateProof,
    StateProofNode,
    StateTree,
    key_path,
    leaf_hash,
    nibble,
    node_children,
)
from storage import schema
from storage.kv import KeyValueStore, WriteBatch, iter_prefix, last_before, prefix_end

log = logging.getLogger(__name__)

_DELETED = b""
READ_CACHE = 100_000
"""Latest values :meth:`StateStore.get` keeps in memory."""


class StateStore:
    """The state at every height from :attr:`base` to :attr:`height`.

    Reads at the latest height (:meth:`get`, :meth:`iter_prefix`: the
    :class:`~chain.ledger.StateReader` block execution uses) go to the latest values;
    :meth:`get_at` and :meth:`prove` read any retained height. Only the committing
    thread may call :meth:`advance`, :meth:`stage` and :meth:`prune`.
    """

    __slots__ = ("_cache", "_generation", "_kv", "_lock", "_pending", "_prepared", "_staged", "_tree_lock",
                 "base", "height", "tree")

    def __init__(self, kv: KeyValueStore, height: int, base: int) -> None:
        """The state of a store whose latest committed height is ``height``; call
        :meth:`load` before reading its root."""
        self._kv = kv
        self.height = height
        self.base = base
        self.tree = StateTree()
        self._pending: _Pending | None = None
        self._prepared: _Prepared | None = None
        self._tree_lock = threading.Lock()
        """Held while the tree changes or is read: :meth:`prepare_root` runs on the
        executing thread, the rest on the committing one."""
        self._staged: dict[bytes, bytes | None] = {}
        self._cache: OrderedDict[bytes, bytes | None] = OrderedDict()
        """Latest values read or written lately (``None``: absent), least recently used
        first: block after block, execution reads the same hot accounts."""
        self._generation = 0
        """Heights written since the store opened: a read from disk that a write overtook
        may hold an older value, and is not cached."""
        self._lock = threading.Lock()

    # --- opening --------------------------------------------------------------------

    def load(self, expected_root: bytes) -> None:
        """Rebuild the state root from the latest values; raise StorageError unless it
        is ``expected_root`` (the root recorded with the latest height)."""
        started = time.perf_counter()
        tree = StateTree()
        batch: dict[bytes, bytes | None] = {}
        key_of = schema.state_key_of
        for key, value in iter_prefix(self._kv, schema.STATE):
            batch[key_of(key)] = value
            if len(batch) >= 100_000:
                tree.update(batch)
                batch = {}
        tree.update(batch)
        if tree.root() != expected_root:
            raise StorageError(
                f"the state on disk hashes to {tree.root().hex()}, but height {self.height} "
                f"recorded {expected_root.hex()}: the store is corrupt")
        self.tree = tree
        log.info("state loaded", extra={"keys": len(tree), "height": self.height,
                                        "seconds": round(time.perf_counter() - started, 3)})

    def reset(self, height: int, tree: StateTree) -> None:
        """The store was restored (``storage/restore.py``): its state is now ``tree``,
        after block ``height``, the only height kept."""
        with self._lock:
            self._generation += 1
            self._cache.clear()
        with self._tree_lock:
            self._prepared = None
            self.tree = tree
        self.base = height
        self.height = height

    @property
    def app_hash(self) -> bytes:
        """The state root at :attr:`height`."""
        return self.tree.root()

    # --- reads ----------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` at the latest height (from any thread)."""
        cache = self._cache
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
            generation = self._generation
        value = self._kv.get(schema.state(key))
        with self._lock:
            if generation == self._generation:
                cache[key] = value
                if len(cache) > READ_CACHE:
                    cache.popitem(last=False)
        return value

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value of the latest state as it is at this call: the iterator
        sees the store as it was when made, so it may be read from another thread while
        later heights are written."""
        key_of = schema.state_key_of
        return ((key_of(key), value) for key, value in iter_prefix(self._kv, schema.STATE))

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The latest entries whose key starts with ``prefix``, in key order."""
        for key, value in iter_prefix(self._kv, schema.state(prefix)):
            yield schema.state_key_of(key), value

    @property
    def ahead(self) -> StagedReads:
        """The latest state counting a height staged (:meth:`stage`) and not written
        yet: what the next block executes on. The reads above see written heights only,
        as :attr:`height` does."""
        return StagedReads(self)

    def _check_height(self, height: int) -> None:
        if not self.base <= height <= self.height:
            raise StorageError(f"the state at height {height} is not kept: this node has "
                               f"heights {self.base} to {self.height}")

    def root_at(self, height: int) -> bytes:
        """The state root after ``height``."""
        self._check_height(height)
        root = self._kv.get(schema.state_root(height))
        if root is None:
            raise StorageError(f"the state root of height {height} is missing: the store is corrupt")
        return root

    def get_at(self, key: bytes, height: int) -> bytes | None:
        """The value of ``key`` after block ``height``; StorageError if not retained."""
        self._check_height(height)
        return self._version_at(key_path(key), height)

    def _version_at(self, path: bytes, height: int) -> bytes | None:
        start = schema.state_versions(path)
        entry = last_before(self._kv, start, schema.upper(start, height))
        if entry is None or entry[1] == _DELETED:
            return None
        return entry[1][1:]

    def _position_at(self, position: bytes, height: int) -> bytes | None:
        start = schema.trie_versions(position)
        entry = last_before(self._kv, start, schema.upper(start, height))
        if entry is None or entry[1] == _DELETED:
            return None
        return entry[1]

    def prove(self, key: bytes, height: int) -> tuple[bytes | None, StateProof, bytes]:
        """``(value, proof, root)``: the value of ``key`` after block ``height`` (``None``:
        absent) and its proof against that height's state root, for
        :func:`chain.statetree.verify_state_proof`."""
        root = self.root_at(height)
        if root == EMPTY_ROOT:
            return None, StateProof((), None), root
        path = key_path(key)
        hexpath = path.hex().encode()
        nodes: list[StateProofNode] = []
        expected = root
        depth = 0
        while True:
            record = self._position_at(hexpath[:depth], height)
            if record is None or sha256(record).digest() != expected:
                break  # the slot holds a leaf
            bitmap, hashes = node_children(record)
            bit = 1 << nibble(path, depth)
            if not bitmap & bit:
                nodes.append(StateProofNode(bitmap, tuple(hashes)))
                return None, StateProof(tuple(nodes), None), root
            expected = hashes.pop((bitmap & (bit - 1)).bit_count())
            nodes.append(StateProofNode(bitmap, tuple(hashes)))
            depth += 1
        leaf_path, value = self._leaf_at(hexpath[:depth], height, expected)
        if leaf_path != path:
            return None, StateProof(tuple(nodes), (leaf_path, sha256(value).digest())), root
        return value, StateProof(tuple(nodes), None), root

    def _leaf_at(self, position: bytes, height: int, expected: bytes) -> tuple[bytes, bytes]:
        """The path and value of the leaf at ``position`` after ``height``, whose hash is
        ``expected``: the one key under the position alive then with that leaf hash."""
        whole = bytes.fromhex(position[: len(position) & ~1].decode())
        if len(position) & 1:
            high = int(position[-1:], 16) << 4
            start = schema.state_versions(whole + bytes((high,)))
            stop = (schema.state_versions(whole + bytes((high + 16,))) if high < 0xF0
                    else prefix_end(schema.state_versions(whole)))
        else:
            start = schema.state_versions(whole)
            stop = prefix_end(start)
        while True:
            first = next(self._kv.iterate(start, stop), None)
            if first is None:
                raise self._corrupt(height, position, "holds no leaf with the hash its parent holds")
            path = schema.path_of(first[0])
            value = self._version_at(path, height)
            if value is not None and leaf_hash(path, sha256(value).digest()) == expected:
                return path, value
            start = prefix_end(schema.state_versions(path))

    @staticmethod
    def _corrupt(height: int, position: bytes, problem: str) -> StorageError:
        where = position.decode() or "root"
        return StorageError(f"state at height {height}: the trie position {where} {problem}; "
                            "the store is corrupt")

    # --- writes ---------------------------------------------------------------------

    def advance(self, height: int, changes: dict[bytes, bytes | None]) -> bytes:
        """Apply block ``height``'s state ``changes`` to the in-memory state root and
        return the new root; :meth:`stage` then puts them into the block's batch.

        From here until that batch is written this store is ahead of the disk: if it is
        never written, the store must be reopened.
        """
        with self._tree_lock:
            if self._pending is not None:
                raise StorageError(f"height {self._pending.height} was advanced and never stored")
            prepared, self._prepared = self._prepared, None
            if prepared is not None and prepared.base == self.tree.root() and prepared.changes == changes:
                kept, paths, before = prepared.kept, prepared.paths, prepared.before
            else:
                kept, paths, before = self._tree_changes(changes)
            root = self.tree.update(kept, paths)
            self._pending = _Pending(height, kept, paths, before, root)
            return root

    def prepare_root(self, app_hash: bytes, changes: dict[bytes, bytes | None]) -> None:
        """Work out the state root after ``changes`` ahead of their :meth:`advance`,
        which then only adopts it (from any thread; see
        :func:`chain.transition.apply_block`). Does nothing unless ``app_hash`` is the
        tree's root and no height is advanced; work for other changes is taken back by
        the next :meth:`advance`."""
        with self._tree_lock:
            if self._pending is not None or self.tree.root() != app_hash:
                return
            self._prepared = None
            kept, paths, before = self._tree_changes(changes)
            self.tree.ahead(kept, paths)
            self._prepared = _Prepared(app_hash, dict(changes), kept, paths, before)

    def _tree_changes(self, changes: dict[bytes, bytes | None]
                      ) -> tuple[dict[bytes, bytes | None], dict[bytes, bytes], dict[bytes, bytes]]:
        """What ``changes`` do to the tree: those that change it (a deletion of a key the
        tree lacks does not), their key paths, and the trie records on the deleted keys'
        paths before."""
        kept = {key: value for key, value in changes.items()
                if value is not None or self.tree.get(key) is not None}
        paths = {key: key_path(key) for key in kept}
        deleted = [paths[key] for key, value in kept.items() if value is None]
        before = self.tree.trail(deleted) if deleted else {}
        return kept, paths, before

    def advanced(self, height: int) -> bool:
        """Whether :meth:`advance` has applied ``height`` and :meth:`stage` not yet."""
        return self._pending is not None and self._pending.height == height

    def stage(self, batch: WriteBatch, height: int) -> bytes:
        """Put the changes :meth:`advance` made for ``height`` into ``batch``; return
        the state root after ``height``. Call :meth:`written` once the batch is."""
        pending = self._pending
        if pending is None or pending.height != height:
            raise StorageError(f"the state of height {height} was not advanced")
        self._pending = None
        self._staged = pending.changes
        paths = pending.paths
        with self._tree_lock:
            after = self.tree.trail(paths.values())
        removed = [position for position in pending.before if position not in after]
        changes = pending.changes
        put = batch.put
        delete = batch.delete
        # The keys come a kind at a time, one schema call each: a call per key would show
        # in every commit.
        for key, version, value in zip(schema.state_keys(changes),
                                       schema.state_version_keys(paths.values(), height),
                                       changes.values(), strict=True):
            if value is None:
                delete(key)
                put(version, _DELETED)
            else:
                put(key, value)
                put(version, b"\x01" + value)
        for version, record in zip(schema.trie_version_keys(after, height), after.values(), strict=True):
            put(version, record)
        for version in schema.trie_version_keys(removed, height):
            put(version, _DELETED)
        put(schema.state_changes(height), dumps([list(paths.values()), [*after, *removed]]))
        put(schema.state_root(height), pending.root)
        return pending.root

    def written(self, height: int) -> None:
        """The batch :meth:`stage` filled for ``height`` is on disk: ``height`` is the
        latest now (not before: readers on other threads that see a height find its
        block). Its values move from the staged ones to the cache (in that order, so
        that a read through :attr:`ahead` finds them in one or the other)."""
        cache = self._cache
        with self._lock:
            self._generation += 1
            for key, value in self._staged.items():
                cache[key] = value
                cache.move_to_end(key)
            while len(cache) > READ_CACHE:
                cache.popitem(last=False)
        self._staged = {}
        self.height = height

    def prune(self, keep: int) -> int:
        """Forget the state of heights below the last ``keep`` (at least 1); returns how
        many heights were pruned. Each pruned height is its own batch, so an interrupted
        prune loses nothing and the next one continues it."""
        if keep < 1:
            raise ValueError("keep at least the latest height")
        target = self.height - keep + 1
        pruned = 0
        while self.base < target:
            self._prune_one(self.base + 1)
            pruned += 1
        return pruned

    def _prune_one(self, height: int) -> None:
        """Delete what only heights below ``height`` could read, and make it the base."""
        raw = self._kv.get(schema.state_changes(height))
        batch = self._kv.write_batch(sync=False)
        if raw is not None:
            paths, positions = expect_array(loads_canonical(raw, "state changes"), 2, "state changes")
            for path in expect_list(paths, "state changes paths"):
                self._drop_superseded(batch, schema.state_versions(expect_bytes(path, "path")), height)
            for position in expect_list(positions, "state changes positions"):
                self._drop_superseded(batch, schema.trie_versions(expect_bytes(position, "position")),
                                      height)
            batch.delete(schema.state_changes(height))
        batch.delete(schema.state_changes(height - 1))  # the genesis state's, on the first prune
        batch.delete(schema.state_root(height - 1))
        batch.put(schema.STATE_BASE, schema.encode_height(height))
        batch.write()
        self.base = height

    def _drop_superseded(self, batch: WriteBatch, versions: bytes, height: int) -> None:
        """Delete the version before ``height`` of an entry written at ``height``, and its
        deletion record at ``height`` when it is one (nothing retained reads either)."""
        at = schema.version(versions, height)
        older = last_before(self._kv, versions, at)
        if older is not None:
            batch.delete(older[0])
        if self._kv.get(at) == _DELETED:
            batch.delete(at)


class StagedReads:
    """:attr:`StateStore.ahead`: the store's latest reads, with the staged height's
    values (None: deleted) over them."""

    __slots__ = ("_state",)

    def __init__(self, state: StateStore) -> None:
        self._state = state

    def get(self, key: bytes) -> bytes | None:
        staged = self._state._staged
        if key in staged:
            return staged[key]
        return self._state.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        staged = {k: v for k, v in self._state._staged.items() if k.startswith(prefix)}
        if not staged:
            yield from self._state.iter_prefix(prefix)
            return
        merged: dict[bytes, bytes | None] = dict(self._state.iter_prefix(prefix))
        merged.update(staged)
        for key in sorted(merged):
            value = merged[key]
            if value is not None:
                yield key, value


@dataclass(frozen=True, slots=True)
class _Pending:
    """A height's state changes applied to the tree and not yet staged for the disk;
    ``paths``: each changed key's trie path, in the order of ``changes``; ``before``: the
    trie records on the deleted keys' paths before the update."""

    height: int
    changes: dict[bytes, bytes | None]
    paths: dict[bytes, bytes]
    before: dict[bytes, bytes]
    root: bytes


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Changes worked out ahead in the tree (:meth:`StateStore.prepare_root`), on the
    tree of root ``base``: the block's ``changes`` (a copy), then as for
    :class:`_Pending`."""

    base: bytes
    changes: dict[bytes, bytes | None]
    kept: dict[bytes, bytes | None]
    paths: dict[bytes, bytes]
    before: dict[bytes, bytes]
