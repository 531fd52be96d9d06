"""Consensus messages between peers: a proposal whose block is too large to gossip
travels with its block compact, rebuilt from the mempool at once; or by id, when the
compact block does not fit either, its compact block pushed to peers directly: a peer
rebuilds the block from the push, or, when none comes, fetches it compact and rebuilds
it (whole from a peer that does not serve it compact), once, however often the
proposal comes again. A compact block that is not the proposal's costs its sender."""

from __future__ import annotations

from collections.abc import Collection

import pytest
import trio
from exchangekit import Stalling
from gossipkit import accept, checking

from chain.codec import dumps
from chain.types import Block, Proposal, encode, tx_hash
from consensus.messages import BlockMessage, ProposalMessage, VoteMessage
from node import consensus_gossip
from node.consensus_gossip import COMPACT_PROPOSAL, MAX_FETCHES, PROPOSAL_BY_ID, PUSH_WAIT_S, ConsensusGossip
from p2p.blocks import BlockExchange, CompactBlock, short_id
from p2p.memory import MemoryHub, MemoryNetwork
from p2p.network import MAX_GOSSIP_BYTES, Validation, request_protocol
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

    def encoded_block(self, height: int) -> bytes | None:
        return self.store.blocks.encoded_block(height)

    def encoded_commit(self, height: int) -> None:
        return None

    def block_by_id(self, block_id: bytes) -> Block | None:
        self.asked += 1
        return self.store.blocks.block_by_id(block_id)


Handed = list[ProposalMessage | VoteMessage | BlockMessage]


