"""A proposal too large for gossip, between two real libp2p hosts: its compact block
(about 70 KB, above a gossip message's 60 KiB) crosses on the proposer's direct stream,
and the peer rebuilds the block from its mempool without asking for anything."""

from __future__ import annotations

from hashlib import sha256

import trio
from exchangekit import Stalling
from gossipkit import accept

from chain.types import Proposal, tx_hash
from consensus.messages import BlockMessage, ProposalMessage, VoteMessage
from node.consensus_gossip import ConsensusGossip
from p2p.blocks import BlockExchange, CompactBlock, short_id
from p2p.host import Libp2pNetwork
from p2p.network import MAX_GOSSIP_BYTES
from storage.memory import MemoryKV
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH, commit_next, transfers


async def test_a_proposal_too_large_for_gossip_is_rebuilt_from_its_pushed_compact_block() -> None:
    chain = LocalChain()
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    block = commit_next(chain, store, transfers(chain, 7_500))
    assert len(CompactBlock.of(block).encode()) > MAX_GOSSIP_BYTES
    chain_id = chain.config.chain_id
    a, b = (Libp2pNetwork(sha256(f"push {side}".encode()).digest()) for side in "ab")
    sender = ConsensusGossip(a, chain_id, BlockExchange(a, chain_id, store.blocks, accept,
                                                        max_block_bytes=1 << 24), accept)
    mempool = {short_id(tx_hash(tx)): (tx_hash(tx), tx) for tx in block.txs}
    receiver = ConsensusGossip(b, chain_id, Stalling(b, chain_id, store.blocks, accept,
                                                       max_block_bytes=1 << 24), accept, mempool.get)
    delivered: list[ProposalMessage | VoteMessage | BlockMessage] = []

    async def deliver(message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        delivered.append(message)

    async def ignore(message: ProposalMessage | VoteMessage | BlockMessage) -> None:
        pass

    proposal = Proposal(1, 0, None, block.block_id(), 1, bytes(64))
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await nursery.start(receiver.run, deliver)
        await nursery.start(sender.run, ignore)
        await a.connect(b.listen_addrs()[0])
        await sender.publish(ProposalMessage(proposal, block))
        with trio.fail_after(30):
            while not delivered:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert delivered == [ProposalMessage(proposal, block)]
    assert sender.pushes_sent == receiver.pushes_used == 1 and receiver.whole_fetches == 0
    assert receiver.txs_found == receiver.txs_named == 7_500
