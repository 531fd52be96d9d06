"""Commits and the hashes a header commits to (§4): what makes a block final.

Pure functions used by the state transition (the block's ``last_commit``), by consensus
(building and checking certificates) and by block sync (checking a fetched block with
the next block's commit).
"""

from __future__ import annotations

from collections.abc import Sequence

from chain.codec import dumps
from chain.crypto import DOMAIN_PROPOSAL, DOMAIN_VOTE, SignedItem, address_of, sign_bytes, verify_many
from chain.errors import InvalidBlock
from chain.merkle import merkle_root
from chain.types import (
    Block,
    Commit,
    CommitFlag,
    DuplicateVoteEvidence,
    Proposal,
    SetMember,
    TxResult,
    Vote,
    encode,
    sha256,
)


def vote_sign_bytes(chain_id: str, vote: Vote) -> bytes:
    """What a validator signs for ``vote`` (§2: domain ``bizra/vote/v1``)."""
    return sign_bytes(DOMAIN_VOTE, chain_id, dumps(vote.unsigned_cbor()))


def proposal_sign_bytes(chain_id: str, proposal: Proposal) -> bytes:
    """What a proposer signs for ``proposal`` (§2: domain ``bizra/proposal/v1``)."""
    return sign_bytes(DOMAIN_PROPOSAL, chain_id, dumps(proposal.unsigned_cbor()))


def total_power(members: Sequence[SetMember]) -> int:
    total = 0
    for m in members:
        total += m.power
    return total


def validators_hash(members: Sequence[SetMember]) -> bytes:
    """Merkle root over ``[pubkey, voting_power]`` of the set, in set order."""
    return merkle_root([encode(m) for m in members])


def commit_hash(commit: Commit | None) -> bytes:
    """``last_commit_hash``: merkle root over the hashes of the commit's entries."""
    if commit is None:
        return merkle_root([])
    return merkle_root([sha256(encode(s)) for s in commit.signatures])


def evidence_hash(evidence: Sequence[DuplicateVoteEvidence]) -> bytes:
    return merkle_root([sha256(encode(e)) for e in evidence])


def check_body(block: Block, *, txs: bool = True) -> None:
    """InvalidBlock unless the block's txs, evidence and last commit are the ones its
    header commits to: a body that passes belongs to the header, so to the block id
    (what a node checks of a body fetched from a peer). ``txs=False``: the txs are not
    known yet (a compact block's, checked once it is rebuilt)."""
    h = block.header
    if txs and h.data_hash != block.data_root():
        raise InvalidBlock(f"block {h.height}: data_hash does not match the txs")
    if h.evidence_hash != evidence_hash(block.evidence):
        raise InvalidBlock(f"block {h.height}: evidence_hash does not match")
    if h.last_commit_hash != commit_hash(block.last_commit):
        raise InvalidBlock(f"block {h.height}: last_commit_hash does not match")


def results_hash(results: Sequence[TxResult]) -> bytes:
    """``last_results_hash``: merkle root over the hashes of ``[code, data]`` per tx."""
    hashed: dict[TxResult, bytes] = {}  # a block's results are mostly the same few
    leaves = []
    for r in results:
        leaf = hashed.get(r)
        if leaf is None:
            leaf = hashed[r] = sha256(encode(r))
        leaves.append(leaf)
    return merkle_root(leaves)


def verify_commit(chain_id: str, commit: Commit, members: Sequence[SetMember],
                  height: int, block_id: bytes) -> None:
    """Check that ``commit`` finalizes ``block_id`` at ``height`` for this validator set.

    Every present entry's signature must be valid and the entries for the block must hold
    more than 2/3 of the set's power. Raises InvalidBlock saying what is wrong.
    """
    checks = commit_checks(chain_id, commit, members, height, block_id)
    require_valid(checks, verify_many(checks))


def commit_checks(chain_id: str, commit: Commit, members: Sequence[SetMember],
                  height: int, block_id: bytes) -> list[SignedItem]:
    """Everything :func:`verify_commit` checks but the signatures, which it returns: the
    ``(public_key, sign_bytes, signature)`` of each present entry, for the caller to
    verify (in a batch, off the event loop) and pass to :func:`require_valid`."""
    if commit.height != height:
        raise InvalidBlock(f"commit is for height {commit.height}, expected {height}")
    if commit.block_id != block_id:
        raise InvalidBlock(f"commit is for block {commit.block_id.hex()}, expected {block_id.hex()}")
    if len(commit.signatures) != len(members):
        raise InvalidBlock(f"commit has {len(commit.signatures)} entries for a set of "
                           f"{len(members)} validators")
    checks: list[SignedItem] = []
    voted = 0
    for index, (entry, member) in enumerate(zip(commit.signatures, members, strict=True)):
        if entry.flag == CommitFlag.ABSENT:
            continue
        vote = commit.vote_for(index, address_of(member.pubkey))
        checks.append((member.pubkey, vote_sign_bytes(chain_id, vote), entry.signature))
        if entry.flag == CommitFlag.COMMIT:
            voted += member.power
    if voted * 3 <= total_power(members) * 2:
        raise InvalidBlock(f"commit: {voted} of {total_power(members)} voting power is not "
                           "more than 2/3")
    return checks


def require_valid(checks: Sequence[SignedItem], verdicts: Sequence[bool]) -> None:
    """InvalidBlock naming the first validator whose commit signature is not valid
    (``verdicts`` are the checks' results, in order)."""
    for ok, (pubkey, _, _) in zip(verdicts, checks, strict=True):
        if not ok:
            raise InvalidBlock(f"commit: invalid signature of validator {address_of(pubkey).hex()}")


def median_time(commit: Commit, members: Sequence[SetMember]) -> int:
    """CometBFT's BFT time: the voting-power-weighted median of the present entries'
    timestamps (absent entries excluded)."""
    weighted = sorted(
        (entry.timestamp_ns, member.power)
        for entry, member in zip(commit.signatures, members, strict=True)
        if entry.flag != CommitFlag.ABSENT
    )
    remaining = sum(power for _, power in weighted) // 2
    for ts, power in weighted:
        if remaining <= power:
            return ts
        remaining -= power
    raise InvalidBlock("commit has no signatures to take a time from")
