"""The equivocating validator of the fault tests: its twins conflict with what it sent
and are signed by it, so that peers hold evidence (votes) or must choose (proposals)."""

from __future__ import annotations

import pytest

from chain.commits import proposal_sign_bytes, vote_sign_bytes
from chain.crypto import address_of, verify
from chain.errors import InvalidBlock
from chain.transition import apply_block
from chain.types import Proposal, Transfer, Vote, VoteType
from consensus.equivocation import Equivocator, twin_block
from consensus.messages import BlockMessage, ProposalMessage, VoteMessage
from consensus.votes import evidence_of

from chainkit import LocalChain


class Sent:
    def __init__(self) -> None:
        self.messages: list[ProposalMessage | VoteMessage | BlockMessage] = []

    async def publish(self, message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        self.messages.append(message)

    async def request_block(self, block_id: bytes) -> None:
        raise AssertionError("not asked")


def test_the_twin_of_a_block_with_txs_is_another_valid_block_and_of_an_empty_one_an_invalid_one() -> None:
    chain = LocalChain()
    chain.run()
    block = chain.next_block([chain.tx(chain.users[0], Transfer(bytes(20), 1)),
                              chain.tx(chain.users[1], Transfer(bytes(20), 2))])
    twin = twin_block(block)
    assert twin.block_id() != block.block_id() and twin.txs == block.txs[:1]
    apply_block(chain.state, chain.state.app_hash, twin, chain.config)
    with pytest.raises(InvalidBlock, match="median"):
        apply_block(chain.state, chain.state.app_hash, twin_block(chain.next_block()), chain.config)


async def test_every_own_vote_and_proposal_is_followed_by_one_signed_twin() -> None:
    chain = LocalChain()
    key = chain.validator_keys[0]
    me = address_of(key.public_key)
    sent = Sent()
    equivocator = Equivocator(sent, key, chain.config.chain_id)
    block = chain.next_block()
    for block_id in (block.block_id(), b""):
        vote = Vote(VoteType.PREVOTE, 1, 0 if block_id else 1, block_id, 5, me, 0, b"")
        await equivocator.publish(VoteMessage(vote))
        await equivocator.publish(VoteMessage(vote))  # sent again: the same twin
    proposal = Proposal(1, 0, None, block.block_id(), 5, b"")
    await equivocator.publish(ProposalMessage(proposal, block))
    votes = [m.vote for m in sent.messages if isinstance(m, VoteMessage)]
    assert len(votes) == 8 and votes[1] == votes[3] and votes[5] == votes[7]
    for original, twin in ((votes[0], votes[1]), (votes[4], votes[5])):
        assert twin.block_id != original.block_id
        assert verify(key.public_key, vote_sign_bytes(chain.config.chain_id, twin), twin.signature)
        assert evidence_of(original, twin).vote_a.validator_address == me
    first, second = (m for m in sent.messages if isinstance(m, ProposalMessage))
    assert second.proposal.block_id == second.block.block_id() != first.proposal.block_id
    assert verify(key.public_key, proposal_sign_bytes(chain.config.chain_id, second.proposal),
                  second.proposal.signature)
