"""What gossip validation makes of a peer's consensus message (``Driver.screen``), and
the driver's own refusal of rounds far ahead: checked before any work for them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

import consensus.driver
from chain.commits import proposal_sign_bytes, vote_sign_bytes
from chain.crypto import PrivateKey, address_of, verify
from chain.types import Proposal, Vote, VoteType
from consensus.driver import Driver, Screened
from consensus.machine import MAX_ROUNDS_AHEAD
from consensus.messages import BlockMessage, PeerMessage, ProposalMessage, VoteMessage

from chainkit import LocalChain
from consensuskit import Hub, make_driver

LOCAL = LocalChain(validators=4)
KEYS = {address_of(k.public_key): k for k in LOCAL.validator_keys}


@pytest.fixture
async def driver(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> AsyncIterator[Driver]:
    """Validator 0 alone, deciding height 1 (three others never come: no quorum)."""
    running = make_driver(LOCAL.genesis, LOCAL.validator_keys[0], Hub(), 0, tmp_path / "node0")
    async with trio.open_nursery() as nursery:
        await nursery.start(running.run)
        while running.machine is None or running.machine.round < 0:
            await trio.sleep(0.5)
        yield running
        nursery.cancel_scope.cancel()


def vote(driver: Driver, *, index: int = 1, height: int = 1, round_: int = 0,
         key: PrivateKey | None = None) -> VoteMessage:
    members = driver.chain.members(1)
    address = address_of(members[index].pubkey)
    unsigned = Vote(VoteType.PREVOTE, height, round_, b"", 1, address, index, bytes(64))
    signature = (key or KEYS[address]).sign(vote_sign_bytes(LOCAL.genesis.chain_id, unsigned))
    return VoteMessage(dataclasses.replace(unsigned, signature=signature))


def proposal(round_: int, key: PrivateKey) -> Proposal:
    unsigned = Proposal(1, round_, None, bytes(32), 1, bytes(64))
    signature = key.sign(proposal_sign_bytes(LOCAL.genesis.chain_id, unsigned))
    return dataclasses.replace(unsigned, signature=signature)


def verdict(driver: Driver, message: PeerMessage | Proposal) -> Screened:
    """The driver's screening of ``message``, with the signature it leaves to check
    checked (and vouched for when valid), as the node does in gossip validation."""
    screened = driver.screen(message)
    if isinstance(screened, Screened):
        return screened
    if not verify(*screened):
        return Screened.FORGED
    driver.vouch(screened)
    return Screened.VALID


async def test_votes_are_screened_by_height_round_and_signature(driver: Driver) -> None:
    assert verdict(driver, vote(driver)) is Screened.VALID
    assert verdict(driver, vote(driver, height=2)) is Screened.VALID  # the next height's set is known
    stranger = PrivateKey.generate()
    assert verdict(driver, vote(driver, key=stranger)) is Screened.FORGED
    wrong_index = vote(driver)
    wrong_index = VoteMessage(dataclasses.replace(wrong_index.vote, validator_index=2))
    assert verdict(driver, wrong_index) is Screened.FORGED
    assert verdict(driver, vote(driver, height=3)) is Screened.IRRELEVANT
    assert verdict(driver, vote(driver, round_=MAX_ROUNDS_AHEAD + 1)) is Screened.IRRELEVANT
    assert verdict(driver, vote(driver, round_=2**63)) is Screened.IRRELEVANT


async def test_proposals_are_screened_against_their_rounds_proposer(driver: Driver) -> None:
    machine = driver.machine
    assert machine is not None
    for round_ in range(3):
        proposer = KEYS[machine.proposer(round_)]
        other = next(k for a, k in KEYS.items() if a != machine.proposer(round_))
        assert verdict(driver, proposal(round_, proposer)) is Screened.VALID
        assert verdict(driver, proposal(round_, other)) is Screened.FORGED


async def test_a_round_far_ahead_costs_no_proposer_selection(driver: Driver) -> None:
    """Selecting a round's proposer takes time in proportion to the round: a round near
    2^63 would stall the node for good. It is refused before."""
    machine = driver.machine
    assert machine is not None
    far = 2**62
    assert driver.screen(proposal(far, LOCAL.validator_keys[0])) is Screened.IRRELEVANT
    block = LOCAL.next_block()
    forged = ProposalMessage(dataclasses.replace(proposal(far, LOCAL.validator_keys[0]),
                                                 block_id=block.block_id()), block)
    await driver.deliver(forged)  # as if it came another way than gossip
    await trio.sleep(1)
    assert far not in machine.proposals and machine.round < 5


async def test_bodies_of_the_next_height_are_neither_passed_on_nor_kept(driver: Driver) -> None:
    body = BlockMessage(dataclasses.replace(LOCAL.next_block(), header=dataclasses.replace(
        LOCAL.next_block().header, height=2)))
    assert driver.screen(body) is Screened.IRRELEVANT
    await driver.deliver(body)
    await driver.deliver(vote(driver, height=2))
    await trio.sleep(1)
    assert [type(m) for m in driver._next_height] == [VoteMessage]


async def test_a_signature_vouched_for_is_not_checked_again(driver: Driver) -> None:
    message = vote(driver)
    screened = driver.screen(message)
    assert isinstance(screened, tuple)  # left to check
    driver.vouch(screened)
    assert driver.screen(message) is Screened.VALID


async def test_the_next_heights_messages_kept_are_bounded(driver: Driver,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consensus.driver, "MAX_BUFFERED_NEXT_HEIGHT", 5)
    for round_ in range(20):
        await driver.deliver(vote(driver, height=2, round_=round_))
    await trio.sleep(1)
    assert len(driver._next_height) == 5
