"""The state root (§5): the authenticated key/value map behind a header's ``app_hash``.

A 16-ary Merkle trie over key paths ``SHA-256(key)``, read as 64 nibbles, most
significant first. A subtree holding a single key is that key's leaf, placed at the
shallowest depth where it is alone; there are no extension nodes, so an internal node
has at least two leaves below it and has a single child only when that child is
internal. The shape therefore depends only on the set of keys, and the root only on the
final key/value map, never on the order of writes or on history.

Hashes (``docs/state-root.md`` has the full format and the client's algorithm):

- empty tree: ``SHA-256(b"")``;
- leaf: ``SHA-256(0x00 || key_path || SHA-256(value))``;
- internal node: ``SHA-256(0x01 || bitmap || child hashes)``, ``bitmap`` two bytes
  big-endian with bit ``n`` (value ``1 << n``) set when child nibble ``n`` is present,
  the hashes of the present children in nibble order.

A leaf's hash does not depend on its depth, so compressing or expanding the trie never
re-hashes a value, and a batch recomputes each node on the changed paths once,
bottom-up, whatever the number of keys in the tree.

Memory layout, chosen because a large tree is bound by memory latency, not hashing: a
leaf is one ``bytes`` object, ``0x00 || key_path || value_hash || value``, whose first 65
bytes are its hash preimage; an internal node is its children and the preimage of its
hash, so a child's new hash costs one 32-byte write into the parent.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from chain.errors import InvalidProof
from chain.sizes import HASH_LEN

MAX_DEPTH = 2 * HASH_LEN
"""Nibbles in a key path: a proof has at most this many internal nodes."""
EMPTY_ROOT = sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
# A leaf: prefix (1), key path (32), value hash (32), value.
_PATH_AT = 1
_VALUE_HASH_AT = _PATH_AT + HASH_LEN
_VALUE_AT = _VALUE_HASH_AT + HASH_LEN
# A node's preimage: prefix (1), bitmap (2), child hashes (32 each).
_CHILDREN_AT = 3
_SCAN_MAX = 8  # runs in ranges up to this many paths are found by scanning, not bisection


def key_path(key: bytes) -> bytes:
    """Where ``key`` lives in the trie: ``SHA-256(key)``."""
    return sha256(key).digest()


def leaf_hash(path: bytes, value_hash: bytes) -> bytes:
    """``SHA-256(0x00 || path || value_hash)``."""
    return sha256(_LEAF_PREFIX + path + value_hash).digest()


def node_hash(bitmap: int, child_hashes: Sequence[bytes]) -> bytes:
    """``SHA-256(0x01 || bitmap (2 bytes big-endian) || child hashes in nibble order)``."""
    return sha256(_NODE_PREFIX + bitmap.to_bytes(2, "big") + b"".join(child_hashes)).digest()


def node_children(preimage: bytes | bytearray) -> tuple[int, list[bytes]]:
    """The bitmap and the child hashes (in nibble order) in an internal node's hash
    preimage, a record of :meth:`StateTree.trail`."""
    record = bytes(preimage)
    return (record[1] << 8 | record[2],
            [record[at:at + HASH_LEN] for at in range(_CHILDREN_AT, len(record), HASH_LEN)])


def nibble(path: bytes, depth: int) -> int:
    """Nibble ``depth`` of ``path``, the high half of each byte first."""
    if depth & 1:
        return path[depth >> 1] & 15
    return path[depth >> 1] >> 4


def _leaf_hash_of(leaf: bytes) -> bytes:
    return sha256(leaf[:_VALUE_AT]).digest()


class _Node:
    """An internal node: its present children in nibble order (``bytes`` for a leaf) and
    ``preimage``, the bytes its hash is taken of, bitmap and child hashes included."""

    __slots__ = ("children", "preimage")

    def __init__(self, children: list[bytes | _Node], preimage: bytearray) -> None:
        self.children = children
        self.preimage = preimage


def _bitmap(preimage: bytearray) -> int:
    return preimage[1] << 8 | preimage[2]


def _group_end(paths: list[bytes], lo: int, hi: int, depth: int) -> int:
    """The end of the run of ``paths[lo:hi]`` (sorted, sharing ``depth`` nibbles) that has
    the nibble of ``paths[lo]`` at ``depth``."""
    first = paths[lo]
    at = depth >> 1
    shift = 0 if depth & 1 else 4
    c = (first[at] >> shift) & 15
    if c == 15:
        return hi
    if hi - lo <= _SCAN_MAX:
        j = lo + 1
        while j < hi and (paths[j][at] >> shift) & 15 == c:
            j += 1
        return j
    # The first path of the next run starts with at least this (nibble c + 1 at depth).
    bound = first[:at] + bytes((((first[at] >> shift) + 1) << shift,))
    return bisect_left(paths, bound, lo + 1, hi)


def _build(paths: list[bytes], leaves: list[bytes], hashes: list[bytes], lo: int, hi: int,
           depth: int) -> tuple[bytes | _Node, bytes]:
    """The subtree at ``depth`` of the ``hi - lo >= 1`` leaves ``leaves[lo:hi]`` (sorted
    by their distinct ``paths``, sharing ``depth`` nibbles; ``hashes`` their leaf hashes),
    with its hash."""
    if hi - lo == 1:
        return leaves[lo], hashes[lo]
    children: list[bytes | _Node] = []
    child_hashes: list[bytes] = []
    bitmap = 0
    i = lo
    while i < hi:
        j = _group_end(paths, i, hi, depth)
        bitmap |= 1 << nibble(paths[i], depth)
        child, child_hash = _build(paths, leaves, hashes, i, j, depth + 1)
        children.append(child)
        child_hashes.append(child_hash)
        i = j
    preimage = bytearray(_NODE_PREFIX + bitmap.to_bytes(2, "big") + b"".join(child_hashes))
    return _Node(children, preimage), sha256(preimage).digest()


_SET = 0
_DELETE = 1
_INSERT = 2


class _Undo:
    """How to take back a batch applied to a trie: the nodes' earlier child lists, as
    the operations made on them (``(children, position, old child, _SET | _DELETE |
    _INSERT)``, in order), and their earlier hash preimages (``(preimage, offset, old
    bytes)``: a child hash at ``offset``, or the whole preimage at ``-1``)."""

    __slots__ = ("children", "preimages")

    def __init__(self) -> None:
        self.children: list[tuple[list[bytes | _Node], int, bytes | _Node | None, int]] = []
        self.preimages: list[tuple[bytearray, int, bytes | bytearray]] = []

    def take_back(self) -> None:
        """Restore every node recorded to what it was before the batch."""
        for children, pos, old, op in reversed(self.children):
            if op == _SET:
                assert old is not None
                children[pos] = old
            elif op == _DELETE:
                assert old is not None
                children.insert(pos, old)
            else:
                del children[pos]
        for preimage, at, before in self.preimages:
            if at < 0:
                preimage[:] = before
            else:
                preimage[at:at + HASH_LEN] = before


class _Batch:
    """One update's changes, sorted by path, and what applying them does to the trie.

    ``leaves[i]`` is the new leaf of ``paths[i]`` (``None``: delete) and ``hashes[i]``
    its leaf hash (empty for a deletion). ``added`` counts keys inserted minus deleted.
    With ``undo`` given, every change made to a node already in the trie is recorded in
    it, to be taken back.
    """

    __slots__ = ("added", "hashes", "leaves", "paths", "undo")

    def __init__(self, paths: list[bytes], leaves: list[bytes | None],
                 hashes: list[bytes], undo: _Undo | None = None) -> None:
        self.paths = paths
        self.leaves = leaves
        self.hashes = hashes
        self.added = 0
        self.undo = undo

    def apply(self, node: bytes | _Node | None, depth: int, lo: int, hi: int,
              in_place_first: bool) -> tuple[bytes | _Node | None, bytes]:
        """Apply changes ``lo:hi`` (sharing ``depth`` nibbles) to the subtree ``node`` at
        ``depth``; return the new subtree and its hash (empty when it is empty).

        Nodes change in place, and the subtree returned is ``node`` itself while its
        shape at this depth is unchanged, so the parent only rewrites the child's hash.
        ``in_place_first``: try :meth:`replace_value` for a single change.
        """
        if node is None:
            return self.build(lo, hi, depth)
        if isinstance(node, bytes):
            return self.apply_to_leaf(node, depth, lo, hi)
        if in_place_first and hi - lo == 1:
            new_hash = self.replace_value(node, depth, lo)
            if new_hash is not None:
                return node, new_hash
            # The key is new or deleted: the same walk would fail at every level below.
            in_place_first = False
        return self.apply_many(node, depth, lo, hi, in_place_first)

    def replace_value(self, node: _Node, depth: int, i: int) -> bytes | None:
        """If change ``i`` sets a key that is in the subtree ``node`` at ``depth``, make it
        and return the subtree's new hash; otherwise change nothing and return ``None``.

        The common case of a block (a key whose value changes), walked down and rehashed
        up without recursion.
        """
        new_leaf = self.leaves[i]
        if new_leaf is None:
            return None
        path = self.paths[i]
        trail: list[_Node] = []
        offsets: list[int] = []
        current = node
        d = depth
        while True:
            preimage = current.preimage
            bitmap = preimage[1] << 8 | preimage[2]
            bit = 1 << nibble(path, d)
            if not bitmap & bit:
                return None
            pos = (bitmap & (bit - 1)).bit_count()
            child = current.children[pos]
            trail.append(current)
            offsets.append(pos)
            if isinstance(child, _Node):
                current = child
                d += 1
                continue
            if not child.startswith(path, _PATH_AT):
                return None
            undo = self.undo
            if undo is not None:
                undo.children.append((current.children, pos, child, _SET))
            current.children[pos] = new_leaf
            new_hash = self.hashes[i]
            for k in range(len(trail) - 1, -1, -1):
                at = _CHILDREN_AT + HASH_LEN * offsets[k]
                preimage = trail[k].preimage
                if undo is not None:
                    undo.preimages.append((preimage, at, preimage[at:at + HASH_LEN]))
                preimage[at:at + HASH_LEN] = new_hash
                new_hash = sha256(preimage).digest()
            return new_hash

    def apply_many(self, node: _Node, depth: int, lo: int, hi: int,
                   in_place_first: bool) -> tuple[bytes | _Node | None, bytes]:
        """:meth:`apply` on an internal node, grouping the changes per child."""
        paths = self.paths
        children = node.children
        preimage = node.preimage
        undo = self.undo
        if undo is not None:
            undo.preimages.append((preimage, -1, bytes(preimage)))
        bitmap = _bitmap(preimage)
        reshaped = False
        i = lo
        while i < hi:
            j = _group_end(paths, i, hi, depth)
            bit = 1 << nibble(paths[i], depth)
            pos = (bitmap & (bit - 1)).bit_count()
            at = _CHILDREN_AT + HASH_LEN * pos
            if bitmap & bit:
                child = children[pos]
                new, new_hash = self.apply(child, depth + 1, i, j, in_place_first)
                if new is None:
                    if undo is not None:
                        undo.children.append((children, pos, child, _DELETE))
                    del children[pos]
                    del preimage[at:at + HASH_LEN]
                    bitmap ^= bit
                    reshaped = True
                else:
                    if new is not child:
                        if undo is not None:
                            undo.children.append((children, pos, child, _SET))
                        children[pos] = new
                        reshaped = True
                    preimage[at:at + HASH_LEN] = new_hash
            else:
                new, new_hash = self.build(i, j, depth + 1)
                if new is not None:
                    if undo is not None:
                        undo.children.append((children, pos, None, _INSERT))
                    children.insert(pos, new)
                    preimage[at:at] = new_hash
                    bitmap |= bit
                    reshaped = True
            i = j
        if reshaped:
            if not children:
                return None, b""
            if len(children) == 1 and isinstance(children[0], bytes):
                # Alone below this node: the leaf moves up.
                return children[0], bytes(preimage[_CHILDREN_AT:])
            preimage[1] = bitmap >> 8
            preimage[2] = bitmap & 0xFF
        return node, sha256(preimage).digest()

    def apply_to_leaf(self, leaf: bytes, depth: int, lo: int,
                      hi: int) -> tuple[bytes | _Node | None, bytes]:
        """:meth:`apply` where the subtree is the single leaf ``leaf``."""
        paths = self.paths
        path = leaf[_PATH_AT:_VALUE_HASH_AT]
        # The old leaf is dropped and built again unless the batch sets or deletes it.
        self.added -= 1
        k = bisect_left(paths, path, lo, hi)
        if k < hi and paths[k] == path:
            return self.build(lo, hi, depth)
        subtree, subtree_hash, placed = _build_sets(
            [*paths[lo:k], path, *paths[k:hi]],
            [*self.leaves[lo:k], leaf, *self.leaves[k:hi]],
            [*self.hashes[lo:k], _leaf_hash_of(leaf), *self.hashes[k:hi]],
            depth)
        self.added += placed
        return subtree, subtree_hash

    def build(self, lo: int, hi: int, depth: int) -> tuple[bytes | _Node | None, bytes]:
        """The subtree at ``depth`` of the keys that changes ``lo:hi`` set (deletions are
        of keys it does not hold, and are dropped)."""
        if hi - lo == 1:
            leaf = self.leaves[lo]
            if leaf is None:
                return None, b""
            self.added += 1
            return leaf, self.hashes[lo]
        subtree, subtree_hash, placed = _build_sets(
            self.paths[lo:hi], self.leaves[lo:hi], self.hashes[lo:hi], depth)
        self.added += placed
        return subtree, subtree_hash


def _build_sets(paths: list[bytes], leaves: list[bytes | None], hashes: list[bytes],
                depth: int) -> tuple[bytes | _Node | None, bytes, int]:
    """The subtree at ``depth`` of the non-``None`` ``leaves`` (sorted by their distinct
    ``paths``, sharing ``depth`` nibbles), its hash and how many leaves it holds."""
    set_paths: list[bytes] = []
    set_leaves: list[bytes] = []
    set_hashes: list[bytes] = []
    for path, leaf, hash_of_leaf in zip(paths, leaves, hashes, strict=True):
        if leaf is not None:
            set_paths.append(path)
            set_leaves.append(leaf)
            set_hashes.append(hash_of_leaf)
    if not set_leaves:
        return None, b"", 0
    subtree, subtree_hash = _build(set_paths, set_leaves, set_hashes, 0, len(set_leaves), depth)
    return subtree, subtree_hash, len(set_leaves)


@dataclass(frozen=True, slots=True)
class StateProofNode:
    """An internal node on a key's path: its bitmap and the hashes of its other children.

    ``siblings`` are the hashes of the node's present children in nibble order, leaving
    out the child on the key's path; only the last node of an absence proof may have no
    child on that path, and then ``siblings`` are all its children.
    """

    bitmap: int
    siblings: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class StateProof:
    """That a key has a given value, or is absent, under a state root.

    ``nodes`` are the internal nodes from the root down the key's path (node ``d`` at
    depth ``d``). ``leaf`` is ``(key_path, value_hash)`` of another key's leaf when the
    key's path ends there (an absence proof), else ``None``. The CBOR-able form is
    ``[[[bitmap, [sibling, ...]], ...], []]``, or ``[key_path, value_hash]`` as last item.
    """

    nodes: tuple[StateProofNode, ...]
    leaf: tuple[bytes, bytes] | None

    def to_list(self) -> list[Any]:
        """The proof as plain lists, bytes and ints (see the class docstring)."""
        return [[[node.bitmap, list(node.siblings)] for node in self.nodes],
                [] if self.leaf is None else list(self.leaf)]

    @classmethod
    def from_list(cls, obj: object) -> StateProof:
        """Decode :meth:`to_list`'s form; raise :class:`InvalidProof` unless it is exactly
        that shape: at most 64 nodes, bitmaps in ``[1, 0xFFFF]``, 32-byte hashes, one
        sibling fewer than the bitmap's children on every node but an absence proof's
        last, and no leaf after a last node whose on-path slot is empty."""
        if type(obj) is not list or len(obj) != 2:
            raise InvalidProof("state proof: expected an array [nodes, leaf]")
        raw_nodes, raw_leaf = obj
        if type(raw_nodes) is not list or len(raw_nodes) > MAX_DEPTH:
            raise InvalidProof(f"state proof: nodes must be an array of at most {MAX_DEPTH}")
        nodes = []
        open_slot = False
        for d, raw in enumerate(raw_nodes):
            if type(raw) is not list or len(raw) != 2:
                raise InvalidProof(f"state proof: node {d} is not an array [bitmap, siblings]")
            bitmap, siblings = raw
            if type(bitmap) is not int or not 0 < bitmap <= 0xFFFF:
                raise InvalidProof(f"state proof: node {d} bitmap is not in [1, 0xFFFF]")
            if type(siblings) is not list or not all(
                    type(h) is bytes and len(h) == HASH_LEN for h in siblings):
                raise InvalidProof(f"state proof: node {d} siblings are not {HASH_LEN}-byte "
                                   "hashes")
            children = bitmap.bit_count()
            open_slot = len(siblings) == children
            if not (open_slot and d == len(raw_nodes) - 1) and len(siblings) != children - 1:
                raise InvalidProof(f"state proof: node {d} has {children} children by its "
                                   f"bitmap but {len(siblings)} siblings")
            nodes.append(StateProofNode(bitmap, tuple(siblings)))
        if type(raw_leaf) is not list or len(raw_leaf) not in (0, 2):
            raise InvalidProof("state proof: leaf must be [] or [key_path, value_hash]")
        leaf: tuple[bytes, bytes] | None = None
        if raw_leaf:
            path, value_hash = raw_leaf
            if (type(path) is not bytes or len(path) != HASH_LEN
                    or type(value_hash) is not bytes or len(value_hash) != HASH_LEN):
                raise InvalidProof(f"state proof: leaf must be two {HASH_LEN}-byte strings")
            if open_slot:
                raise InvalidProof("state proof: a leaf after a node with no child on the path")
            leaf = (path, value_hash)
        return cls(tuple(nodes), leaf)


class _Ahead:
    """A batch applied to the trie ahead of its :meth:`StateTree.update`: the changes
    (a copy), the trie's root node, hash and size before and after, and the undo."""

    __slots__ = ("changes", "new_hash", "new_size", "old_root", "undo")

    def __init__(self, changes: dict[bytes, bytes | None], old_root: bytes | _Node | None,
                 new_hash: bytes, new_size: int, undo: _Undo) -> None:
        self.changes = changes
        self.old_root = old_root
        self.new_hash = new_hash
        self.new_size = new_size
        self.undo = undo


