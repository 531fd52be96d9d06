"""Merkle roots and proofs (§5) on random item lists: they match the recursive
definition, every proof verifies, and no single flipped bit gets through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import InvalidProof
from chain.merkle import (
    MerkleProof,
    merkle_proof,
    merkle_proofs,
    merkle_root,
    verify_merkle_proof,
)

from reference import flip, split_point
from reference import merkle_reference_root as reference_root


def path_of(index: int, total: int) -> list[bool]:
    """The turns (True = right) from the root down to leaf ``index`` of ``total``."""
    turns = []
    while total > 1:
        k = split_point(total)
        turns.append(index >= k)
        if index >= k:
            index, total = index - k, total - k
        else:
            total = k
    return turns


items_lists = st.lists(st.binary(max_size=12), max_size=80)
# Distinct items, so that no item also sits at another index.
distinct_items = st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=80, unique=True)


@given(items_lists)
def test_root_matches_the_recursive_definition(items: list[bytes]) -> None:
    assert merkle_root(items) == reference_root(items)


@given(items_lists)
def test_every_proof_verifies(items: list[bytes]) -> None:
    root = merkle_root(items)
    for index, proof in enumerate(merkle_proofs(items)):
        assert proof.index == index and proof.total == len(items)
        verify_merkle_proof(root, items[index], proof)


@given(distinct_items, st.data())
def test_a_flipped_bit_of_the_item_fails(items: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    bit = data.draw(st.integers(0, len(items[index]) * 8 - 1))
    with pytest.raises(InvalidProof):
        verify_merkle_proof(merkle_root(items), flip(items[index], bit), merkle_proof(items, index))


@given(distinct_items.filter(lambda items: len(items) > 1), st.data())
def test_a_flipped_bit_of_an_aunt_fails(items: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    proof = merkle_proof(items, index)
    which = data.draw(st.integers(0, len(proof.aunts) - 1))
    bit = data.draw(st.integers(0, 255))
    aunts = list(proof.aunts)
    aunts[which] = flip(aunts[which], bit)
    with pytest.raises(InvalidProof):
        verify_merkle_proof(merkle_root(items), items[index], MerkleProof(index, len(items),
                                                                         tuple(aunts)))


@given(distinct_items, st.data())
def test_a_flipped_bit_of_the_root_fails(items: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(InvalidProof, match="root mismatch"):
        verify_merkle_proof(flip(merkle_root(items), bit), items[index], merkle_proof(items, index))


@given(distinct_items, st.data())
def test_a_flipped_bit_of_the_index_fails(items: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    proof = merkle_proof(items, index)
    root = merkle_root(items)
    for bit in range(len(items).bit_length() + 1):
        with pytest.raises(InvalidProof):
            verify_merkle_proof(root, items[index],
                                MerkleProof(index ^ (1 << bit), proof.total, proof.aunts))


@given(distinct_items, st.data())
def test_a_flipped_bit_of_the_total_fails_unless_the_path_is_the_same(
        items: list[bytes], data: st.DataObject) -> None:
    # The root commits to the item's path, not to the total itself (as in CometBFT):
    # a total that gives the index the same path (index 0 of 6 or of 7) also verifies.
    index = data.draw(st.integers(0, len(items) - 1))
    proof = merkle_proof(items, index)
    root = merkle_root(items)
    for bit in range(len(items).bit_length() + 1):
        total = len(items) ^ (1 << bit)
        tampered = MerkleProof(index, total, proof.aunts)
        if 0 <= index < total and path_of(index, total) == path_of(index, len(items)):
            verify_merkle_proof(root, items[index], tampered)
        else:
            with pytest.raises(InvalidProof):
                verify_merkle_proof(root, items[index], tampered)


@given(items_lists.filter(bool), st.data())
def test_proof_list_form_round_trips(items: list[bytes], data: st.DataObject) -> None:
    proof = merkle_proof(items, data.draw(st.integers(0, len(items) - 1)))
    assert MerkleProof.from_list(proof.to_list()) == proof


leaves = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**64), st.binary(max_size=40),
                   st.text(max_size=4))


@given(st.recursive(leaves, lambda inner: st.lists(inner, max_size=4), max_leaves=12))
def test_from_list_accepts_only_proofs(obj: object) -> None:
    try:
        proof = MerkleProof.from_list(obj)
    except InvalidProof:
        return
    assert proof.to_list() == obj
