"""The state tree behind ``app_hash`` (§5, docs/state-root.md): roots against an
independent implementation of the definition, updates, proofs and their list form."""

from __future__ import annotations

import random
from typing import Any

import pytest

from chain.errors import InvalidProof
from chain.statetree import (
    EMPTY_ROOT,
    StateProof,
    StateProofNode,
    StateTree,
    key_path,
    verify_state_proof,
)

from reference import h
from reference import state_reference_root as reference_root


def tree_of(state: dict[bytes, bytes]) -> StateTree:
    tree = StateTree()
    tree.update(dict(state))
    return tree


def keys_sharing_prefix(nibbles: int, count: int) -> list[bytes]:
    """``count`` keys whose paths share their first ``nibbles`` nibbles."""
    seen: dict[str, list[bytes]] = {}
    i = 0
    while True:
        key = i.to_bytes(4, "big")
        group = seen.setdefault(h(key).hex()[:nibbles], [])
        group.append(key)
        if len(group) == count:
            return group
        i += 1


EXAMPLE = {b"alice": b"1", b"bob": b"2", b"erin": b"3", b"frank": b"4"}


def test_empty_tree() -> None:
    tree = StateTree()
    assert tree.root() == EMPTY_ROOT == h(b"")
    assert len(tree) == 0
    assert tree.get(b"k") is None
    proof = tree.prove(b"k")
    assert proof == StateProof((), None)
    verify_state_proof(tree.root(), b"k", None, proof)
    with pytest.raises(InvalidProof, match="root mismatch"):
        verify_state_proof(tree.root(), b"k", b"v", proof)


def test_single_key_root_is_its_leaf() -> None:
    tree = tree_of({b"k": b"v"})
    assert tree.root() == h(b"\x00" + h(b"k") + h(b"v"))
    assert tree.prove(b"k") == StateProof((), None)
    verify_state_proof(tree.root(), b"k", b"v", tree.prove(b"k"))
    absent = tree.prove(b"other")
    assert absent == StateProof((), (h(b"k"), h(b"v")))
    verify_state_proof(tree.root(), b"other", None, absent)


def test_documented_example() -> None:
    tree = tree_of(EXAMPLE)
    assert tree.root().hex() == "3497c036356c1aa9461e31a74041f4eba794142e67c99ed2113d4ad613bc0f5a"
    assert tree.root() == reference_root(EXAMPLE)
    leaf = {k: h(b"\x00" + h(k) + h(v)) for k, v in EXAMPLE.items()}
    node7 = h(b"\x01\x10\x80" + leaf[b"frank"] + leaf[b"erin"])
    assert node7.hex() == "8a6d0d2b1ec586b1a8b197f8d2b2e9f4f424c2c7da4543fed8137605f4cec06a"
    root_node = StateProofNode(0x0184, (leaf[b"alice"], leaf[b"bob"]))
    assert tree.prove(b"erin") == StateProof(
        (root_node, StateProofNode(0x1080, (leaf[b"frank"],))), None)
    assert tree.prove(b"carol") == StateProof(
        (StateProofNode(0x0184, (leaf[b"alice"], node7, leaf[b"bob"])),), None)
    assert tree.prove(b"judy") == StateProof(
        (root_node, StateProofNode(0x1080, (leaf[b"frank"], leaf[b"erin"]))), None)
    assert tree.prove(b"peggy") == StateProof(
        (StateProofNode(0x0184, (node7, leaf[b"bob"])),), (h(b"alice"), h(b"1")))
    for key in (b"erin", b"carol", b"judy", b"peggy"):
        verify_state_proof(tree.root(), key, EXAMPLE.get(key), tree.prove(key))


@pytest.mark.parametrize("size", [2, 3, 17, 100, 1000])
def test_root_matches_the_definition(size: int) -> None:
    rng = random.Random(size)
    state = {rng.randbytes(rng.randint(0, 8)): rng.randbytes(rng.randint(0, 8))
             for _ in range(size)}
    assert tree_of(state).root() == reference_root(state)


@pytest.mark.parametrize("nibbles", [1, 2, 3])
def test_keys_sharing_a_long_prefix(nibbles: int) -> None:
    # The root has a single (internal) child for each shared nibble.
    keys = keys_sharing_prefix(nibbles, 2)
    state = {k: k * 2 for k in keys}
    tree = tree_of(state)
    assert tree.root() == reference_root(state)
    proof = tree.prove(keys[0])
    assert len(proof.nodes) == nibbles + 1
    assert all(node.siblings == () for node in proof.nodes[:-1])
    verify_state_proof(tree.root(), keys[0], keys[0] * 2, proof)
    # Deleting one key moves the other back up to the root.
    tree.update({keys[1]: None})
    assert tree.root() == h(b"\x00" + h(keys[0]) + h(keys[0] * 2))
    assert len(tree.prove(keys[0]).nodes) == 0


def test_update_returns_the_root_and_get_len_follow() -> None:
    tree = StateTree()
    root = tree.update({b"a": b"1", b"b": b"2", b"c": None})
    assert root == tree.root() == reference_root({b"a": b"1", b"b": b"2"})
    assert len(tree) == 2
    assert (tree.get(b"a"), tree.get(b"b"), tree.get(b"c")) == (b"1", b"2", None)
    tree.update({b"a": b"", b"b": None})
    assert (tree.get(b"a"), tree.get(b"b"), len(tree)) == (b"", None, 1)


def test_no_op_changes_keep_the_root() -> None:
    tree = tree_of(EXAMPLE)
    root = tree.root()
    assert tree.update({}) == root
    assert tree.update({b"nobody": None, b"alice": b"1"}) == root
    assert len(tree) == len(EXAMPLE)


