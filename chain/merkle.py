"""RFC 6962 merkle trees, hashed and split exactly as CometBFT does (§5).

``leaf = SHA-256(0x00 || item)``, ``inner = SHA-256(0x01 || left || right)``; a tree of
``n > 1`` items puts the first ``k`` items on the left, ``k`` the largest power of two
strictly below ``n``; the root of no items is ``SHA-256(b"")``.

The root is computed bottom-up: pairing neighbours level by level, and lifting an odd
last node unchanged to the next level, builds exactly the tree of the recursive split,
so a root costs the ``2n - 1`` hashes and little else; fewer when items repeat: a run of
one item object is hashed once, and so is a run of one pair at every level above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from chain.errors import InvalidProof, NotFound
from chain.sizes import HASH_LEN

EMPTY_ROOT = sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_INNER_PREFIX = b"\x01"
# CometBFT's proofs carry int64 index and total.
_MAX_TOTAL = 2**63 - 1


def leaf_hash(item: bytes) -> bytes:
    """``SHA-256(0x00 || item)``."""
    return sha256(_LEAF_PREFIX + item).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return sha256(_INNER_PREFIX + left + right).digest()


def _leaves(items: Sequence[bytes]) -> list[bytes]:
    """The leaf hashes of ``items``; a run of items that are one object is hashed once."""
    level: list[bytes] = []
    previous: bytes | None = None
    leaf = b""
    for item in items:
        if item is not previous:
            leaf = sha256(_LEAF_PREFIX + item).digest()
            previous = item
        level.append(leaf)
    return level


def _upper(level: list[bytes]) -> list[bytes]:
    """The level above ``level``: its neighbours paired, an odd last node lifted as it is.
    A pair that is the previous pair's two objects again is not hashed again, so a run of
    equal items (a block's results, mostly alike) costs a hash per level, not per pair."""
    upper: list[bytes] = []
    last_left: bytes | None = None
    last_right: bytes | None = None
    node = b""
    for i in range(0, len(level) - 1, 2):
        left = level[i]
        right = level[i + 1]
        if left is not last_left or right is not last_right:
            node = sha256(_INNER_PREFIX + left + right).digest()
            last_left = left
            last_right = right
        upper.append(node)
    if len(level) & 1:
        upper.append(level[-1])
    return upper


def _levels(items: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree of ``items`` (at least one), leaves first, root last.

    The node covering leaf ``i`` at level ``L`` is at position ``i >> L``: a lifted odd
    node keeps that rule, since ``(m - 1) >> 1`` is where pairing would put it.
    """
    level = _leaves(items)
    levels = [level]
    while len(level) > 1:
        level = _upper(level)
        levels.append(level)
    return levels


def _aunts(below_root: list[list[bytes]], index: int) -> tuple[bytes, ...]:
    """The aunts of leaf ``index``: its sibling at each level below the root that has one
    (a lifted node has none at that level)."""
    aunts = []
    for shift, level in enumerate(below_root):
        sibling = (index >> shift) ^ 1
        if sibling < len(level):
            aunts.append(level[sibling])
    return tuple(aunts)


def merkle_root(items: Sequence[bytes]) -> bytes:
    """The RFC 6962 root of ``items`` (``SHA-256(b"")`` when there are none)."""
    if not items:
        return EMPTY_ROOT
    level = _leaves(items)
    while len(level) > 1:
        level = _upper(level)
    return level[0]


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """That an item is the ``index``-th of ``total`` under a root (§5: ``[index, total, aunts]``).

    ``aunts`` are the sibling hashes along the item's path, ordered from the leaf level
    upward, as in CometBFT.
    """

    index: int
    total: int
    aunts: tuple[bytes, ...]

    def to_list(self) -> list[Any]:
        """The proof as the CBOR-able ``[index, total, [aunt, ...]]``."""
        return [self.index, self.total, list(self.aunts)]

    @classmethod
    def from_list(cls, obj: object) -> MerkleProof:
        """Decode ``[index, total, [aunt, ...]]``; raise :class:`InvalidProof` unless it is
        exactly that shape with ``0 <= index < total <= 2**63 - 1`` and 32-byte aunts."""
        if type(obj) is not list or len(obj) != 3:
            raise InvalidProof("merkle proof: expected an array [index, total, aunts]")
        index, total, aunts = obj
        if type(index) is not int or type(total) is not int:
            raise InvalidProof("merkle proof: index and total must be unsigned integers")
        if not 0 <= index < total <= _MAX_TOTAL:
            raise InvalidProof(f"merkle proof: index {index} out of range for total {total}")
        if type(aunts) is not list:
            raise InvalidProof("merkle proof: aunts must be an array")
        for k, aunt in enumerate(aunts):
            if type(aunt) is not bytes or len(aunt) != HASH_LEN:
                raise InvalidProof(f"merkle proof: aunt {k} is not a {HASH_LEN}-byte string")
        return cls(index, total, tuple(aunts))


def merkle_proofs(items: Sequence[bytes]) -> list[MerkleProof]:
    """The proof of every item of ``items``, in order, in ``O(n log n)``."""
    total = len(items)
    if total == 0:
        return []
    below_root = _levels(items)[:-1]
    return [MerkleProof(index, total, _aunts(below_root, index)) for index in range(total)]


def merkle_proof(items: Sequence[bytes], index: int) -> MerkleProof:
    """The proof of ``items[index]``; raise :class:`NotFound` when there is no such item."""
    total = len(items)
    if not 0 <= index < total:
        raise NotFound(f"no item {index} in a merkle tree of {total}")
    return MerkleProof(index, total, _aunts(_levels(items)[:-1], index))


def verify_merkle_proof(root: bytes, item: bytes, proof: MerkleProof) -> None:
    """Return if ``proof`` shows ``item`` under ``root``; raise :class:`InvalidProof` saying
    what failed (index or total out of range, wrong number of aunts, root mismatch).

    As in CometBFT, what the root commits to is the item's path, the left/right turns
    from the root down, which ``index`` and ``total`` determine: two pairs giving the same
    path (index 0 of 6 and of 7, say) are not told apart by a proof alone.
    """
    index, total, aunts = proof.index, proof.total, proof.aunts
    if not 0 <= index < total:
        raise InvalidProof(f"merkle proof: index {index} out of range for total {total}")
    # Walk down from the root, noting for each level whether the path turns right.
    turns_right: list[bool] = []
    n = total
    while n > 1:
        split = 1 << ((n - 1).bit_length() - 1)
        if index < split:
            turns_right.append(False)
            n = split
        else:
            turns_right.append(True)
            index -= split
            n -= split
    if len(aunts) != len(turns_right):
        raise InvalidProof(f"merkle proof: item {proof.index} of {total} needs "
                           f"{len(turns_right)} aunts, the proof has {len(aunts)}")
    node = sha256(_LEAF_PREFIX + item).digest()
    for k, aunt in enumerate(aunts):
        if len(aunt) != HASH_LEN:
            raise InvalidProof(f"merkle proof: aunt {k} is {len(aunt)} bytes, not {HASH_LEN}")
        if turns_right[-1 - k]:
            node = sha256(_INNER_PREFIX + aunt + node).digest()
        else:
            node = sha256(_INNER_PREFIX + node + aunt).digest()
    if node != root:
        raise InvalidProof(f"merkle proof: root mismatch (the proof leads to {node.hex()}, "
                           f"expected {root.hex()})")
