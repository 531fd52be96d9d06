"""A validator's driver killed in the middle of a height comes back from its WAL and
signer state: it sends the same vote again (never a new one), then finishes the height."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from chain.blocks import make_block
from chain.commits import proposal_sign_bytes, vote_sign_bytes
from chain.crypto import PrivateKey, address_of
from chain.types import Block, Proposal, Vote, VoteType
from consensus.driver import Driver
from consensus.messages import BlockMessage, ProposalMessage, VoteMessage
from consensus.signer import FileSigner
from consensus.wal import Wal

from chainkit import LocalChain
from consensuskit import MemoryChain


class RecordingNetwork:
    def __init__(self) -> None:
        self.published: list[ProposalMessage | VoteMessage | BlockMessage] = []

    async def publish(self, message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        self.published.append(message)

    async def request_block(self, block_id: bytes) -> None:
        pass

    def votes(self, vote_type: VoteType) -> list[Vote]:
        return [m.vote for m in self.published if isinstance(m, VoteMessage) and m.vote.type == vote_type]


class Scene:
    """Height 1 of a 4-validator chain seen by validator ``me``, who does not propose."""

    def __init__(self, home: Path) -> None:
        self.local = LocalChain(validators=4)
        self.chain = MemoryChain(self.local.genesis)
        self.chain_id = self.local.genesis.chain_id
        self.home = home
        keys = {address_of(k.public_key): k for k in self.local.validator_keys}
        self.members = [address_of(m.pubkey) for m in self.chain.members(1)]
        self.keys = [keys[a] for a in self.members]
        proposer = self.chain.priorities(1).proposer_address()
        self.proposer = self.members.index(proposer)
        self.me = next(i for i in range(4) if i != self.proposer)
        self.others = [i for i in range(4) if i != self.me]
        self.block: Block = make_block(self.chain.state, self.chain.state.app_hash, self.chain.config, txs=[],
                                       proposer_address=proposer, time_ns=self.local.genesis.genesis_time_ns,
                                       last_commit=None)

    def driver(self, network: RecordingNetwork) -> tuple[Driver, Wal]:
        key = self.keys[self.me]
        wal = Wal.open(self.home / "wal", start_height=self.chain.height)
        signer = FileSigner(key, self.home / "signer.json", self.chain_id)
        genesis_time = self.local.genesis.genesis_time_ns

        def clock_ns() -> int:
            return genesis_time + int(trio.current_time() * 1e9)

        return Driver(self.chain, network, wal, signer, address_of(key.public_key), self.chain_id,
                      self.local.genesis.params, clock_ns), wal

    def proposal(self) -> ProposalMessage:
        unsigned = Proposal(1, 0, None, self.block.block_id(), self.local.genesis.genesis_time_ns + 1, b"")
        signature = self.keys[self.proposer].sign(proposal_sign_bytes(self.chain_id, unsigned))
        return ProposalMessage(dataclasses.replace(unsigned, signature=signature), self.block)

    def vote(self, index: int, vote_type: VoteType, key: PrivateKey | None = None) -> VoteMessage:
        unsigned = Vote(vote_type, 1, 0, self.block.block_id(), self.local.genesis.genesis_time_ns + 7,
                        self.members[index], index, b"")
        signature = (key or self.keys[index]).sign(vote_sign_bytes(self.chain_id, unsigned))
        return VoteMessage(dataclasses.replace(unsigned, signature=signature))


async def start(driver: Driver, nursery: trio.Nursery) -> trio.CancelScope:
    """Run ``driver`` until the returned scope is cancelled (the process is killed)."""
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            await driver.run()

    nursery.start_soon(run)
    return scope


async def wait_for(check: Callable[[], object]) -> None:
    with trio.fail_after(60):
        while not check():
            await trio.sleep(0.1)


async def test_a_restarted_validator_resends_its_vote_and_finishes_the_height(
        autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    first_net = RecordingNetwork()
    async with trio.open_nursery() as nursery:
        driver, wal = scene.driver(first_net)
        scope = await start(driver, nursery)
        await trio.sleep(6.5)  # the height starts at genesis time + 6 s
        await driver.deliver(scene.proposal())
        await wait_for(lambda: first_net.votes(VoteType.PREVOTE))
        scope.cancel()  # killed: its WAL and signer state stay on disk
    wal.close()
    (prevote,) = first_net.votes(VoteType.PREVOTE)
    assert prevote.block_id == scene.block.block_id()

    second_net = RecordingNetwork()
    async with trio.open_nursery() as nursery:
        driver, wal = scene.driver(second_net)
        scope = await start(driver, nursery)
        await wait_for(lambda: second_net.votes(VoteType.PREVOTE))
        assert second_net.votes(VoteType.PREVOTE) == [prevote]  # the same vote, same signature
        for i in scene.others:
            await driver.deliver(scene.vote(i, VoteType.PREVOTE))
        await wait_for(lambda: second_net.votes(VoteType.PRECOMMIT))
        for i in scene.others:
            await driver.deliver(scene.vote(i, VoteType.PRECOMMIT))
        await wait_for(lambda: scene.chain.height == 1)
        scope.cancel()
    wal.close()
    assert scene.chain.blocks == [scene.block]


async def test_messages_with_bad_signatures_are_refused(
        autojump_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scene = Scene(tmp_path)
    net = RecordingNetwork()
    caplog.set_level(logging.WARNING)
    async with trio.open_nursery() as nursery:
        driver, wal = scene.driver(net)
        scope = await start(driver, nursery)
        await trio.sleep(6.5)
        await driver.deliver(scene.proposal())
        impostor = PrivateKey.from_seed(bytes(32))
        for i in scene.others:
            await driver.deliver(scene.vote(i, VoteType.PREVOTE, key=impostor))
        await trio.sleep(0.5)
        assert net.votes(VoteType.PRECOMMIT) == []  # forged prevotes counted for nothing
        scope.cancel()
    wal.close()
    refused = [r for r in caplog.records if r.getMessage() == "consensus message refused"]
    assert len(refused) == 3


async def test_a_block_nobody_asked_for_is_not_even_validated(
        autojump_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scene = Scene(tmp_path)
    net = RecordingNetwork()
    caplog.set_level(logging.WARNING)
    validated: list[Block] = []
    original = scene.chain.validate

    async def counting(block: Block) -> bool:
        validated.append(block)
        return await original(block)

    scene.chain.validate = counting  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        driver, wal = scene.driver(net)
        scope = await start(driver, nursery)
        await trio.sleep(6.5)
        await driver.deliver(BlockMessage(scene.block))
        await trio.sleep(0.5)
        scope.cancel()
    wal.close()
    assert validated == []
    assert any(getattr(r, "problem", "") == "a block nobody proposed or asked for" for r in caplog.records)
