"""Tx gossip in batches (§8.5; docs/network.md): py-libp2p carries about 100–200 gossip
messages a second, so txs travel in batches of up to 60 KiB, sent every
``BATCH_INTERVAL_S`` or as soon as one is full.

The interval is 50 ms rather than 25: on two cores, four nodes gossiping 10,000 txs/s
spend their CPU on py-libp2p's per-message cost, and twice the messages at 25 ms
saturate it (p95 ~250 ms), while at 50 ms p95 is ~60 ms (``bench/gossip.py``). A tx waits
at most one interval more before it leaves, well inside a 6-second block.

A batch is the canonical CBOR array of the txs' encodings. A batch that does not decode,
is empty, or holds a tx the ``check`` calls invalid is rejected (its sender loses
score); txs the check ignores (already known, say) are dropped silently. While the node
has no room for txs (``room``), a batch is not checked, admitted or forwarded, and its
sender is not penalized; its txs are only handed to ``keep`` (the mempool keeps them,
unchecked, for rebuilding proposed blocks that name them: a block rebuilt must match its
header, and its execution checks their signatures). That costs its parsing and the txs'
hashes, far less than a proposal whose txs a node lacks (it must fetch them before its
propose timeout); a batch that does not parse is rejected as ever.

Accepted batches are handed over whole (``received``: the sender and its txs, at most
``RECEIVED_BATCHES`` waiting, each under 60 KiB), so that the node admits a batch's txs
together: their signatures are checked as one batch, off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from chain.codec import dumps, expect_bytes, expect_list, loads_canonical
from chain.errors import DecodeError, NetworkError
from chain.service import TaskStatus
from p2p.network import MAX_GOSSIP_BYTES, Gossip, Network, Validation, gossip_topic
from p2p.peers import PeerId

BATCH_INTERVAL_S = 0.05
RECEIVED_BATCHES = 256
"""Accepted batches waiting for the node (15 MiB at most)."""


def _head(n: int) -> int:
    """The size of a CBOR head carrying the length ``n``."""
    return 1 if n < 24 else 2 if n < 256 else 3 if n < 65_536 else 5

TxCheck = Callable[[bytes], Validation]
Keep = Callable[[list[bytes]], None]


def encode_batch(txs: list[bytes]) -> bytes:
    return dumps(txs)


def decode_batch(data: bytes) -> list[bytes]:
    """The txs of a batch; DecodeError unless it is a non-empty canonical array of byte
    strings."""
    items = expect_list(loads_canonical(data, "tx batch"), "tx batch")
    if not items:
        raise DecodeError("tx batch: empty")
    return [expect_bytes(item, "tx batch item") for item in items]


class Batcher:
    """Txs waiting to be gossiped, cut into batches that fit a gossip message."""

    def __init__(self, limit: int = MAX_GOSSIP_BYTES) -> None:
        self.limit = limit
        self.max_tx_bytes = limit - _head(1) - _head(limit)
        """The largest tx a batch carries (alone)."""
        self._txs: list[bytes] = []
        self._items = 0  # the encoded size of the items, heads included

    def add(self, tx: bytes) -> list[bytes] | None:
        """Queue ``tx``; returns the batch it pushed out when the current one is full."""
        if len(tx) > self.max_tx_bytes:
            raise NetworkError(f"a tx of {len(tx)} bytes cannot be gossiped (at most {self.max_tx_bytes})")
        cost = _head(len(tx)) + len(tx)
        full = None
        if _head(len(self._txs) + 1) + self._items + cost > self.limit:
            full = self.take()
        self._txs.append(tx)
        self._items += cost
        return full

    def take(self) -> list[bytes]:
        txs, self._txs, self._items = self._txs, [], 0
        return txs


class TxGossip:
    """Publishes this node's txs in batches and hands peers' txs to ``received``."""

    def __init__(self, network: Network, chain_id: str, check: TxCheck, *,
                 room: Callable[[], bool] = lambda: True, keep: Keep = lambda txs: None,
                 batch_bytes: int = MAX_GOSSIP_BYTES, interval: float = BATCH_INTERVAL_S) -> None:
        self.network = network
        self.topic = gossip_topic(chain_id, "txs")
        self.check = check
        self.room = room
        self.keep = keep
        self._batcher = Batcher(batch_bytes)
        self.interval = interval
        self._messages = network.subscribe(self.topic, self._validate, bulk=True)
        self._received_send, self.received = trio.open_memory_channel[tuple[PeerId, list[bytes]]](
            RECEIVED_BATCHES)
        self.batches_sent = 0
        self.batches_received = 0
        self.batches_refused = 0
        """Batches only kept, while the node had no room for txs."""

    async def _validate(self, peer: PeerId, data: bytes) -> Validation:
        try:
            txs = decode_batch(data)
        except DecodeError:
            return Validation.REJECT
        if not self.room():
            self.batches_refused += 1
            self.keep(txs)
            return Validation.IGNORE
        verdicts = {self.check(tx) for tx in txs}
        if Validation.REJECT in verdicts:
            return Validation.REJECT
        return Validation.ACCEPT if Validation.ACCEPT in verdicts else Validation.IGNORE

    async def submit(self, tx: bytes) -> None:
        """Gossip ``tx`` with the next batch; NetworkError if it is over ``max_tx_bytes``."""
        full = self._batcher.add(tx)
        if full:
            await self._publish(full)

    async def _publish(self, txs: list[bytes]) -> None:
        await self.network.publish(self.topic, encode_batch(txs))
        self.batches_sent += 1

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._flush_every_interval)
            task_status.started()
            async for message in self._messages:
                await self._deliver(message)

    async def _flush_every_interval(self) -> None:
        while True:
            await trio.sleep(self.interval)
            txs = self._batcher.take()
            if txs:
                await self._publish(txs)

    async def _deliver(self, message: Gossip) -> None:
        """An accepted batch, whole (the mempool drops the txs it already has)."""
        self.batches_received += 1
        await self._received_send.send((message.sender, decode_batch(message.data)))