async def propose(block: Block, store: Store, chain_id: str, *, rounds: tuple[int, ...] = (0,),
                  known: Collection[bytes] = (), compact_served: bool = True,
                  colliding: dict[bytes, tuple[bytes, bytes]] | None = None, by_id: bool = False,
                  ) -> tuple[Handed, ConsensusGossip, CountingSource]:
    """A proposer gossips proposals of ``block`` (one per round in ``rounds``; ``by_id``:
    without the compact block, as a block too large for it goes) to a peer whose mempool
    holds the txs in ``known`` (and ``colliding``: other txs by the short ids of the
    block's); what the peer's consensus was handed, its gossip, and the proposer's block
    source."""
    source = CountingSource(store)
    hub = MemoryHub()
    a, b = hub.join("proposer"), hub.join("peer")
    hub.connect(a.local_id, b.local_id)
    sender = ConsensusGossip(a, chain_id, BlockExchange(a, chain_id, source, accept, max_block_bytes=1 << 22),
                             accept)
    if not compact_served:  # a peer that does not speak the compact-block protocol
        del a._handlers[request_protocol(chain_id, "compact-block", version=2)]
    mempool = {short_id(tx_hash(tx)): (tx_hash(tx), tx) for tx in block.txs if tx_hash(tx) in set(known)}
    mempool.update(colliding or {})
    receiver_blocks = BlockExchange(b, chain_id, source, accept, max_block_bytes=1 << 22)
    receiver = ConsensusGossip(b, chain_id, receiver_blocks, accept, mempool.get)
    delivered: Handed = []

    async def deliver(message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        delivered.append(message)

    async def ignore(message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        pass

    async with trio.open_nursery() as nursery:
        await nursery.start(receiver_blocks.run)
        await nursery.start(receiver.run, deliver)
        await nursery.start(sender.run, ignore)
        for sent, round_ in enumerate(rounds, 1):
            proposal = Proposal(1, round_, None, block.block_id(), 1, bytes(64))
            if by_id:
                await a.publish(sender.topic, dumps([PROPOSAL_BY_ID, proposal.to_cbor()]))
            else:
                await sender.publish(ProposalMessage(proposal, block))
            with trio.fail_after(5):
                while len(delivered) < sent:
                    await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert all(isinstance(m, ProposalMessage) and m.block == block for m in delivered)
    return delivered, receiver, source


def large_block() -> tuple[Block, Store, str]:
    chain = LocalChain()
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    block = commit_next(chain, store, transfers(chain, 600))
    assert len(encode(block)) > MAX_GOSSIP_BYTES
    return block, store, chain.config.chain_id


async def test_a_large_proposal_gossiped_again_is_handed_over_without_fetching_its_block_again() -> None:
    block, store, chain_id = large_block()
    delivered, receiver, source = await propose(block, store, chain_id, rounds=(0, 0, 1),
                                                known=[tx_hash(tx) for tx in block.txs], by_id=True)
    assert [m.proposal.round for m in delivered if isinstance(m, ProposalMessage)] == [0, 0, 1]
    assert source.asked == 1  # its compact form, once
    assert receiver.txs_named == receiver.txs_found == 600 and receiver.whole_fetches == 0


async def test_a_proposed_block_is_rebuilt_from_the_mempool_and_only_the_missing_txs_are_fetched() -> None:
    block, store, chain_id = large_block()
    known = [tx_hash(tx) for tx in block.txs[::3]]
    _, receiver, source = await propose(block, store, chain_id, known=known, by_id=True)
    assert receiver.txs_named == 600 and receiver.txs_found == len(known) == 200
    assert receiver.whole_fetches == 0 and source.asked == 2  # the compact block, then its missing txs


async def test_a_short_id_that_matches_another_tx_here_makes_the_block_come_whole() -> None:
    """Two txs may share a short id: the block rebuilt with the wrong one is not the one
    proposed (its header's data hash says so), so it is fetched whole, and the peer that
    served it keeps its score."""
    block, store, chain_id = large_block()
    other = transfers(LocalChain(), 1)[0]
    colliding = {short_id(tx_hash(block.txs[7])): (tx_hash(other), other)}
    delivered, receiver, _ = await propose(block, store, chain_id, known=[tx_hash(tx) for tx in block.txs],
                                           colliding=colliding, by_id=True)
    assert len(delivered) == 1 and receiver.whole_fetches == 1
    assert receiver.network.score(PeerId(next(iter(receiver.network.peers())))) == 0


async def test_a_peer_without_compact_blocks_serves_the_block_whole() -> None:
    block, store, chain_id = large_block()
    _, receiver, _ = await propose(block, store, chain_id, compact_served=False, by_id=True)
    assert receiver.whole_fetches == 1 and receiver.txs_named == 0


async def test_a_proposal_with_its_compact_block_is_rebuilt_without_asking_for_the_block() -> None:
    block, store, chain_id = large_block()
    known = [tx_hash(tx) for tx in block.txs[::3]]
    delivered, receiver, source = await propose(block, store, chain_id, rounds=(0, 1), known=known)
    assert [m.proposal.round for m in delivered if isinstance(m, ProposalMessage)] == [0, 1]
    assert receiver.txs_named == 600 and receiver.txs_found == 200  # rebuilt once
    assert receiver.whole_fetches == 0 and source.asked == 1  # only its missing txs


async def test_a_compact_block_that_is_not_the_proposals_costs_its_sender() -> None:
    block, store, chain_id = large_block()
    other = commit_next(LocalChain(), Store.open(MemoryKV(), LocalChain().genesis, GENESIS_HASH),
                        transfers(LocalChain(), 3))
    hub = MemoryHub()
    a, b = hub.join("proposer"), hub.join("peer")
    hub.connect(a.local_id, b.local_id)
    receiver = ConsensusGossip(b, chain_id, BlockExchange(b, chain_id, CountingSource(store), accept,
                                                          max_block_bytes=1 << 22), accept)
    proposal = Proposal(1, 0, None, block.block_id(), 1, bytes(64))
    lying = dumps([COMPACT_PROPOSAL, proposal.to_cbor(), CompactBlock.of(other).block.to_cbor()])
    await a.publish(receiver.topic, lying)
    assert b.score(a.local_id) < 0 and receiver._messages.statistics().current_buffer_used == 0


async def test_a_proposal_too_large_to_gossip_compact_is_pushed_and_rebuilt_without_a_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consensus_gossip, "MAX_GOSSIP_BYTES", 2_048)  # the compact block does not fit
    block, store, chain_id = large_block()
    delivered, receiver, source = await propose(block, store, chain_id, rounds=(0, 0, 1),
                                                known=[tx_hash(tx) for tx in block.txs])
    assert [m.proposal.round for m in delivered if isinstance(m, ProposalMessage)] == [0, 0, 1]
    assert source.asked == 0 and receiver.pushes_used == 1
    assert receiver.txs_named == receiver.txs_found == 600 and receiver.whole_fetches == 0


def push_pair(block: Block, store: Store, chain_id: str, exchange: type[BlockExchange] = BlockExchange,
              screen: consensus_gossip.Screen = accept
              ) -> tuple[MemoryNetwork, ConsensusGossip, CountingSource]:
    """A proposer's network, the gossip of a peer holding ``block``'s txs, and the
    proposer's block source."""
    hub, source = MemoryHub(), CountingSource(store)
    a, b = hub.join("proposer"), hub.join("peer")
    hub.connect(a.local_id, b.local_id)
    BlockExchange(a, chain_id, source, accept, max_block_bytes=1 << 22)
    mempool = {short_id(tx_hash(tx)): (tx_hash(tx), tx) for tx in block.txs}
    receiver = ConsensusGossip(b, chain_id, exchange(b, chain_id, source, accept, max_block_bytes=1 << 22),
                               screen, mempool.get)
    return a, receiver, source


def push_of(block: Block, proposal: Proposal) -> bytes:
    return dumps([COMPACT_PROPOSAL, proposal.to_cbor(), CompactBlock.of(block).block.to_cbor()])


async def test_a_push_that_comes_while_the_block_is_fetched_by_id_wins() -> None:
    """The bare proposal came first; its block's fetch, which never ends, started after
    ``PUSH_WAIT_S``; the push that comes later is what the block is rebuilt from."""
    block, store, chain_id = large_block()
    proposer, receiver, _ = push_pair(block, store, chain_id, Stalling)
    proposal = Proposal(1, 0, None, block.block_id(), 1, bytes(64))
    delivered: Handed = []

    async def deliver(message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        delivered.append(message)

    async with trio.open_nursery() as nursery:
        await nursery.start(receiver.run, deliver)
        await proposer.publish(receiver.topic, dumps([PROPOSAL_BY_ID, proposal.to_cbor()]))
        await trio.sleep(PUSH_WAIT_S + 0.2)
        assert not delivered and receiver._fetching == {block.block_id()}
        push = push_of(block, proposal)
        assert await proposer.send(receiver.network.local_id, receiver.push_protocol, push)
        with trio.fail_after(5):
            while not delivered:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert delivered == [ProposalMessage(proposal, block)] and receiver.pushes_used == 1


async def test_a_push_that_is_not_a_valid_compact_proposal_costs_its_sender() -> None:
    block, store, chain_id = large_block()
    other = commit_next(LocalChain(), Store.open(MemoryKV(), LocalChain().genesis, GENESIS_HASH),
                        transfers(LocalChain(), 3))
    forged = Proposal(1, 0, None, block.block_id(), 1, bytes(64))
    pushes = [b"\xff not cbor", dumps([PROPOSAL_BY_ID, forged.to_cbor()]),  # no compact block
              push_of(other, forged),  # a compact block that is not the proposal's
              push_of(block, forged)]  # a proposal its proposer did not sign
    refuse = checking(lambda *_: Validation.REJECT)
    for push in pushes:
        proposer, receiver, source = push_pair(block, store, chain_id, screen=refuse)

        async def ignore(message: ProposalMessage | VoteMessage | BlockMessage) -> None:
            raise AssertionError(f"handed over: {message}")

        async with trio.open_nursery() as nursery:
            await nursery.start(receiver.run, ignore)
            assert await proposer.send(receiver.network.local_id, receiver.push_protocol, push)
            with trio.fail_after(5):
                while receiver.network.score(proposer.local_id) == 0:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert not receiver._fetching and receiver.pushes_used == 0 and source.asked == 0


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
