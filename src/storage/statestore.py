"""The ledger state on disk: the latest values, every value's versions, and the trie
positions behind each state root, so that the state of any retained height can be read
and proven.

Per committed height ``h`` it writes, in the block's batch:

- ``state(key)``: the latest value (what block execution reads, one get per key);
- ``state_version(path, h)``: the value as set at ``h`` (empty: deleted), under the
  key's trie path, so a read at height ``h`` is the last version at or below ``h``;
- ``trie_version(position, h)``: the hash preimage at every trie position the changed
  paths pass through, and an empty record where the update removed one, so a proof at
  ``h`` walks down the last version at or below ``h`` of each position;
- ``state_changes(h)`` (what pruning ``h`` deletes) and ``state_root(h)``.

The state root itself comes from the in-memory :class:`~chain.statetree.StateTree`,
rebuilt from the latest values when the store opens and checked against the root on
disk. Reads at past heights use only the disk, so they are safe from any thread while
the committing thread updates the tree.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from hashlib import sha256

from chain.codec import dumps, expect_array, expect_bytes, expect_list, loads_canonical
from chain.errors import StorageError
from chain.statetree import EMPTY_ROOT, HASH_LEN, StateProof, StateProofNode, StateTree, nibble
from storage import schema
from storage.kv import KeyValueStore, WriteBatch, iter_prefix, last_before

log = logging.getLogger(__name__)

_HEX = b"0123456789abcdef"
_INTERNAL = 1
_DELETED = b""


class StateStore:
    """The state at every height from :attr:`base` to :attr:`height`.

    Reads at the latest height (:meth:`get`, :meth:`iter_prefix`: the
    :class:`~chain.ledger.StateReader` block execution uses) go to the latest values;
    :meth:`get_at` and :meth:`prove` read any retained height. Only the committing
    thread may call :meth:`stage` and :meth:`prune`.
    """

    __slots__ = ("_kv", "base", "height", "tree")

    def __init__(self, kv: KeyValueStore, height: int, base: int) -> None:
        """The state of a store whose latest committed height is ``height``; call
        :meth:`load` before reading its root."""
        self._kv = kv
        self.height = height
        self.base = base
        self.tree = StateTree()

    # --- opening --------------------------------------------------------------------

    def load(self, expected_root: bytes) -> None:
        """Rebuild the state root from the latest values; raise StorageError unless it
        is ``expected_root`` (the root recorded with the latest height)."""
        started = time.perf_counter()
        tree = StateTree()
        batch: dict[bytes, bytes | None] = {}
        skip = len(schema.STATE)
        for key, value in iter_prefix(self._kv, schema.STATE):
            batch[key[skip:]] = value
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

    @property
    def app_hash(self) -> bytes:
        """The state root at :attr:`height`."""
        return self.tree.root()

    # --- reads ----------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` at the latest height."""
        return self._kv.get(schema.STATE + key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The latest entries whose key starts with ``prefix``, in key order."""
        skip = len(schema.STATE)
        for key, value in iter_prefix(self._kv, schema.STATE + prefix):
            yield key[skip:], value

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
        return self._version_at(sha256(key).digest(), height)

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
        path = sha256(key).digest()
        hexpath = path.hex().encode()
        record = self._position_at(b"", height)
        expected = root
        nodes: list[StateProofNode] = []
        depth = 0
        while True:
            if record is None:
                if expected != EMPTY_ROOT or depth:
                    raise self._corrupt(height, hexpath[:depth], "is missing")
                return None, StateProof((), None), root
            if sha256(record).digest() != expected:
                raise self._corrupt(height, hexpath[:depth], "does not hash to its parent's hash")
            if record[0] != _INTERNAL:
                break
            bitmap = record[1] << 8 | record[2]
            hashes = [record[at:at + HASH_LEN] for at in range(3, len(record), HASH_LEN)]
            bit = 1 << nibble(path, depth)
            if not bitmap & bit:
                nodes.append(StateProofNode(bitmap, tuple(hashes)))
                return None, StateProof(tuple(nodes), None), root
            expected = hashes.pop((bitmap & (bit - 1)).bit_count())
            nodes.append(StateProofNode(bitmap, tuple(hashes)))
            depth += 1
            record = self._position_at(hexpath[:depth], height)
        leaf_path, value_hash = record[1:1 + HASH_LEN], record[1 + HASH_LEN:]
        if leaf_path != path:
            return None, StateProof(tuple(nodes), (leaf_path, value_hash)), root
        value = self._version_at(path, height)
        if value is None or sha256(value).digest() != value_hash:
            raise self._corrupt(height, hexpath[:depth], "holds a value the key does not have")
        return value, StateProof(tuple(nodes), None), root

    @staticmethod
    def _corrupt(height: int, position: bytes, problem: str) -> StorageError:
        where = position.decode() or "root"
        return StorageError(f"state at height {height}: the trie position {where} {problem}; "
                            "the store is corrupt")

    # --- writes ---------------------------------------------------------------------

    def stage(self, batch: WriteBatch, height: int, changes: dict[bytes, bytes | None]) -> bytes:
        """Put block ``height``'s state ``changes`` into ``batch`` and return the new root.

        The in-memory root moves now: if the batch is not written, this store is out of
        step with the disk and must be reopened.
        """
        changes = {key: value for key, value in changes.items()
                   if value is not None or self.tree.get(key) is not None}
        paths = {key: sha256(key).digest() for key in changes}
        before = self.tree.trail(paths.values())
        root = self.tree.update(changes)
        after = self.tree.trail(paths.values(), before)
        state = schema.STATE
        versions = schema.STATE_VERSION
        suffix = height.to_bytes(8, "big")
        put = batch.put
        for key, value in changes.items():
            if value is None:
                batch.delete(state + key)
                put(versions + paths[key] + suffix, _DELETED)
            else:
                put(state + key, value)
                put(versions + paths[key] + suffix, b"\x01" + value)
        trie = schema.TRIE
        for position, record in after.items():
            put(trie + position + b"/" + suffix, record)
        removed = _removed_positions(before, after)
        for position in removed:
            put(trie + position + b"/" + suffix, _DELETED)
        put(schema.state_changes(height), dumps([list(paths.values()), [*after, *removed]]))
        put(schema.state_root(height), root)
        self.height = height
        return root

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
        batch.put(schema.STATE_BASE, height.to_bytes(8, "big"))
        batch.write()
        self.base = height

    def _drop_superseded(self, batch: WriteBatch, versions: bytes, height: int) -> None:
        """Delete the version before ``height`` of an entry written at ``height``, and its
        deletion record at ``height`` when it is one (nothing retained reads either)."""
        older = last_before(self._kv, versions, versions + height.to_bytes(8, "big"))
        if older is not None:
            batch.delete(older[0])
        at = versions + height.to_bytes(8, "big")
        if self._kv.get(at) == _DELETED:
            batch.delete(at)


def _removed_positions(before: dict[bytes, bytes], after: dict[bytes, bytes]) -> list[bytes]:
    """Positions the update emptied: those walked before and not after, and the children
    of an internal node that went (a leaf beside the changed paths moves up when its node
    goes, and its old position would otherwise keep a record nothing deletes)."""
    removed = []
    for position, record in before.items():
        now = after.get(position)
        if now is None:
            removed.append(position)
        if record[0] == _INTERNAL and (now is None or now[0] != _INTERNAL):
            bitmap = record[1] << 8 | record[2]
            for n in range(16):
                child = position + _HEX[n:n + 1]
                if bitmap >> n & 1 and child not in after and child not in before:
                    removed.append(child)
    return removed
