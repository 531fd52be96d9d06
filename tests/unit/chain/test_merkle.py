"""RFC 6962 merkle roots and proofs (§5) against the recursive definition."""

from __future__ import annotations

import pytest

from chain.errors import InvalidProof, NotFound
from chain.merkle import (
    EMPTY_ROOT,
    MerkleProof,
    merkle_proof,
    merkle_proofs,
    merkle_root,
    verify_merkle_proof,
)

from reference import h, split_point
from reference import merkle_reference_root as reference_root


def reference_aunts(items: list[bytes], index: int) -> list[bytes]:
    """CometBFT's aunts, leaf level first, from the recursive definition."""
    if len(items) == 1:
        return []
    k = split_point(len(items))
    if index < k:
        return [*reference_aunts(items[:k], index), reference_root(items[k:])]
    return [*reference_aunts(items[k:], index - k), reference_root(items[:k])]


def items_of(n: int) -> list[bytes]:
    return [i.to_bytes(2, "big") * (i % 3) for i in range(n)]


# The certificate-transparency (RFC 6962) reference inputs and the roots of their prefixes.
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == h(b"")
    assert merkle_proofs([]) == []


def test_single_item_root_is_its_leaf_hash() -> None:
    assert merkle_root([b"tx"]) == h(b"\x00tx")


@pytest.mark.parametrize("n", range(1, len(CT_LEAVES) + 1))
def test_rfc6962_reference_vectors(n: int) -> None:
    items = [bytes.fromhex(x) for x in CT_LEAVES[:n]]
    assert merkle_root(items).hex() == CT_ROOTS[n - 1]


@pytest.mark.parametrize("n", [*range(70), 127, 128, 129, 255, 256, 257, 1000])
def test_root_matches_the_recursive_definition(n: int) -> None:
    items = items_of(n)
    assert merkle_root(items) == reference_root(items)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 16, 17, 33, 100, 1000])
def test_runs_of_one_object_give_the_root_of_the_definition(n: int) -> None:
    """Runs of one item object (a block's results are mostly one leaf), broken by other
    items and by equal items that are other objects, at every parity of every level."""
    ok, fail = b"ok", b"fail"
    alike = bytes(bytearray(ok))  # equal to ok, another object
    assert alike is not ok
    patterns = [
        [ok] * n,
        [ok] * n + [fail] + [ok] * (n // 2),
        [fail] + [ok] * n,
        [ok if i % 7 else alike for i in range(n)],
        [ok if i % 3 else fail for i in range(n)],
    ]
    for items in patterns:
        root = merkle_root(items)
        assert root == reference_root(items)
        if n <= 100:  # the reference aunts cost O(n) each
            for index, proof in enumerate(merkle_proofs(items)):
                assert proof == MerkleProof(index, len(items), tuple(reference_aunts(items, index)))
                verify_merkle_proof(root, items[index], proof)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 16, 17, 33, 100])
def test_proofs_match_cometbft_aunts_and_verify(n: int) -> None:
    items = items_of(n)
    root = merkle_root(items)
    proofs = merkle_proofs(items)
    assert len(proofs) == n
    for index, proof in enumerate(proofs):
        assert proof == merkle_proof(items, index)
        assert proof == MerkleProof(index, n, tuple(reference_aunts(items, index)))
        verify_merkle_proof(root, items[index], proof)


def test_proof_of_a_missing_index_is_not_found() -> None:
    with pytest.raises(NotFound):
        merkle_proof(items_of(3), 3)
    with pytest.raises(NotFound):
        merkle_proof(items_of(3), -1)


def test_verify_rejects_an_index_out_of_range() -> None:
    items = items_of(4)
    root = merkle_root(items)
    with pytest.raises(InvalidProof, match="out of range"):
        verify_merkle_proof(root, items[0], MerkleProof(4, 4, merkle_proof(items, 0).aunts))
    with pytest.raises(InvalidProof, match="out of range"):
        verify_merkle_proof(root, items[0], MerkleProof(-1, 4, ()))
    with pytest.raises(InvalidProof, match="out of range"):
        verify_merkle_proof(h(b""), b"", MerkleProof(0, 0, ()))


def test_verify_rejects_a_wrong_number_of_aunts() -> None:
    items = items_of(5)
    root = merkle_root(items)
    proof = merkle_proof(items, 1)
    with pytest.raises(InvalidProof, match="needs 3 aunts, the proof has 2"):
        verify_merkle_proof(root, items[1], MerkleProof(1, 5, proof.aunts[:-1]))
    with pytest.raises(InvalidProof, match="aunts"):
        verify_merkle_proof(root, items[1], MerkleProof(1, 5, (*proof.aunts, root)))


def test_verify_rejects_an_aunt_of_the_wrong_length() -> None:
    items = items_of(2)
    with pytest.raises(InvalidProof, match="aunt 0 is 31 bytes"):
        verify_merkle_proof(merkle_root(items), items[0], MerkleProof(0, 2, (b"x" * 31,)))


def test_verify_rejects_a_wrong_item_or_root() -> None:
    items = items_of(6)
    root = merkle_root(items)
    proof = merkle_proof(items, 3)
    with pytest.raises(InvalidProof, match="root mismatch"):
        verify_merkle_proof(root, items[2], proof)
    with pytest.raises(InvalidProof, match="root mismatch"):
        verify_merkle_proof(h(b"other"), items[3], proof)


def test_single_item_proof_has_no_aunts() -> None:
    proof = merkle_proof([b"only"], 0)
    assert proof == MerkleProof(0, 1, ())
    verify_merkle_proof(h(b"\x00only"), b"only", proof)


def test_proof_list_round_trip() -> None:
    items = items_of(11)
    for proof in merkle_proofs(items):
        obj = proof.to_list()
        assert obj == [proof.index, proof.total, list(proof.aunts)]
        assert MerkleProof.from_list(obj) == proof


@pytest.mark.parametrize("obj", [
    None,
    (0, 1, []),
    [0, 1],
    [0, 1, [], 0],
    [True, 2, [bytes(32)]],
    [0, False, []],
    [1, 1, []],
    [-1, 1, []],
    [0, 2**63, []],
    [0, 2, b"x" * 32],
    [0, 2, [bytes(31)]],
    [0, 2, [bytearray(32)]],
    [0, 2, ["00" * 32]],
])
def test_from_list_rejects_malformed_proofs(obj: object) -> None:
    with pytest.raises(InvalidProof):
        MerkleProof.from_list(obj)