class StateTree:
    """The state's key/value map with its root, updated a batch (a block) at a time.

    Keys and values are byte strings. Not thread-safe; an update that raises (a value
    that is not ``bytes``, say) leaves the tree as it was.

    A batch may be worked out ahead (:meth:`ahead`), while its commit is not yet
    certain: the next :meth:`update` of the same changes then only adopts it, and any
    other call first takes it back.
    """

    __slots__ = ("_ahead", "_root", "_root_hash", "_size")

    def __init__(self) -> None:
        """An empty tree (root ``SHA-256(b"")``)."""
        self._root: bytes | _Node | None = None
        self._root_hash = EMPTY_ROOT
        self._size = 0
        self._ahead: _Ahead | None = None

    def root(self) -> bytes:
        """The root hash: what ``app_hash`` carries (never a batch's worked out ahead)."""
        return self._root_hash

    def __len__(self) -> int:
        """The number of keys."""
        return self._size

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or ``None`` when it is absent (``O(log n)``)."""
        self._take_back()
        path = key_path(key)
        leaf = self._leaf_on_path(path, None)
        if leaf is None or not leaf.startswith(path, _PATH_AT):
            return None
        return leaf[_VALUE_AT:]

    def update(self, changes: Mapping[bytes, bytes | None],
               key_paths: Mapping[bytes, bytes] | None = None) -> bytes:
        """Apply a batch: a value sets its key, ``None`` deletes it (a no-op when absent).

        Returns the new root. Costs ``O(k log n)`` for ``k`` changed keys of ``n``: every
        node on a changed path is recomputed once, after all of its changes. Raises
        ``TypeError`` before changing anything if a value is neither bytes nor ``None``.
        ``key_paths``, if given, holds :func:`key_path` of every changed key, as the caller
        worked them out (they are not computed again, nor checked).

        If :meth:`ahead` was given equal ``changes`` last, its work is adopted: the update
        costs a comparison of the changes.
        """
        ahead = self._ahead
        if ahead is not None:
            self._ahead = None
            if ahead.changes == changes:
                self._root_hash = ahead.new_hash
                self._size = ahead.new_size
                return self._root_hash
            self._take_back_from(ahead)
        batch = self._batch(changes, key_paths, None)
        if batch is None:
            return self._root_hash
        root, root_hash = batch.apply(self._root, 0, 0, len(batch.paths), True)
        self._root = root
        self._root_hash = EMPTY_ROOT if root is None else root_hash
        self._size += batch.added
        return self._root_hash

    def ahead(self, changes: Mapping[bytes, bytes | None],
              key_paths: Mapping[bytes, bytes] | None = None) -> bytes:
        """Work out :meth:`update` of ``changes`` (``key_paths`` as there) and return the
        root it will give, leaving :meth:`root` and ``len`` as they are: the next
        :meth:`update` with changes equal to these adopts the work; any other call (an
        update of other changes, :meth:`get`, :meth:`prove`, :meth:`trail`, another
        :meth:`ahead`) takes it back first, exactly. Raises ``TypeError`` as
        :meth:`update` does, the tree unchanged.
        """
        self._take_back()
        undo = _Undo()
        batch = self._batch(changes, key_paths, undo)
        if batch is None:
            return self._root_hash
        old_root = self._root
        root, root_hash = batch.apply(old_root, 0, 0, len(batch.paths), True)
        new_hash = EMPTY_ROOT if root is None else root_hash
        self._root = root
        self._ahead = _Ahead(dict(changes), old_root, new_hash, self._size + batch.added, undo)
        return new_hash

    def _take_back(self) -> None:
        """Undo the batch worked out ahead, if there is one."""
        ahead = self._ahead
        if ahead is not None:
            self._ahead = None
            self._take_back_from(ahead)

    def _take_back_from(self, ahead: _Ahead) -> None:
        ahead.undo.take_back()
        self._root = ahead.old_root

    def _batch(self, changes: Mapping[bytes, bytes | None], key_paths: Mapping[bytes, bytes] | None,
               undo: _Undo | None) -> _Batch | None:
        """``changes`` as a batch of leaves sorted by path (``None``: no changes); raises
        ``TypeError`` for a value that is neither bytes nor ``None``."""
        pending: dict[bytes, bytes | None] = {}
        for key, value in changes.items():
            path = sha256(key).digest() if key_paths is None else key_paths[key]
            if value is None:
                pending[path] = None
            elif type(value) is bytes:
                head = _LEAF_PREFIX + path + sha256(value).digest()
                pending[path] = head + value
            else:
                raise TypeError(f"state value must be bytes or None, not {type(value).__name__}")
        if not pending:
            return None
        paths = sorted(pending)
        leaves = [pending[p] for p in paths]
        hashes = [b"" if leaf is None else _leaf_hash_of(leaf) for leaf in leaves]
        return _Batch(paths, leaves, hashes, undo)

    def prove(self, key: bytes) -> StateProof:
        """A proof of ``key``'s value when it is present, of its absence otherwise; it
        verifies with :func:`verify_state_proof` against :meth:`root`."""
        self._take_back()
        path = key_path(key)
        nodes: list[StateProofNode] = []
        leaf = self._leaf_on_path(path, nodes)
        if leaf is None or leaf.startswith(path, _PATH_AT):
            return StateProof(tuple(nodes), None)
        return StateProof(tuple(nodes),
                          (leaf[_PATH_AT:_VALUE_HASH_AT], leaf[_VALUE_HASH_AT:_VALUE_AT]))

    def trail(self, paths: Iterable[bytes]) -> dict[bytes, bytes]:
        """The internal nodes the key ``paths`` pass through, by position: what a store
        keeps to serve proofs at past heights.

        A position is the nibbles of a prefix in lowercase hex (``b""``: the root); its
        record is the node's hash preimage ``0x01 || bitmap || child hashes``, so SHA-256
        of the record is the hash its parent holds. Each node is visited once.
        """
        self._take_back()
        ordered = sorted(set(paths))
        out: dict[bytes, bytes] = {}
        if ordered and isinstance(self._root, _Node):
            _trail(self._root, ordered, [p.hex().encode() for p in ordered], 0, len(ordered), 0, out)
        return out

    def _leaf_on_path(self, path: bytes, nodes: list[StateProofNode] | None) -> bytes | None:
        """The leaf where ``path`` ends, or ``None`` at an empty slot; appends the proof
        nodes of the way down to ``nodes`` unless it is ``None``."""
        node = self._root
        depth = 0
        while isinstance(node, _Node):
            preimage = node.preimage
            bitmap = _bitmap(preimage)
            bit = 1 << nibble(path, depth)
            pos = (bitmap & (bit - 1)).bit_count()
            if nodes is not None:
                hashes = node_children(preimage)[1]
                if bitmap & bit:
                    del hashes[pos]
                nodes.append(StateProofNode(bitmap, tuple(hashes)))
            if not bitmap & bit:
                return None
            node = node.children[pos]
            depth += 1
        return node


def _trail(node: _Node, paths: list[bytes], hexes: list[bytes], lo: int, hi: int, depth: int,
           out: dict[bytes, bytes]) -> None:
    """:meth:`StateTree.trail` below ``node`` at ``depth``, for ``paths[lo:hi]`` (sorted,
    sharing ``depth`` nibbles; ``hexes`` their hex forms)."""
    preimage = node.preimage
    out[hexes[lo][:depth]] = bytes(preimage)
    bitmap = _bitmap(preimage)
    children = node.children
    i = lo
    while i < hi:
        j = _group_end(paths, i, hi, depth)
        bit = 1 << nibble(paths[i], depth)
        if bitmap & bit:
            child = children[(bitmap & (bit - 1)).bit_count()]
            if isinstance(child, _Node):
                _trail(child, paths, hexes, i, j, depth + 1, out)
        i = j


def _shares_prefix(a: bytes, b: bytes, nibbles: int) -> bool:
    half = nibbles >> 1
    if a[:half] != b[:half]:
        return False
    return not nibbles & 1 or a[half] >> 4 == b[half] >> 4


def verify_state_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> None:
    """Return if ``proof`` shows that under ``root`` the value of ``key`` is ``value``
    (``None``: that ``key`` is absent); raise :class:`InvalidProof` saying what failed.

    The algorithm is the one of ``docs/state-root.md``: compute the hash of the slot the
    key's path reaches below the last node (the key's leaf, another key's leaf, or
    nothing), then each node's hash from its bitmap, its siblings and the hash from below,
    up to the root.
    """
    path = key_path(key)
    nodes = proof.nodes
    depth = len(nodes)
    if depth > MAX_DEPTH:
        raise InvalidProof(f"state proof: {depth} nodes, more than the {MAX_DEPTH} a path has")
    below: bytes | None
    if value is not None:
        if proof.leaf is not None:
            raise InvalidProof("state proof: ends at another key's leaf, so it cannot show "
                               "the key present")
        below = leaf_hash(path, sha256(value).digest())
    elif proof.leaf is not None:
        other_path, other_value_hash = proof.leaf
        if other_path == path:
            raise InvalidProof("state proof: ends at the key's own leaf, so the key is present")
        if len(other_path) != HASH_LEN or not _shares_prefix(other_path, path, depth):
            raise InvalidProof(f"state proof: the leaf it ends at is not on the key's path "
                               f"at depth {depth}")
        below = leaf_hash(other_path, other_value_hash)
    else:
        below = None
    for d in range(depth - 1, -1, -1):
        node = nodes[d]
        bitmap = node.bitmap
        if not 0 < bitmap <= 0xFFFF:
            raise InvalidProof(f"state proof: node {d} bitmap {bitmap} is not in [1, 0xFFFF]")
        bit = 1 << nibble(path, d)
        children = list(node.siblings)
        if below is None:
            if bitmap & bit:
                raise InvalidProof(f"state proof: node {d} has a child on the key's path, so "
                                   "the proof does not show the key absent")
        elif bitmap & bit:
            children.insert((bitmap & (bit - 1)).bit_count(), below)
        else:
            raise InvalidProof(f"state proof: node {d} has no child on the key's path")
        if len(children) != bitmap.bit_count():
            raise InvalidProof(f"state proof: node {d} has {bitmap.bit_count()} children by "
                               f"its bitmap, the proof gives {len(children)}")
        below = node_hash(bitmap, children)
    computed = EMPTY_ROOT if below is None else below
    if computed != root:
        raise InvalidProof(f"state proof: root mismatch (the proof leads to {computed.hex()}, "
                           f"expected {root.hex()})")
