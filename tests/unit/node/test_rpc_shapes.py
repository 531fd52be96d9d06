"""CometBFT's JSON for what a wallet checks itself: a tx's merkle proof against its
block's data hash (``tx`` and ``tx_search`` with ``prove``)."""

from __future__ import annotations

import base64

from chain.merkle import MerkleProof, leaf_hash, verify_merkle_proof
from chain.types import sha256
from node.rpc import shapes
from storage.memory import MemoryKV
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH, commit_next, transfers


def test_each_txs_proof_leads_from_its_hash_to_the_blocks_data_hash() -> None:
    chain = LocalChain()
    block = commit_next(chain, Store.open(MemoryKV(), chain.genesis, GENESIS_HASH), transfers(chain, 7))
    for index, tx in enumerate(block.txs):
        proof = shapes.tx_proof(block, index)
        path = proof["proof"]
        assert proof["root_hash"] == block.header.data_hash.hex().upper()
        assert base64.b64decode(proof["data"]) == tx
        assert (path["total"], path["index"]) == ("7", str(index))
        assert base64.b64decode(path["leaf_hash"]) == leaf_hash(sha256(tx))
        aunts = tuple(base64.b64decode(a) for a in path["aunts"])
        verify_merkle_proof(block.header.data_hash, sha256(tx), MerkleProof(index, 7, aunts))


def test_a_lone_txs_proof_has_no_aunts() -> None:
    chain = LocalChain()
    block = commit_next(chain, Store.open(MemoryKV(), chain.genesis, GENESIS_HASH), transfers(chain, 1))
    path = shapes.tx_proof(block, 0)["proof"]
    assert "aunts" not in path and base64.b64decode(path["leaf_hash"]) == block.header.data_hash
