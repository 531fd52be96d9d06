"""A Byzantine validator, for fault tests only (``bizra-node start --test-equivocate``,
a hidden flag): everything it signs, it also signs a conflicting twin of, bypassing the
double-sign guard, and sends both.

- Every vote it casts is followed by a twin for another block: nil for a block, a
  block nobody proposed for nil. Peers that see both hold duplicate-vote evidence
  (§6), which the next proposers commit and the chain punishes.
- Every proposal it makes is followed by a twin: its block less its last tx (a valid
  block), or, for a block without txs, with its time moved (an invalid one). Peers
  take whichever reaches them first for the round.

Twins are made once per step, so a message sent again is sent with the same twin.
"""

from __future__ import annotations

import dataclasses

from chain.commits import proposal_sign_bytes, vote_sign_bytes
from chain.crypto import PrivateKey, address_of
from chain.merkle import merkle_root
from chain.types import Block, Proposal, Vote, sha256
from consensus.driver import ConsensusNetwork
from consensus.messages import PeerMessage, ProposalMessage, VoteMessage


def twin_block(block: Block) -> Block:
    """A block of the same height and proposer that differs from ``block``."""
    header = block.header
    if block.txs:
        txs = block.txs[:-1]
        header = dataclasses.replace(header, data_hash=merkle_root([sha256(t) for t in txs]))
        return dataclasses.replace(block, header=header, txs=txs)
    return dataclasses.replace(block, header=dataclasses.replace(header, time_ns=header.time_ns + 1))


class Equivocator:
    """A :class:`~consensus.driver.ConsensusNetwork` in front of ``network`` that sends,
    after each proposal and vote of validator ``key``, its signed twin."""

    def __init__(self, network: ConsensusNetwork, key: PrivateKey, chain_id: str) -> None:
        self.network = network
        self.key = key
        self.address = address_of(key.public_key)
        self.chain_id = chain_id
        self._twins: dict[tuple[int, int, int], ProposalMessage | VoteMessage] = {}

    async def publish(self, message: PeerMessage) -> None:
        await self.network.publish(message)
        twin: ProposalMessage | VoteMessage | None = None
        if isinstance(message, VoteMessage) and message.vote.validator_address == self.address:
            v = message.vote
            twin = self._twins.get((v.height, v.round, int(v.type)))
            if twin is None:
                self._forget_below(v.height)
                twin = self._twins[(v.height, v.round, int(v.type))] = VoteMessage(self._twin_vote(v))
        elif isinstance(message, ProposalMessage):
            p = message.proposal
            twin = self._twins.get((p.height, p.round, 0))
            if twin is None:
                twin = self._twins[(p.height, p.round, 0)] = self._twin_proposal(message)
        if twin is not None:
            await self.network.publish(twin)

    def _forget_below(self, height: int) -> None:
        for step in [s for s in self._twins if s[0] < height]:
            del self._twins[step]

    async def request_block(self, block_id: bytes) -> None:
        await self.network.request_block(block_id)

    def _twin_vote(self, vote: Vote) -> Vote:
        other = b"" if vote.block_id else sha256(b"twin" + vote.height.to_bytes(8, "big"))
        twin = dataclasses.replace(vote, block_id=other, signature=b"")
        return dataclasses.replace(twin, signature=self.key.sign(vote_sign_bytes(self.chain_id, twin)))

    def _twin_proposal(self, message: ProposalMessage) -> ProposalMessage:
        block = twin_block(message.block)
        twin = dataclasses.replace(message.proposal, block_id=block.block_id(), signature=b"")
        signed: Proposal = dataclasses.replace(
            twin, signature=self.key.sign(proposal_sign_bytes(self.chain_id, twin)))
        return ProposalMessage(signed, block)
