"""Consensus drivers in one trio process: a chain kept in memory and a network that
delivers every message to every other node (in order, at once)."""

from __future__ import annotations

from pathlib import Path

import trio

from chain.blocks import make_block
from chain.commits import median_time
from chain.crypto import PrivateKey, address_of
from chain.errors import InvalidBlock
from chain.genesis import Genesis
from chain.ledger import Ledger
from chain.state import chain_config, state_from_genesis
from chain.transition import BlockOutcome, apply_block
from chain.types import Block, Commit, DuplicateVoteEvidence, SetMember
from chain.validatorsets import validator_set_at
from consensus.driver import Driver
from consensus.messages import BlockMessage, ProposalMessage, VoteMessage
from consensus.proposer import Priorities, initial, next_height, voters
from consensus.signer import FileSigner
from consensus.wal import Wal


class MemoryChain:
    """The chain of ``genesis`` in memory: what a driver builds, checks and commits."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.config = chain_config(genesis)
        self.state = state_from_genesis(genesis)
        self.last_commit: Commit | None = None
        self._priorities: dict[int, Priorities] = {}
        self._outcomes: dict[bytes, BlockOutcome] = {}
        self.blocks: list[Block] = []
        self.commit_times: list[float] = []
        self.decided_in: list[float | None] = []
        self.last_build_s = 0.0
        """How long the last build took (what a node's chain expects the next to take)."""
        self.built_meanwhile: list[tuple[int, float, float]] = []
        """The height, start and end (trio's clock) of each :meth:`build_meanwhile`."""

    @property
    def height(self) -> int:
        return Ledger(self.state).meta().height

    def members(self, height: int) -> list[SetMember]:
        return validator_set_at(Ledger(self.state), height, self.config)

    def priorities(self, height: int) -> Priorities:
        if height not in self._priorities:
            members = voters(self.members(height))
            previous = self._priorities.get(height - 1)
            self._priorities[height] = (initial(members) if previous is None
                                        else next_height(previous, members))
        return self._priorities[height]

    def block_time(self) -> int:
        """The next block's header time: its last commit's median time."""
        if self.last_commit is None:
            return self.genesis.genesis_time_ns
        return median_time(self.last_commit, self.members(self.height))

    def next_block_time(self) -> int:
        return self.block_time()

    def build_estimate_s(self) -> float:
        return self.last_build_s

    async def build_meanwhile(self, proposer: bytes, evidence: list[DuplicateVoteEvidence]) -> None:
        """Nothing to prepare (its blocks carry no txs): records when it ran."""
        started = trio.current_time()
        try:
            await trio.sleep_forever()
        finally:
            self.built_meanwhile.append((self.height + 1, started, trio.current_time()))

    async def build_block(self, round_: int, proposer: bytes, evidence: list[DuplicateVoteEvidence], *,
                          within_s: float | None = None) -> Block:
        return make_block(self.state, self.state.app_hash, self.config, txs=[], proposer_address=proposer,
                          time_ns=self.block_time(), last_commit=self.last_commit, evidence=evidence)

    async def validate(self, block: Block) -> bool:
        try:
            outcome = apply_block(self.state, self.state.app_hash, block, self.config)
            self._outcomes[block.block_id()] = outcome
        except InvalidBlock:
            return False
        return True

    async def commit(self, block: Block, commit: Commit, decided_in_s: float | None = None) -> None:
        outcome = self._outcomes.pop(block.block_id(), None)
        if outcome is None:
            outcome = apply_block(self.state, self.state.app_hash, block, self.config)
        self.state.commit(outcome.changes)
        self.last_commit = commit
        self.blocks.append(block)
        self.commit_times.append(trio.current_time())
        self.decided_in.append(decided_in_s)
        self._outcomes.clear()
        self._priorities = {h: p for h, p in self._priorities.items() if h >= self.height}


class Hub:
    """Every published message goes to every other driver; block requests are answered
    by any node that has the block."""

    def __init__(self) -> None:
        self.drivers: list[Driver] = []
        self.down: set[int] = set()
        """Nodes cut off: nothing they send or are sent arrives."""

    def network_for(self, index: int) -> HubPort:
        return HubPort(self, index)


class HubPort:
    def __init__(self, hub: Hub, index: int) -> None:
        self.hub = hub
        self.index = index

    async def publish(self, message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        if self.index in self.hub.down:
            return
        for i, driver in enumerate(self.hub.drivers):
            if i != self.index and i not in self.hub.down:
                await driver.deliver(message)

    async def request_block(self, block_id: bytes) -> None:
        for i, driver in enumerate(self.hub.drivers):
            block = next((b for b in getattr(driver.chain, "blocks", []) if b.block_id() == block_id), None)
            if i != self.index and block is not None:
                await self.hub.drivers[self.index].deliver(BlockMessage(block))
                return


class SlowChain(MemoryChain):
    """A chain whose every block takes ``check_s`` seconds to check, as a full one does."""

    check_s = 2.0

    async def validate(self, block: Block) -> bool:
        await trio.sleep(self.check_s)
        return await super().validate(block)


class EarlyCommitChain(SlowChain):
    """A chain whose node saw its last commit with earlier precommits than the ones the
    block carries (another set of them): it takes the height's header time to be 5 ms
    earlier than the block's."""

    def next_block_time(self) -> int:
        return self.block_time() - 5_000_000


class SlowBuildChain(MemoryChain):
    """A chain whose every block takes ``build_s`` seconds to build."""

    build_s = 1.0

    async def build_block(self, round_: int, proposer: bytes, evidence: list[DuplicateVoteEvidence], *,
                          within_s: float | None = None) -> Block:
        await trio.sleep(self.build_s)
        self.last_build_s = self.build_s
        return await super().build_block(round_, proposer, evidence)


def make_driver(genesis: Genesis, key: PrivateKey, hub: Hub, index: int, home: Path,
                chain_type: type[MemoryChain] = MemoryChain) -> Driver:
    chain = chain_type(genesis)
    home.mkdir(parents=True, exist_ok=True)
    signer = FileSigner(key, home / "signer.json", genesis.chain_id)
    wal = Wal.open(home / "wal", start_height=chain.height)

    def clock_ns() -> int:
        return genesis.genesis_time_ns + int(trio.current_time() * 1e9)

    driver = Driver(chain, hub.network_for(index), wal, signer, address_of(key.public_key), genesis.chain_id,
                    genesis.params, clock_ns)
    hub.drivers.append(driver)
    return driver
