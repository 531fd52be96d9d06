"""Blocks between peers: announcements (header and commit) on gossip, blocks by height
range and by id on request/response, every answer checked and a lying peer penalized."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from gossipkit import accept

import p2p.blocks
from chain.codec import dumps, loads_canonical
from chain.errors import NetworkError
from chain.types import Block, encode, tx_hash
from p2p.blocks import MAX_BLOCKS_PER_REQUEST, SHORT_ID_LEN, Announcement, BlockExchange, BlockSource
from p2p.memory import MemoryHub, MemoryNetwork
from p2p.network import INVALID_MESSAGE_PENALTY, Validation
from storage.memory import MemoryKV
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH, commit_next, transfers

HEIGHTS = 12


@pytest.fixture(scope="module")
def chain_and_store() -> tuple[LocalChain, Store]:
    chain = LocalChain()
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    for _ in range(HEIGHTS):
        commit_next(chain, store, transfers(chain, 5))
    return chain, store


class Forged:
    """A source that lies: ``how`` says what it gets wrong."""

    def __init__(self, store: Store, how: str) -> None:
        self.store, self.how = store, how

    def encoded_block(self, height: int) -> bytes | None:
        block = self.store.blocks.block(height)
        if block is None:
            return None
        if self.how == "body":
            return encode(dataclasses.replace(block, txs=block.txs[1:]))
        if self.how == "height":
            return self.store.blocks.encoded_block(height + 1)
        return encode(block)

    def encoded_commit(self, height: int) -> bytes | None:
        commit = self.store.blocks.commit(height)
        if commit is not None and self.how == "commit":
            other = self.store.blocks.block(height - 1)
            assert other is not None
            return encode(dataclasses.replace(commit, block_id=other.block_id()))
        return None if commit is None else encode(commit)

    def block_by_id(self, block_id: bytes) -> Block | None:
        if self.how == "id":
            return self.store.blocks.block(3)
        block = self.store.blocks.block_by_id(block_id)
        if block is not None and self.how == "txs":
            return dataclasses.replace(block, txs=block.txs[::-1])
        return block


@asynccontextmanager
async def pair(server_source: BlockSource, chain_id: str,
               check: p2p.blocks.AnnouncementCheck = accept,
               known: Callable[[bytes], Block | None] | None = None,
               ) -> AsyncIterator[tuple[BlockExchange, BlockExchange, MemoryNetwork, MemoryNetwork]]:
    """A client and a server exchange on two connected in-memory nodes, running; the
    server's blocks in memory are ``known``."""
    hub = MemoryHub()
    a, b = hub.join("client"), hub.join("server")
    hub.connect(a.local_id, b.local_id)
    empty = Store.open(MemoryKV(), LocalChain().genesis, GENESIS_HASH)
    client = BlockExchange(a, chain_id, empty.blocks, check, max_block_bytes=1 << 20)
    server = BlockExchange(b, chain_id, server_source, check, max_block_bytes=1 << 20, known=known)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await nursery.start(server.run)
        yield client, server, a, b
        nursery.cancel_scope.cancel()


async def test_blocks_come_by_height_range_each_with_its_commit(
        chain_and_store: tuple[LocalChain, Store]) -> None:
    chain, store = chain_and_store
    async with pair(store.blocks, chain.config.chain_id) as (client, _, a, b):
        pairs = await client.fetch_blocks(b.local_id, 3, 5)
        assert [block.header.height for block, _ in pairs] == [3, 4, 5, 6, 7]
        for block, commit in pairs:
            assert block == store.blocks.block(block.header.height)
            assert commit.block_id == block.block_id()
        tip = await client.fetch_blocks(b.local_id, HEIGHTS - 1, 10)
        # the tip comes with the commit this node saw
        assert [block.header.height for block, _ in tip] == [HEIGHTS - 1, HEIGHTS]
        assert await client.fetch_blocks(b.local_id, HEIGHTS + 1, 10) == []
        assert a.score(b.local_id) == 0


async def test_a_block_comes_by_id_and_an_unknown_id_is_none(
        chain_and_store: tuple[LocalChain, Store]) -> None:
    chain, store = chain_and_store
    block = store.blocks.block(5)
    assert block is not None
    async with pair(store.blocks, chain.config.chain_id) as (client, _, _, b):
        assert await client.fetch_block(b.local_id, block.block_id()) == block
        assert await client.fetch_block(b.local_id, bytes(32)) is None


