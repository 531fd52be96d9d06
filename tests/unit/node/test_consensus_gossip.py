"""Consensus messages between peers: a proposal whose block is too large to gossip
travels by id and its block is fetched once, however often the proposal comes again."""

from __future__ import annotations

import trio
from gossipkit import accept

from chain.types import Block, Proposal, encode
from consensus.messages import BlockMessage, ProposalMessage, VoteMessage
from node.consensus_gossip import MAX_FETCHES, ConsensusGossip
from p2p.blocks import BlockExchange
from p2p.memory import MemoryHub
from p2p.network import MAX_GOSSIP_BYTES
from p2p.peers import PeerId
from storage.memory import MemoryKV
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH, commit_next, transfers


class CountingSource:
    """The server's blocks by id, counting how often each is asked for."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.asked = 0

    def block(self, height: int) -> Block | None:
        return self.store.blocks.block(height)

    def commit(self, height: int) -> None:
        return None

    def block_by_id(self, block_id: bytes) -> Block | None:
        self.asked += 1
        return self.store.blocks.block_by_id(block_id)


async def test_a_large_proposal_gossiped_again_is_handed_over_without_fetching_its_block_again() -> None:
    chain = LocalChain()
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    block = commit_next(chain, store, transfers(chain, 600))
    assert len(encode(block)) > MAX_GOSSIP_BYTES
    source = CountingSource(store)
    hub = MemoryHub()
    a, b = hub.join("proposer"), hub.join("peer")
    hub.connect(a.local_id, b.local_id)
    chain_id = chain.config.chain_id
    sender = ConsensusGossip(a, chain_id, BlockExchange(a, chain_id, source, accept, max_block_bytes=1 << 22),
                             accept)
    receiver_blocks = BlockExchange(b, chain_id, source, accept, max_block_bytes=1 << 22)
    receiver = ConsensusGossip(b, chain_id, receiver_blocks, accept)
    delivered: list[ProposalMessage | VoteMessage | BlockMessage] = []

    async def deliver(message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        delivered.append(message)

    async def ignore(message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        pass

    proposals = [Proposal(1, r, None, block.block_id(), 1, bytes(64)) for r in (0, 0, 1)]
    async with trio.open_nursery() as nursery:
        await nursery.start(receiver_blocks.run)
        await nursery.start(receiver.run, deliver)
        await nursery.start(sender.run, ignore)
        for sent, proposal in enumerate(proposals, 1):  # the first, again (re-gossip), a later round's
            await sender.publish(ProposalMessage(proposal, block))
            with trio.fail_after(5):
                while len(delivered) < sent:
                    await trio.sleep(0.01)
        nursery.cancel_scope.cancel()

    assert all(isinstance(m, ProposalMessage) and m.block == block for m in delivered)
    assert [m.proposal.round for m in delivered if isinstance(m, ProposalMessage)] == [0, 0, 1]
    assert source.asked == 1


class Stalling(BlockExchange):
    """Block fetches that never end (a peer that never answers)."""

    async def fetch_block(self, peer: PeerId, block_id: bytes) -> Block | None:
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def test_block_fetches_under_way_are_bounded() -> None:
    chain = LocalChain()
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    net = MemoryHub().join("node")
    gossip = ConsensusGossip(net, chain.config.chain_id,
                             Stalling(net, chain.config.chain_id, CountingSource(store), accept,
                                      max_block_bytes=1 << 22), accept)

    async def ignore(message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        pass

    async with trio.open_nursery() as nursery:
        await nursery.start(gossip.run, ignore)
        for i in range(5 * MAX_FETCHES):  # distinct blocks, each proposed by a peer that never answers
            await gossip._on_proposal(Proposal(1, i, None, i.to_bytes(32, "big"), 1, bytes(64)), PeerId("p"))
        await gossip.request_block(bytes(32))
        await trio.sleep(0.1)
        assert len(gossip._fetching) == MAX_FETCHES
        nursery.cancel_scope.cancel()