def test_deletions_recompress() -> None:
    state = {i.to_bytes(2, "big"): b"v" for i in range(300)}
    tree = tree_of(state)
    keep = {k: v for k, v in state.items() if k[1] % 7 == 0}
    tree.update({k: None for k in state if k not in keep})
    assert tree.root() == tree_of(keep).root() == reference_root(keep)
    assert len(tree) == len(keep)
    tree.update({k: None for k in keep})
    assert tree.root() == EMPTY_ROOT and len(tree) == 0


def test_batches_and_single_writes_agree() -> None:
    rng = random.Random(7)
    state = {rng.randbytes(6): rng.randbytes(4) for _ in range(2000)}
    one_by_one = StateTree()
    for key, value in state.items():
        one_by_one.update({key: value})
    batched = StateTree()
    items = list(state.items())
    for start in range(0, len(items), 333):
        batched.update(dict(items[start:start + 333]))
    assert one_by_one.root() == batched.root() == tree_of(state).root() == reference_root(state)


def test_mixed_batch_of_sets_inserts_and_deletes() -> None:
    rng = random.Random(3)
    state = {rng.randbytes(5): rng.randbytes(3) for _ in range(500)}
    tree = tree_of(state)
    keys = list(state)
    changes: dict[bytes, bytes | None] = {}
    changes.update({k: None for k in keys[:100]})
    changes.update({k: b"new" for k in keys[100:200]})
    changes.update({rng.randbytes(5): b"added" for _ in range(100)})
    given_paths = tree_of(state)
    tree.update(changes)
    given_paths.update(changes, {key: key_path(key) for key in changes})
    for key, value in changes.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    assert tree.root() == given_paths.root() == reference_root(state)
    assert len(tree) == len(given_paths) == len(state)
    assert all(tree.get(k) == v for k, v in state.items())


def test_a_value_that_is_not_bytes_changes_nothing() -> None:
    tree = tree_of(EXAMPLE)
    root = tree.root()
    bad: Any = {b"alice": b"9", b"zed": "text"}
    with pytest.raises(TypeError):
        tree.update(bad)
    assert tree.root() == root and tree.get(b"alice") == b"1" and len(tree) == 4


def test_proofs_fail_for_a_wrong_value_key_or_root() -> None:
    tree = tree_of(EXAMPLE)
    root = tree.root()
    proof = tree.prove(b"erin")
    with pytest.raises(InvalidProof, match="root mismatch"):
        verify_state_proof(root, b"erin", b"4", proof)
    with pytest.raises(InvalidProof, match="child on the key's path"):
        verify_state_proof(root, b"erin", None, proof)
    with pytest.raises(InvalidProof):
        verify_state_proof(root, b"frank", b"3", proof)
    with pytest.raises(InvalidProof, match="root mismatch"):
        verify_state_proof(h(b"x"), b"erin", b"3", proof)
    absent = tree.prove(b"peggy")
    with pytest.raises(InvalidProof, match="cannot show the key present"):
        verify_state_proof(root, b"peggy", b"1", absent)
    with pytest.raises(InvalidProof, match="key's own leaf"):
        verify_state_proof(root, b"alice", None, absent)
    with pytest.raises(InvalidProof, match="not on the key's path"):
        verify_state_proof(root, b"bob", None, absent)


def test_tampered_proofs_fail() -> None:
    tree = tree_of(EXAMPLE)
    root = tree.root()
    proof = tree.prove(b"erin")
    first, second = proof.nodes
    tampered = [
        StateProof((first,), None),
        StateProof((StateProofNode(0x0185, first.siblings), second), None),
        StateProof((StateProofNode(first.bitmap, first.siblings[::-1]), second), None),
        StateProof((first, StateProofNode(0x1080, ())), None),
        StateProof((first, second, second), None),
        StateProof((StateProofNode(0, ()), second), None),
    ]
    for bad in tampered:
        with pytest.raises(InvalidProof):
            verify_state_proof(root, b"erin", b"3", bad)
    too_deep = StateProof((first,) * 65, None)
    with pytest.raises(InvalidProof, match="more than the 64"):
        verify_state_proof(root, b"erin", b"3", too_deep)


def test_proof_list_form() -> None:
    tree = tree_of(EXAMPLE)
    for key in (b"erin", b"carol", b"peggy", b"judy"):
        proof = tree.prove(key)
        obj = proof.to_list()
        assert StateProof.from_list(obj) == proof
    peggy = tree.prove(b"peggy").to_list()
    assert peggy[1] == [h(b"alice"), h(b"1")]
    assert peggy[0][0][0] == 0x0184


_HASH = bytes(32)


@pytest.mark.parametrize("obj", [
    None,
    [],
    [[], [], []],
    ([], []),
    [[], None],
    [{}, []],
    [[[3, [_HASH]]] * 65, []],
    [[[0, []]], []],
    [[[0x10000, [_HASH]]], []],
    [[[True, []]], []],
    [[[3]], []],
    [[[3, [_HASH], 0]], []],
    [[[3, _HASH]], []],
    [[[3, [bytes(31)]]], []],
    [[[3, [bytearray(32)]]], []],
    [[[3, [_HASH, _HASH, _HASH]]], []],
    [[[3, []]], []],
    [[[3, [_HASH, _HASH]], [3, [_HASH]]], []],
    [[[3, [_HASH, _HASH]]], [_HASH, _HASH]],
    [[], [_HASH]],
    [[], [_HASH, bytes(31)]],
    [[], [_HASH, _HASH, _HASH]],
    [[], b""],
])
def test_from_list_rejects_malformed_proofs(obj: object) -> None:
    with pytest.raises(InvalidProof):
        StateProof.from_list(obj)
