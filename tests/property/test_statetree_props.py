"""The state root (§5) on random maps and histories: it is the definition's root of the
final map whatever the order and history of writes, and its proofs verify exactly the
true statements."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import InvalidProof
from chain.statetree import StateProof, StateProofNode, StateTree, key_path, verify_state_proof

from reference import flip
from reference import state_reference_root as reference_root


def tree_of(state: dict[bytes, bytes]) -> StateTree:
    tree = StateTree()
    tree.update(dict(state))
    return tree



# Small key and value spaces, so that histories overwrite and delete the same keys.
keys = st.binary(max_size=2)
values = st.binary(max_size=3)
states = st.dictionaries(keys, values, max_size=40)
batches = st.lists(st.dictionaries(keys, st.none() | values, max_size=25), max_size=8)


@given(states)
def test_root_matches_the_definition(state: dict[bytes, bytes]) -> None:
    tree = tree_of(state)
    assert tree.root() == reference_root(state)
    assert len(tree) == len(state)


@given(batches)
def test_root_depends_only_on_the_final_map(history: list[dict[bytes, bytes | None]]) -> None:
    tree = StateTree()
    state: dict[bytes, bytes] = {}
    for changes in history:
        root = tree.update(changes)
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        assert root == tree.root() == reference_root(state)
        assert len(tree) == len(state)
    assert all(tree.get(k) == v for k, v in state.items())


@given(states, st.randoms(use_true_random=False), st.integers(1, 10))
def test_root_is_independent_of_write_order(state: dict[bytes, bytes], rng: random.Random,
                                            batch_size: int) -> None:
    items = list(state.items())
    rng.shuffle(items)
    tree = StateTree()
    for start in range(0, len(items), batch_size):
        tree.update(dict(items[start:start + batch_size]))
    assert tree.root() == tree_of(state).root()


def shape(tree: StateTree, keys: set[bytes]) -> tuple[object, ...]:
    """Everything a reader sees of ``tree`` on ``keys``: root, size, values, and the
    internal nodes on their paths."""
    return (tree.root(), len(tree), [tree.get(k) for k in sorted(keys)],
            tree.trail(key_path(k) for k in keys))


@given(batches, st.data())
def test_work_ahead_is_adopted_or_taken_back_exactly(history: list[dict[bytes, bytes | None]],
                                                     data: st.DataObject) -> None:
    tree, twin = StateTree(), StateTree()
    state: dict[bytes, bytes] = {}
    seen: set[bytes] = set()
    for changes in history:
        before = tree.root()
        expected = dict(state)
        for key, value in changes.items():
            if value is None:
                expected.pop(key, None)
            else:
                expected[key] = value
        assert tree.ahead(changes) == reference_root(expected)
        assert tree.root() == before  # the root is the committed one until the update
        seen.update(changes)
        then = data.draw(st.sampled_from(["adopt", "read", "other"]))
        if then == "read":  # any read takes the work back: the tree is as it was
            assert shape(tree, seen) == shape(twin, seen)
        elif then == "other":  # an update of other changes takes it back, then applies
            other = data.draw(st.dictionaries(keys, st.none() | values, max_size=25))
            assert tree.update(other) == twin.update(other)
            for key, value in other.items():
                if value is None:
                    state.pop(key, None)
                else:
                    state[key] = value
            seen.update(other)
            continue
        assert tree.update(dict(changes)) == twin.update(changes) == reference_root(expected)
        state = expected
        assert shape(tree, seen) == shape(twin, seen)


def test_work_ahead_leaves_the_tree_as_it_was_on_a_bad_value() -> None:
    tree = tree_of({b"a": b"1", b"b": b"2"})
    root = tree.root()
    with pytest.raises(TypeError):
        tree.ahead({b"a": b"3", b"c": "text"})  # type: ignore[dict-item]
    assert tree.root() == root and tree.get(b"a") == b"1" and tree.get(b"c") is None


@given(states, keys)
def test_every_proof_verifies(state: dict[bytes, bytes], key: bytes) -> None:
    tree = tree_of(state)
    proof = tree.prove(key)
    verify_state_proof(tree.root(), key, state.get(key), proof)
    assert StateProof.from_list(proof.to_list()) == proof


@given(states, keys, values | st.none())
def test_a_proof_verifies_only_true_statements(state: dict[bytes, bytes], key: bytes,
                                               claimed: bytes | None) -> None:
    tree = tree_of(state)
    proof = tree.prove(key)
    if claimed == state.get(key):
        verify_state_proof(tree.root(), key, claimed, proof)
    else:
        with pytest.raises(InvalidProof):
            verify_state_proof(tree.root(), key, claimed, proof)


@given(states, keys, keys)
def test_a_proof_for_another_key_fails_unless_true(state: dict[bytes, bytes], key: bytes,
                                                   other: bytes) -> None:
    # An absence proof shows a whole empty slot, so it may also prove another key absent;
    # it never proves anything false.
    tree = tree_of(state)
    proof = tree.prove(key)
    claimed = state.get(key)
    try:
        verify_state_proof(tree.root(), other, claimed, proof)
    except InvalidProof:
        return
    assert state.get(other) == claimed
    assert other == key or claimed is None


@given(states, keys, st.integers(0, 255))
def test_a_wrong_root_fails(state: dict[bytes, bytes], key: bytes, bit: int) -> None:
    tree = tree_of(state)
    with pytest.raises(InvalidProof, match="root mismatch"):
        verify_state_proof(flip(tree.root(), bit), key, state.get(key), tree.prove(key))


@given(st.dictionaries(keys, values, min_size=2, max_size=40), keys, st.data())
def test_a_tampered_proof_fails(state: dict[bytes, bytes], key: bytes,
                                data: st.DataObject) -> None:
    tree = tree_of(state)
    proof = tree.prove(key)
    nodes = list(proof.nodes)
    leaf = proof.leaf
    targets = ["bitmap"] * bool(nodes) + ["drop"] * bool(nodes)
    targets += ["sibling"] * any(node.siblings for node in nodes) + ["leaf"] * (leaf is not None)
    target = data.draw(st.sampled_from(targets))
    if target == "bitmap":
        d = data.draw(st.integers(0, len(nodes) - 1))
        bitmap = nodes[d].bitmap ^ (1 << data.draw(st.integers(0, 15)))
        nodes[d] = StateProofNode(bitmap, nodes[d].siblings)
    elif target == "drop":
        del nodes[data.draw(st.integers(0, len(nodes) - 1))]
    elif target == "sibling":
        d = data.draw(st.sampled_from([d for d, node in enumerate(nodes) if node.siblings]))
        siblings = list(nodes[d].siblings)
        i = data.draw(st.integers(0, len(siblings) - 1))
        siblings[i] = flip(siblings[i], data.draw(st.integers(0, 255)))
        nodes[d] = StateProofNode(nodes[d].bitmap, tuple(siblings))
    else:
        assert leaf is not None
        part = data.draw(st.integers(0, 1))
        flipped = flip(leaf[part], data.draw(st.integers(0, 255)))
        leaf = (flipped, leaf[1]) if part == 0 else (leaf[0], flipped)
    with pytest.raises(InvalidProof):
        verify_state_proof(tree.root(), key, state.get(key), StateProof(tuple(nodes), leaf))


leaves = st.one_of(st.none(), st.booleans(), st.integers(-2, 70_000), st.binary(max_size=33),
                   st.sampled_from([bytes(32), b"\x01" * 32]))


@given(st.recursive(leaves, lambda inner: st.lists(inner, max_size=4), max_leaves=16))
def test_from_list_accepts_only_proofs(obj: object) -> None:
    try:
        proof = StateProof.from_list(obj)
    except InvalidProof:
        return
    assert proof.to_list() == obj
