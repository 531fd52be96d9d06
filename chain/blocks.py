"""Building a block that the state transition will accept (what a proposer does)."""

from __future__ import annotations

from collections.abc import Sequence

from chain.commits import commit_hash, evidence_hash, validators_hash
from chain.ledger import Ledger, StateReader
from chain.merkle import merkle_root
from chain.params import ChainConfig
from chain.transition import BLOCK_VERSION
from chain.types import Block, Commit, DuplicateVoteEvidence, Header, sha256
from chain.validatorsets import validator_set_at


def make_block(state: StateReader, app_hash: bytes, config: ChainConfig, *,
               txs: Sequence[bytes], proposer_address: bytes, time_ns: int,
               last_commit: Commit | None,
               evidence: Sequence[DuplicateVoteEvidence] = (),
               tx_hashes: Sequence[bytes] | None = None) -> Block:
    """The next block on top of ``state`` with every header hash filled in.

    ``time_ns`` must be the BFT time of ``last_commit`` (the genesis time for the first
    block); the caller chooses txs, evidence and proposer (``tx_hashes``: the txs'
    hashes, if known already). Nothing is validated here:
    :func:`chain.transition.apply_block` does that.
    """
    ledger = Ledger(state)
    meta = ledger.meta()
    height = meta.height + 1
    hashes = tuple(tx_hashes) if tx_hashes is not None else tuple([sha256(t) for t in txs])
    header = Header(
        version=BLOCK_VERSION,
        chain_id=config.chain_id,
        height=height,
        time_ns=time_ns,
        last_block_id=meta.block_id,
        last_commit_hash=commit_hash(last_commit),
        data_hash=merkle_root(hashes),
        validators_hash=validators_hash(validator_set_at(ledger, height, config)),
        next_validators_hash=validators_hash(validator_set_at(ledger, height + 1, config)),
        app_hash=app_hash,
        last_results_hash=meta.results_hash,
        evidence_hash=evidence_hash(evidence),
        proposer_address=proposer_address,
    )
    return Block.hashed(header, tuple(txs), hashes, tuple(evidence), last_commit)
