"""Tx gossip: batches that fit a gossip message, sent when full or every batch interval,
a batch with an invalid tx rejected (its sender penalized), and relayed so that each
node receives each batch about once, whatever the links."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from chain.codec import dumps
from chain.errors import DecodeError, NetworkError
from p2p.memory import MemoryHub, MemoryNetwork
from p2p.network import MAX_GOSSIP_BYTES, Validation
from p2p.peers import PeerId
from p2p.txgossip import (
    MAX_ORIGIN,
    ROUTE_OFF_S,
    TELL_AGAIN_S,
    Batch,
    Batcher,
    Have,
    Reset,
    Routes,
    TxGossip,
    decode_message,
    encode_message,
)


def check(tx: bytes) -> Validation:
    return Validation.REJECT if tx.startswith(b"bad") else Validation.ACCEPT


def test_batches_never_exceed_the_gossip_limit() -> None:
    batcher = Batcher()
    batches = []
    for i in range(1_000):
        full = batcher.add(bytes([i % 256]) * 250)
        if full:
            batches.append(full)
    batches.append(batcher.take())
    assert sum(len(b) for b in batches) == 1_000
    assert all(len(dumps(b)) <= MAX_GOSSIP_BYTES for b in batches)
    assert len(dumps(batches[0])) > MAX_GOSSIP_BYTES - 253  # full: no room for one more
    with pytest.raises(NetworkError, match="cannot be gossiped"):
        batcher.add(bytes(MAX_GOSSIP_BYTES))


def test_the_largest_tx_gossip_carries_fills_a_batch_alone() -> None:
    batcher = Batcher()
    largest = bytes(batcher.max_tx_bytes)
    assert batcher.add(largest) is None
    assert len(dumps(batcher.take())) == MAX_GOSSIP_BYTES
    with pytest.raises(NetworkError, match="cannot be gossiped"):
        batcher.add(largest + b"\x00")


def test_tx_gossip_decoding_is_strict() -> None:
    for message in (Batch("o", [b"a", b"bc"]), Have("o" * MAX_ORIGIN), Reset()):
        assert decode_message(encode_message(message)) == message
    for bad in (encode_message(Batch("o", [])), encode_message(Batch("", [b"a"])),
                encode_message(Batch("o" * (MAX_ORIGIN + 1), [b"a"])), encode_message(Have("")),
                encode_message(Batch("o", [b"a"])) + b"\x00", b"\x81\x01", b"\x80", b"\x82\x02\x61o",
                b"\x83\x00\x61o\x81\x01", b"\x81\x20", b"\xff"):
        with pytest.raises(DecodeError):
            decode_message(bad)


@asynccontextmanager
async def connected_pair() -> AsyncIterator[tuple[TxGossip, TxGossip, MemoryNetwork, MemoryNetwork]]:
    """Tx gossip on two connected in-memory nodes, running: (sender, receiver, their networks)."""
    hub = MemoryHub()
    a, b = hub.join("a"), hub.join("b")
    hub.connect(a.local_id, b.local_id)
    sender, receiver = TxGossip(a, "bizra-t", check), TxGossip(b, "bizra-t", check)
    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        await nursery.start(receiver.run)
        yield sender, receiver, a, b
        nursery.cancel_scope.cancel()


async def test_txs_reach_a_peer_in_batches(autojump_clock: trio.testing.MockClock) -> None:
    async with connected_pair() as (sender, receiver, _, _):
        txs = [i.to_bytes(4, "big") * 60 for i in range(1_000)]
        for tx in txs:
            await sender.submit(tx)
        got: list[bytes] = []
        with trio.fail_after(1):
            while len(got) < len(txs):
                got.extend((await receiver.received.receive())[1])
        assert got == txs
        assert sender.batches_sent == 4  # 253 txs of 240 bytes fill a batch: 3 full, 1 on the timer


async def test_a_batch_with_an_invalid_tx_is_rejected(autojump_clock: trio.testing.MockClock) -> None:
    async with connected_pair() as (sender, receiver, a, b):
        await sender.submit(b"good")
        await sender.submit(b"bad one")
        await trio.sleep(0.1)
        with pytest.raises(trio.WouldBlock):
            receiver.received.receive_nowait()
        assert b.book.score(a.local_id) < 0


async def test_a_node_without_room_only_keeps_batches_and_costs_their_sender_nothing(
        autojump_clock: trio.testing.MockClock) -> None:
    async with connected_pair() as (sender, receiver, a, b):
        kept: list[bytes] = []
        receiver.room, receiver.keep = (lambda: False), kept.extend
        await sender.submit(b"bad one")  # invalid: not checked, so not held against a
        await sender.submit(b"good")
        await trio.sleep(0.1)
        with pytest.raises(trio.WouldBlock):
            receiver.received.receive_nowait()
        assert receiver.batches_refused == 1 and b.book.score(a.local_id) == 0
        assert kept == [b"bad one", b"good"]  # for rebuilding blocks that name them
        receiver.room = lambda: True
        await sender.submit(b"good")
        with trio.fail_after(1):
            assert (await receiver.received.receive())[1] == [b"good"]


@asynccontextmanager
async def gossiping(hub: MemoryHub, names: list[str]) -> AsyncIterator[list[TxGossip]]:
    """Tx gossip running on in-memory nodes ``names`` (joined, not yet connected)."""
    nodes = [TxGossip(hub.join(name), "bizra-t", check) for name in names]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        yield nodes
        nursery.cancel_scope.cancel()


def drain(node: TxGossip) -> list[bytes]:
    txs: list[bytes] = []
    while True:
        try:
            txs.extend(node.received.receive_nowait()[1])
        except trio.WouldBlock:
            return txs


async def test_in_a_full_mesh_each_node_receives_each_batch_once(
        autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub()
    names = ["a", "b", "c", "d"]
    async with gossiping(hub, names) as nodes:
        for i, one in enumerate(names):
            for other in names[i + 1:]:
                hub.connect(PeerId(one), PeerId(other))
        for round_ in range(3):
            for i, node in enumerate(nodes):
                await node.submit(b"tx %d from %d" % (round_, i))
            await trio.sleep(0.1)
            for i, node in enumerate(nodes):
                others = [b"tx %d from %d" % (round_, j) for j in range(4) if j != i]
                assert sorted(drain(node)) == sorted(others)
            if round_ == 0:
                steered = sum(node.duplicates for node in nodes)
                assert steered > 0  # each origin's first batch reached some nodes twice
        assert sum(node.duplicates for node in nodes) == steered  # later ones: once each
        assert all(node.batches_received == 9 for node in nodes)


async def test_a_batch_reaches_a_node_its_origin_is_not_connected_to(
        autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub()
    async with gossiping(hub, ["a", "b", "c"]) as (a, _, c):
        hub.connect(PeerId("a"), PeerId("b"))
        hub.connect(PeerId("b"), PeerId("c"))
        await a.submit(b"far")
        await trio.sleep(0.1)
        assert drain(c) == [b"far"] and c.duplicates == 0


async def test_a_node_that_loses_its_path_to_an_origin_gets_it_relayed_again_at_once(
        autojump_clock: trio.testing.MockClock) -> None:
    """In a triangle, c hears a's batches from a and tells b to stop relaying them; when
    c loses a, b relays them to c again at once, not when the route expires."""
    hub = MemoryHub()
    async with gossiping(hub, ["a", "b", "c"]) as (a, b, c):
        for one, other in (("a", "b"), ("b", "c"), ("a", "c")):
            hub.connect(PeerId(one), PeerId(other))
        await a.submit(b"first")
        await trio.sleep(0.1)
        assert drain(c) == [b"first"] and c.duplicates == 1  # from a, then through b
        assert not b.routes.relays("a", PeerId("c"), trio.current_time())
        hub.disconnect(PeerId("a"), PeerId("c"))
        await trio.sleep(0.1)
        await a.submit(b"second")
        await trio.sleep(0.1)
        assert drain(c) == [b"second"]


async def test_a_node_never_stops_its_last_path_to_an_origin(autojump_clock: trio.testing.MockClock) -> None:
    """Batches already on their way when a node says ``have`` reach it by other paths
    first; it never tells the origin, nor the source of an origin it is not connected
    to, so those paths stay."""
    hub = MemoryHub()
    async with gossiping(hub, ["a", "b", "c", "d"]) as (a, b, c, d):
        for one, other in (("a", "b"), ("b", "c"), ("a", "d"), ("d", "c"), ("a", "c")):
            hub.connect(PeerId(one), PeerId(other))
        first, second = (encode_message(Batch("x", [tx])) for tx in (b"1", b"2"))
        await c._receive(PeerId("b"), first)  # x is not a peer: b is its source
        await c._receive(PeerId("d"), first)  # a copy: d is told
        await c._receive(PeerId("d"), second)  # on its way before d heard
        await c._receive(PeerId("b"), second)  # a copy from the source: not told
        await trio.sleep(0.1)
        now = trio.current_time()
        assert not d.routes.relays("x", PeerId("c"), now) and b.routes.relays("x", PeerId("c"), now)
        third = encode_message(Batch("a", [b"3"]))
        await c._receive(PeerId("b"), third)
        await c._receive(PeerId("a"), third)  # a copy from its origin: not told
        await trio.sleep(0.1)
        assert a.routes.relays("a", PeerId("c"), trio.current_time())


def test_a_route_turned_off_comes_back_after_a_while_or_on_reset() -> None:
    routes = Routes()
    peer, other = PeerId("p"), PeerId("q")
    routes.turn_off("o", peer, now=10.0)
    assert not routes.relays("o", peer, 10.0) and routes.relays("o", other, 10.0)
    assert routes.relays("o2", peer, 10.0)  # only that origin
    assert routes.relays("o", peer, 10.0 + ROUTE_OFF_S)
    routes.turn_off("o", peer, now=20.0)
    routes.turn_on(peer)
    assert routes.relays("o", peer, 20.0)
    assert routes.tell("o", peer, 0.0, origin_is_peer=True)
    assert not routes.tell("o", peer, 1.0, origin_is_peer=True)
    assert routes.tell("o", peer, TELL_AGAIN_S, origin_is_peer=True) and routes.told() == {peer}
    assert not routes.tell("o", PeerId("o"), 0.0, origin_is_peer=True)  # the origin itself
    routes.reset(peer)
    assert routes.told() == set()
