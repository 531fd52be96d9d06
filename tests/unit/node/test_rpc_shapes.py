"""CometBFT's JSON for what a wallet checks itself: a tx's merkle proof against its
block's data hash (``tx`` and ``tx_search`` with ``prove``); and for what a devnet rarely
shows: evidence."""

from __future__ import annotations

import base64

from chain.crypto import address_of
from chain.errors import InvalidBlock
from chain.merkle import MerkleProof, leaf_hash, verify_merkle_proof
from chain.types import DuplicateVoteEvidence, SetMember, Vote, VoteType, sha256
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


def test_evidence_has_cometbfts_duplicate_vote_shape_with_both_votes_and_the_powers() -> None:
    chain = LocalChain(validators=3)
    members = chain.members(1)
    votes = [Vote(VoteType.PREVOTE, 1, 0, block_id, 1_700_000_000_123_456_789,
                  address_of(members[2].pubkey), 2, bytes([i]) * 64)
             for i, block_id in enumerate((b"\x01" * 32, b"\x02" * 32))]
    shown = shapes.evidence(DuplicateVoteEvidence(votes[0], votes[1]), chain.members)
    assert shown["type"] == "tendermint/DuplicateVoteEvidence"
    value = shown["value"]
    assert value["TotalVotingPower"] == str(sum(m.power for m in members))
    assert value["ValidatorPower"] == str(members[2].power)
    assert value["Timestamp"] == "2023-11-14T22:13:20.123456789Z"
    assert value["vote_a"] == {
        "type": 1, "height": "1", "round": 0,
        "block_id": {"hash": "01" * 32, "parts": {"total": 1, "hash": "01" * 32}},
        "timestamp": "2023-11-14T22:13:20.123456789Z",
        "validator_address": address_of(members[2].pubkey).hex().upper(), "validator_index": 2,
        "signature": base64.b64encode(bytes(64)).decode(), "extension": None, "extension_signature": None}
    assert value["vote_b"]["block_id"]["hash"] == "02" * 32

    def forgotten(height: int) -> list[SetMember]:
        raise InvalidBlock(f"no validator set for height {height}")

    unknown = shapes.evidence(DuplicateVoteEvidence(votes[0], votes[1]), forgotten)["value"]
    assert (unknown["TotalVotingPower"], unknown["ValidatorPower"]) == ("0", "0")