async def test_a_large_range_is_cut_at_the_response_budget(chain_and_store: tuple[LocalChain, Store],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    chain, store = chain_and_store
    one = store.blocks.block(2)
    assert one is not None
    monkeypatch.setattr(p2p.blocks, "RESPONSE_BUDGET_BYTES", 1)
    async with pair(store.blocks, chain.config.chain_id) as (client, _, _, b):
        assert len(await client.fetch_blocks(b.local_id, 2, 10)) == 1  # never less than one


@pytest.mark.parametrize("how, problem", [
    ("body", "data_hash does not match the txs"),
    ("commit", "commit of block 4 is for another block"),
    ("height", "sent block 5 where 4 was asked for"),
])
async def test_a_peer_that_sends_wrong_blocks_is_penalized(
        chain_and_store: tuple[LocalChain, Store], how: str, problem: str) -> None:
    chain, store = chain_and_store
    async with pair(Forged(store, how), chain.config.chain_id) as (client, _, a, b):
        with pytest.raises(NetworkError, match=problem):
            await client.fetch_blocks(b.local_id, 4, 3)
        assert a.score(b.local_id) < 0


async def test_a_peer_that_sends_another_block_for_an_id_is_penalized(
        chain_and_store: tuple[LocalChain, Store]) -> None:
    chain, store = chain_and_store
    wanted = store.blocks.block(7)
    assert wanted is not None
    async with pair(Forged(store, "id"), chain.config.chain_id) as (client, _, a, b):
        with pytest.raises(NetworkError, match="sent block"):
            await client.fetch_block(b.local_id, wanted.block_id())
        assert a.score(b.local_id) < 0


async def test_garbage_answers_and_requests_cost_their_sender(
        chain_and_store: tuple[LocalChain, Store]) -> None:
    chain, store = chain_and_store
    async with pair(store.blocks, chain.config.chain_id) as (client, server, a, b):
        async def garbage(peer: str, request: bytes) -> bytes:
            return b"\xff\x00"
        b.set_handler(server.blocks_protocol, garbage, max_request_bytes=64)
        with pytest.raises(NetworkError, match="unreadable blocks response"):
            await client.fetch_blocks(b.local_id, 1, 2)
        assert a.score(b.local_id) < 0

    async with pair(store.blocks, chain.config.chain_id) as (client, server, a, b):
        for request in (dumps([1, MAX_BLOCKS_PER_REQUEST + 1]), b"\xff", dumps(b"short")):
            protocol = server.parts_protocol if request == dumps(b"short") else server.blocks_protocol
            with pytest.raises(NetworkError, match="refused"):
                await a.request(b.local_id, protocol, request, max_response_bytes=1 << 20, timeout=5)
        assert b.score(a.local_id) < 0


async def test_announcements_reach_peers_and_a_false_one_is_rejected(
        autojump_clock: trio.testing.MockClock, chain_and_store: tuple[LocalChain, Store]) -> None:
    chain, store = chain_and_store
    seen: list[int] = []

    async def check(peer: str, announcement: Announcement) -> Validation:
        seen.append(announcement.header.height)
        return Validation.ACCEPT

    block, commit = store.blocks.block(HEIGHTS), store.blocks.commit(HEIGHTS)
    assert block is not None and commit is not None
    forged = dataclasses.replace(block.header, app_hash=bytes(32))
    async with pair(store.blocks, chain.config.chain_id, check) as (client, server, a, b):
        await server.announce(block.header, commit)
        with trio.fail_after(1):
            peer, announcement = await client.announced.receive()
        assert (peer, announcement) == (b.local_id, Announcement(block.header, commit))
        assert a.score(b.local_id) >= 0

        await server.announce(forged, commit)  # the commit is for another block
        await trio.sleep(1)
        assert seen == [HEIGHTS]  # rejected before the node's check
        assert client.announced.statistics().current_buffer_used == 0
        assert a.score(b.local_id) < 0


async def test_a_block_of_another_chain_is_refused(chain_and_store: tuple[LocalChain, Store]) -> None:
    _, store = chain_and_store
    async with pair(store.blocks, "bizra-other-1") as (client, _, a, b):
        with pytest.raises(NetworkError, match="is of chain 'bizra-devnet-1'"):
            await client.fetch_blocks(b.local_id, 1, 1)
        assert a.score(b.local_id) < 0


async def test_a_block_comes_compact_and_its_txs_by_index(chain_and_store: tuple[LocalChain, Store]) -> None:
    chain, store = chain_and_store
    block = store.blocks.block(5)
    assert block is not None
    hashes = [tx_hash(tx) for tx in block.txs]
    ids = [h[:SHORT_ID_LEN] for h in hashes]
    async with pair(store.blocks, chain.config.chain_id) as (client, _, a, b):
        compact = await client.fetch_compact(b.local_id, block.block_id())
        assert compact is not None and list(compact.tx_ids) == ids
        assert compact.rebuilt(block.txs, hashes) == block
        assert compact.rebuilt(block.txs[::-1], hashes[::-1]) is None  # not the txs its header names
        assert await client.fetch_txs(b.local_id, block.block_id(), {1: ids[1], 3: ids[3]}) == \
            [block.txs[1], block.txs[3]]
        assert await client.fetch_compact(b.local_id, bytes(32)) is None
        assert await client.fetch_txs(b.local_id, bytes(32), {0: ids[0]}) is None
        assert a.score(b.local_id) == 0


async def test_the_event_loop_runs_on_while_a_response_is_decoded_and_checked(
        chain_and_store: tuple[LocalChain, Store], monkeypatch: pytest.MonkeyPatch) -> None:
    """A response may be megabytes of txs to decode and hash: meanwhile the node's other
    tasks (votes, gossip, RPC) go on. Each response's decoding here waits for a task of
    the event loop to run, which it never could if the decoding held the loop."""
    chain, store = chain_and_store
    block = store.blocks.block(5)
    assert block is not None
    ids = {i: tx_hash(tx)[:SHORT_ID_LEN] for i, tx in enumerate(block.txs)}
    decoding, loop_ran = threading.Event(), threading.Event()
    waited: list[bool] = []

    def decode_when_the_loop_has_run(data: bytes, what: str) -> object:
        if what.endswith("response"):
            loop_ran.clear()
            decoding.set()
            waited.append(loop_ran.wait(timeout=10))
        return loads_canonical(data, what)

    async def run_while_decoding() -> None:
        while True:
            await trio.sleep(0.001)
            if decoding.is_set():
                decoding.clear()
                loop_ran.set()

    monkeypatch.setattr(p2p.blocks, "loads_canonical", decode_when_the_loop_has_run)
    async with pair(store.blocks, chain.config.chain_id) as (client, _, a, b), trio.open_nursery() as nursery:
        nursery.start_soon(run_while_decoding)
        assert len(await client.fetch_blocks(b.local_id, 3, 4)) == 4
        assert await client.fetch_block(b.local_id, block.block_id()) == block
        assert await client.fetch_compact(b.local_id, block.block_id()) is not None
        assert await client.fetch_txs(b.local_id, block.block_id(), ids) == list(block.txs)
        nursery.cancel_scope.cancel()
    assert waited == [True] * 4
    assert a.score(b.local_id) == 0


class LoopWatching:
    """The blocks of ``store``, each read by id after a task of the event loop has run
    (``waited`` records whether one did within 10 s: never, if the read held the loop)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reading, self.loop_ran = threading.Event(), threading.Event()
        self.waited: list[bool] = []

    def encoded_block(self, height: int) -> bytes | None:
        return self.store.blocks.encoded_block(height)

    def encoded_commit(self, height: int) -> bytes | None:
        return self.store.blocks.encoded_commit(height)

    def block_by_id(self, block_id: bytes) -> Block | None:
        self.loop_ran.clear()
        self.reading.set()
        self.waited.append(self.loop_ran.wait(timeout=10))
        return self.store.blocks.block_by_id(block_id)

    async def run_while_reading(self) -> None:
        while True:
            await trio.sleep(0.001)
            if self.reading.is_set():
                self.reading.clear()
                self.loop_ran.set()


async def test_a_block_asked_for_by_id_is_read_off_the_event_loop_or_served_from_memory(
        chain_and_store: tuple[LocalChain, Store]) -> None:
    """Reading and decoding a stored block of megabytes for a peer would hold up the
    node's other tasks: the store is read on a worker thread. A block consensus holds in
    memory (a proposal) is served from there, the store not asked."""
    chain, store = chain_and_store
    block, proposal = store.blocks.block(5), store.blocks.block(7)
    assert block is not None and proposal is not None
    source = LoopWatching(store)
    held = {proposal.block_id(): proposal}
    async with pair(source, chain.config.chain_id, known=held.get) as (client, _, a, b), \
            trio.open_nursery() as nursery:
        nursery.start_soon(source.run_while_reading)
        assert await client.fetch_block(b.local_id, block.block_id()) == block
        assert await client.fetch_compact(b.local_id, block.block_id()) is not None
        first = {0: tx_hash(block.txs[0])[:SHORT_ID_LEN]}
        assert await client.fetch_txs(b.local_id, block.block_id(), first) == [block.txs[0]]
        assert source.waited == [True] * 3
        assert await client.fetch_block(b.local_id, proposal.block_id()) == proposal
        assert await client.fetch_compact(b.local_id, proposal.block_id()) is not None
        assert len(source.waited) == 3
        nursery.cancel_scope.cancel()
    assert a.score(b.local_id) == 0


async def test_a_peer_that_sends_txs_other_than_the_block_names_is_penalized(
        chain_and_store: tuple[LocalChain, Store]) -> None:
    chain, store = chain_and_store
    block = store.blocks.block(5)
    assert block is not None
    ids = {i: tx_hash(tx)[:SHORT_ID_LEN] for i, tx in enumerate(block.txs)}
    async with pair(Forged(store, "txs"), chain.config.chain_id) as (client, _, a, b):
        with pytest.raises(NetworkError, match="not the one the block names"):
            await client.fetch_txs(b.local_id, block.block_id(), ids)
        assert a.score(b.local_id) <= -INVALID_MESSAGE_PENALTY


@pytest.mark.parametrize("indexes", [[3, 1], [2, 2], [10_000]])
async def test_a_block_txs_request_with_indexes_out_of_order_or_range_is_refused(
        chain_and_store: tuple[LocalChain, Store], indexes: list[int]) -> None:
    chain, store = chain_and_store
    block = store.blocks.block(5)
    assert block is not None
    async with pair(store.blocks, chain.config.chain_id) as (client, _, a, b):
        with pytest.raises(NetworkError):
            await a.request(b.local_id, client.txs_protocol, dumps([block.block_id(), indexes]),
                            max_response_bytes=1 << 20, timeout=5)
