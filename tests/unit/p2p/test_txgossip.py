"""Tx gossip: batches that fit a gossip message, sent when full or every batch interval,
and a batch with an invalid tx rejected (its sender penalized)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from chain.errors import DecodeError, NetworkError
from p2p.memory import MemoryHub, MemoryNetwork
from p2p.network import MAX_GOSSIP_BYTES, Validation
from p2p.txgossip import Batcher, TxGossip, decode_batch, encode_batch


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
    assert all(len(encode_batch(b)) <= MAX_GOSSIP_BYTES for b in batches)
    assert len(encode_batch(batches[0])) > MAX_GOSSIP_BYTES - 253  # full: no room for one more
    with pytest.raises(NetworkError, match="cannot be gossiped"):
        batcher.add(bytes(MAX_GOSSIP_BYTES))


def test_the_largest_tx_gossip_carries_fills_a_batch_alone() -> None:
    batcher = Batcher()
    largest = bytes(batcher.max_tx_bytes)
    assert batcher.add(largest) is None
    assert len(encode_batch(batcher.take())) == MAX_GOSSIP_BYTES
    with pytest.raises(NetworkError, match="cannot be gossiped"):
        batcher.add(largest + b"\x00")


def test_batch_decoding_is_strict() -> None:
    assert decode_batch(encode_batch([b"a", b"bc"])) == [b"a", b"bc"]
    for bad in (encode_batch([]), b"\x81\x01", b"\xff", encode_batch([b"a"]) + b"\x00"):
        with pytest.raises(DecodeError):
            decode_batch(bad)


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
