"""Block sync over the in-memory network: a node behind catches up from an honest peer,
a peer that claims heights it does not serve can neither hold it in sync nor keep its
own claim believed, and no claim stops consensus until a commit proves it."""

from __future__ import annotations

import dataclasses

import pytest
import trio

import node.sync
from chain.crypto import VerifiedCache
from chain.types import Block, Commit
from node.chainstate import NodeChain
from node.config import MempoolConfig
from node.mempool import Mempool
from node.sync import UNSERVED_PENALTY, BlockSync
from p2p.blocks import Announcement, BlockExchange
from p2p.memory import MemoryHub
from p2p.network import INVALID_MESSAGE_PENALTY, Validation
from p2p.peers import PeerId
from storage.memory import MemoryKV
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH, commit_next, transfers

HEIGHTS = 6


class Blocks:
    """What a peer serves: the blocks of ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def block(self, height: int) -> Block | None:
        return self.store.blocks.block(height)

    def commit(self, height: int) -> Commit | None:
        return self.store.blocks.commit(height)

    def block_by_id(self, block_id: bytes) -> Block | None:
        return self.store.blocks.block_by_id(block_id)


async def ignore(_: PeerId, __: Announcement) -> Validation:
    return Validation.IGNORE


class ForgedCommits(Blocks):
    """What a forger serves: the right blocks, their commits' signatures forged."""

    def commit(self, height: int) -> Commit | None:
        commit = self.store.blocks.commit(height)
        if commit is None:
            return None
        forged = tuple(dataclasses.replace(s, signature=bytes(64)) for s in commit.signatures)
        return dataclasses.replace(commit, signatures=forged)


async def test_a_peer_claiming_heights_it_does_not_serve_is_doubted_and_sync_ends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A real clock: blocks are applied in worker threads, which a mock clock would jump past.
    monkeypatch.setattr(node.sync, "DOUBT_S", 1.0)
    local = LocalChain()
    honest_store = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
    for _ in range(HEIGHTS):
        commit_next(local, honest_store, transfers(local, 3))
    behind = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
    verified = VerifiedCache()
    chain = NodeChain(behind, local.genesis, local.config,
                      Mempool(local.config, behind.state, MempoolConfig(), verified), verified)

    hub = MemoryHub()
    me, honest, liar, mute = hub.join("me"), hub.join("honest"), hub.join("liar"), hub.join("mute")
    for other in (honest, liar, mute):  # mute serves no blocks at all: its requests fail
        hub.connect(me.local_id, other.local_id)
    chain_id = local.config.chain_id
    mine = BlockExchange(me, chain_id, Blocks(behind), ignore, max_block_bytes=1 << 22)
    BlockExchange(honest, chain_id, Blocks(honest_store), ignore, max_block_bytes=1 << 22)
    BlockExchange(liar, chain_id, Blocks(Store.open(MemoryKV(), local.genesis, GENESIS_HASH)), ignore,
                  max_block_bytes=1 << 22)
    claims = {honest.local_id: HEIGHTS, liar.local_id: 1_000_000, mute.local_id: 2**63 - 1}
    sync = BlockSync(chain, mine, me, lambda: dict(claims))

    with trio.fail_after(30):
        await sync.catch_up()

    assert behind.height == HEIGHTS  # everything the honest peer has
    assert sync.heights()[liar.local_id] < HEIGHTS + 1 and sync.heights()[mute.local_id] < HEIGHTS + 1
    assert not sync.behind() and me.score(honest.local_id) == 0
    assert me.score(liar.local_id) <= -UNSERVED_PENALTY and me.score(mute.local_id) <= -UNSERVED_PENALTY

    # A liar on its own: the sync it starts ends as soon as it fails to serve.
    del claims[honest.local_id], claims[mute.local_id]
    await trio.sleep(node.sync.DOUBT_S)
    assert sync.behind()  # its claim is believed again, until it is tested
    with trio.fail_after(30):
        await sync.catch_up()
    assert not sync.behind() and me.score(liar.local_id) <= -2 * UNSERVED_PENALTY


async def test_consensus_gives_way_only_to_a_height_proved_by_a_commit() -> None:
    """A claim of a height far ahead does not make the node stop deciding its own: a peer
    must serve the height being decided with a commit that verifies. A liar, a mute
    peer and one that sends another chain's block fail, are doubted and cost score."""
    local = LocalChain()
    honest_store = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
    for _ in range(HEIGHTS):
        commit_next(local, honest_store, transfers(local, 3))
    behind = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
    verified = VerifiedCache()
    chain = NodeChain(behind, local.genesis, local.config,
                      Mempool(local.config, behind.state, MempoolConfig(), verified), verified)

    hub = MemoryHub()
    me, honest, liar, mute, forger = (hub.join(n) for n in ("me", "honest", "liar", "mute", "forger"))
    for peer in (honest, liar, mute, forger):
        hub.connect(me.local_id, peer.local_id)
    chain_id = local.config.chain_id
    mine = BlockExchange(me, chain_id, Blocks(behind), ignore, max_block_bytes=1 << 22)
    BlockExchange(honest, chain_id, Blocks(honest_store), ignore, max_block_bytes=1 << 22)
    BlockExchange(liar, chain_id, Blocks(Store.open(MemoryKV(), local.genesis, GENESIS_HASH)), ignore,
                  max_block_bytes=1 << 22)
    BlockExchange(forger, chain_id, ForgedCommits(honest_store), ignore, max_block_bytes=1 << 22)
    claims = {liar.local_id: 10**9, mute.local_id: 10**8, forger.local_id: 10**7}
    sync = BlockSync(chain, mine, me, lambda: dict(claims))

    with trio.fail_after(30):
        assert not await sync.confirm_behind()
    assert not sync.behind()  # every claim tested failed, and is doubted
    assert me.score(liar.local_id) <= -UNSERVED_PENALTY and me.score(mute.local_id) <= -UNSERVED_PENALTY
    assert me.score(forger.local_id) <= -UNSERVED_PENALTY - INVALID_MESSAGE_PENALTY

    claims[honest.local_id] = HEIGHTS
    with trio.fail_after(30):
        assert await sync.confirm_behind()
    assert me.score(honest.local_id) == 0
