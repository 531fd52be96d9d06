"""Block sync over the in-memory network: a node behind catches up from an honest peer,
and a peer that claims heights it does not serve can neither hold it in sync nor keep
its own claim believed."""

from __future__ import annotations

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
from p2p.network import Validation
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
