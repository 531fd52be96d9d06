"""Tx gossip (§8.5; docs/network.md): txs travel in batches of up to 60 KiB, sent every
``BATCH_INTERVAL_S`` or as soon as one is full, as direct messages to connected peers on
``/bizra/<chain id>/txs/2``, relayed so that each node receives each batch about once.

Routing, as CometBFT's "DOG" mempool gossip: a batch names its origin, the node whose
clients submitted its txs. A node relays a new batch, unchanged, to its other peers
except its origin and those that told it ``have`` for that origin. A node that receives
a batch it has seen tells the sender ``have(origin)``, and the sender stops relaying
that origin's batches to it for ``ROUTE_OFF_S``; but it never tells the origin itself,
nor, for an origin it is not connected to, its source (the peer that brought it that
origin's first batch), so that it always keeps one path to each origin: batches already
on their way when a ``have`` is sent arrive first by other paths, and telling every
sender of a copy would cut them all. In a full mesh each node so receives a batch once,
from its origin; where links are missing, from its source. A route turned off comes
back on its own after ``ROUTE_OFF_S``, and at once when the node that asked for it loses
a peer (it sends ``reset`` to the peers it told ``have``, and picks new sources: the lost
peer may have been its only path to some origins). The messages that steer routes
affect only the link to the peer that sent them, so a lying peer starves or floods only
itself.

A message is the canonical CBOR array ``[0, origin, [tx, ...]]`` (a batch; ``origin`` a
peer id of at most ``MAX_ORIGIN`` bytes, ``txs`` not empty), ``[1, origin]``
(have) or ``[2]`` (reset). One that does not decode, or a batch holding a tx the
``check`` calls invalid, costs its sender score; txs the check ignores (already known)
are dropped silently, and a batch with nothing new is not relayed. While the node has no
room for txs (``room``), a batch is not checked, admitted or relayed, and its sender is
not penalized; its txs are only handed to ``keep`` (the mempool keeps them, unchecked,
for rebuilding proposed blocks that name them: a block rebuilt must match its header,
and its execution checks their signatures).

Accepted batches are handed over whole (``received``: the sender and its txs, at most
``RECEIVED_BATCHES`` waiting; a peer's next message waits while it is full), so that the
node admits a batch's txs together: their signatures are checked as one batch, off the
event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256

import trio

from chain.codec import dumps, expect_bytes, expect_list, expect_text, expect_uint, loads_canonical
from chain.errors import DecodeError, NetworkError
from chain.service import TaskStatus
from p2p.network import (
    INVALID_MESSAGE_PENALTY,
    MAX_GOSSIP_BYTES,
    Network,
    Validation,
    request_protocol,
)
from p2p.peers import PeerId

BATCH_INTERVAL_S = 0.05
RECEIVED_BATCHES = 256
"""Accepted batches waiting for the node (15 MiB at most)."""
MAX_ORIGIN = 64
"""The longest origin a batch may name, in bytes (an Ed25519 peer id has 52)."""
MAX_MESSAGE_BYTES = MAX_GOSSIP_BYTES + 128
"""A batch message: a batch of txs (at most ``MAX_GOSSIP_BYTES``), its kind and origin."""
ROUTE_OFF_S = 60.0
"""How long a peer's ``have`` keeps an origin's batches from being relayed to it."""
TELL_AGAIN_S = 5.0
"""A peer that still sends an origin's batches this long after our ``have`` is told again."""
ROUTES = 4_096
"""Routes turned off, and ``have`` messages remembered, at most (each)."""
SEEN_BATCHES = 16_384
"""Batch ids remembered (a minute or more of batches at full load)."""

BATCH, HAVE, RESET = 0, 1, 2

TxCheck = Callable[[bytes], Validation]
Keep = Callable[[list[bytes]], None]


def _head(n: int) -> int:
    """The size of a CBOR head carrying the length ``n``."""
    return 1 if n < 24 else 2 if n < 256 else 3 if n < 65_536 else 5


@dataclass(frozen=True, slots=True)
class Batch:
    origin: str
    txs: list[bytes]


@dataclass(frozen=True, slots=True)
class Have:
    origin: str


@dataclass(frozen=True, slots=True)
class Reset:
    pass


Message = Batch | Have | Reset


def encode_message(message: Message) -> bytes:
    if isinstance(message, Batch):
        return dumps([BATCH, message.origin, message.txs])
    if isinstance(message, Have):
        return dumps([HAVE, message.origin])
    return dumps([RESET])


def _origin(value: object) -> str:
    origin = expect_text(value, "tx gossip origin", MAX_ORIGIN)
    if not origin:
        raise DecodeError("tx gossip origin: empty")
    return origin


def decode_message(data: bytes) -> Message:
    """A tx gossip message; DecodeError unless it is one of the three forms, canonical."""
    items = expect_list(loads_canonical(data, "tx gossip message"), "tx gossip message")
    kind = expect_uint(items[0], "tx gossip message kind") if items else None
    if kind == BATCH and len(items) == 3:
        txs = expect_list(items[2], "tx batch")
        if not txs:
            raise DecodeError("tx batch: empty")
        return Batch(_origin(items[1]), [expect_bytes(tx, "tx batch item") for tx in txs])
    if kind == HAVE and len(items) == 2:
        return Have(_origin(items[1]))
    if kind == RESET and len(items) == 1:
        return Reset()
    raise DecodeError(f"tx gossip message: not a batch, have or reset ({len(items)} items, kind {kind})")


class Batcher:
    """Txs waiting to be gossiped, cut into batches of at most ``limit`` bytes."""

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


class Routes:
    """Whom this node relays each origin's batches to, whom it told ``have``, and where
    each origin's batches come from."""

    def __init__(self) -> None:
        self._off: OrderedDict[tuple[str, PeerId], float] = OrderedDict()
        self._told: OrderedDict[tuple[str, PeerId], float] = OrderedDict()
        self._sources: OrderedDict[str, PeerId] = OrderedDict()

    def heard(self, origin: str, peer: PeerId) -> None:
        """``peer`` brought a new batch of ``origin``: the first to do so is its source."""
        if origin not in self._sources:
            self._sources[origin] = peer
            while len(self._sources) > ROUTES:
                self._sources.popitem(last=False)

    def relays(self, origin: str, peer: PeerId, now: float) -> bool:
        until = self._off.get((origin, peer))
        return until is None or now >= until

    def turn_off(self, origin: str, peer: PeerId, now: float) -> None:
        """``peer`` said ``have(origin)``."""
        _put(self._off, (origin, peer), now + ROUTE_OFF_S)

    def turn_on(self, peer: PeerId) -> None:
        """``peer`` said ``reset``: relay every origin's batches to it again."""
        for key in [key for key in self._off if key[1] == peer]:
            del self._off[key]

    def tell(self, origin: str, peer: PeerId, now: float, *, origin_is_peer: bool) -> bool:
        """Whether to tell ``peer``, which sent a batch of ``origin`` seen before,
        ``have(origin)`` now: never the origin, nor the source of an origin that is not
        a peer; a peer told is not told again until ``TELL_AGAIN_S`` later."""
        if peer == origin or (not origin_is_peer and self._sources.get(origin) == peer):
            return False
        until = self._told.get((origin, peer))
        if until is not None and now < until:
            return False
        _put(self._told, (origin, peer), now + TELL_AGAIN_S)
        return True

    def told(self) -> set[PeerId]:
        """The peers told ``have`` (and not reset since)."""
        return {peer for _, peer in self._told}

    def forget(self, peer: PeerId) -> None:
        """``peer`` is gone; nothing it said or was told holds any longer, and the
        origins it was the source of get new sources."""
        for table in (self._off, self._told):
            for key in [key for key in table if key[1] == peer]:
                del table[key]
        for origin in [origin for origin, source in self._sources.items() if source == peer]:
            del self._sources[origin]

    def reset(self, peer: PeerId) -> None:
        """``peer`` was sent ``reset``."""
        for key in [key for key in self._told if key[1] == peer]:
            del self._told[key]


def _put(table: OrderedDict[tuple[str, PeerId], float], key: tuple[str, PeerId], until: float) -> None:
    table[key] = until
    table.move_to_end(key)
    while len(table) > ROUTES:
        table.popitem(last=False)


class TxGossip:
    """Sends this node's txs in batches, relays peers' batches, and hands their txs to
    ``received``."""

    def __init__(self, network: Network, chain_id: str, check: TxCheck, *,
                 room: Callable[[], bool] = lambda: True, keep: Keep = lambda txs: None,
                 batch_bytes: int = MAX_GOSSIP_BYTES, interval: float = BATCH_INTERVAL_S) -> None:
        self.network = network
        self.protocol = request_protocol(chain_id, "txs", 2)
        self.check = check
        self.room = room
        self.keep = keep
        self.origin = str(network.local_id)
        self._batcher = Batcher(batch_bytes)
        self.interval = interval
        self.routes = Routes()
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._events = network.peer_events()
        self._inbox = network.inbox(self.protocol, max_message_bytes=MAX_MESSAGE_BYTES)
        self._received_send, self.received = trio.open_memory_channel[tuple[PeerId, list[bytes]]](
            RECEIVED_BATCHES)
        self.batches_sent = 0
        self.batches_received = 0
        """New batches from peers (not those received again)."""
        self.duplicates = 0
        """Batches received again (another copy of a batch already received)."""
        self.batches_refused = 0
        """Batches only kept, while the node had no room for txs."""
        self.sends_dropped = 0
        """Batches not sent to a peer whose queue was full."""

    def _remember(self, data: bytes) -> bool:
        """Whether the batch ``data`` is new; it is remembered."""
        batch_id = sha256(data).digest()
        if batch_id in self._seen:
            return False
        self._seen[batch_id] = None
        if len(self._seen) > SEEN_BATCHES:
            self._seen.popitem(last=False)
        return True

    async def _receive(self, peer: PeerId, data: bytes) -> None:
        try:
            message = decode_message(data)
        except DecodeError as exc:
            self.network.penalize(peer, INVALID_MESSAGE_PENALTY, f"bad tx gossip: {exc}")
            return
        now = trio.current_time()
        if isinstance(message, Have):
            self.routes.turn_off(message.origin, peer, now)
        elif isinstance(message, Reset):
            self.routes.turn_on(peer)
        elif not self._remember(data):
            self.duplicates += 1
            origin_is_peer = message.origin in self.network.peers()
            if self.routes.tell(message.origin, peer, now, origin_is_peer=origin_is_peer):
                await self.network.send(peer, self.protocol, encode_message(Have(message.origin)))
        else:
            await self._take(peer, message, data, now)

    async def _take(self, peer: PeerId, batch: Batch, data: bytes, now: float) -> None:
        """A new batch from ``peer``: checked, relayed and handed over."""
        self.batches_received += 1
        self.routes.heard(batch.origin, peer)
        if not self.room():
            self.batches_refused += 1
            self.keep(batch.txs)
            return
        verdicts = {self.check(tx) for tx in batch.txs}
        if Validation.REJECT in verdicts:
            self.network.penalize(peer, INVALID_MESSAGE_PENALTY, "a tx batch holding an invalid tx")
            return
        if Validation.ACCEPT not in verdicts:
            return
        await self._relay(data, batch.origin, now, came_from=peer)
        await self._received_send.send((peer, batch.txs))

    async def _relay(self, data: bytes, origin: str, now: float, came_from: PeerId | None) -> None:
        for peer in self.network.peers():
            if peer in (came_from, origin) or not self.routes.relays(origin, peer, now):
                continue
            if not await self.network.send(peer, self.protocol, data):
                self.sends_dropped += 1

    async def submit(self, tx: bytes) -> None:
        """Gossip ``tx`` with the next batch; NetworkError if it is over ``max_tx_bytes``."""
        full = self._batcher.add(tx)
        if full:
            await self._publish(full)

    async def _publish(self, txs: list[bytes]) -> None:
        data = encode_message(Batch(self.origin, txs))
        self._remember(data)
        self.batches_sent += 1
        await self._relay(data, self.origin, trio.current_time(), came_from=None)

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._flush_every_interval)
            nursery.start_soon(self._watch_peers)
            task_status.started()
            async for message in self._inbox:
                await self._receive(message.sender, message.data)

    async def _watch_peers(self) -> None:
        async for event in self._events:
            if not event.connected:
                await self._lost(event.peer)

    async def _lost(self, gone: PeerId) -> None:
        """``gone`` may have been the only path to some origins: the peers told to stop
        relaying them are asked to start again."""
        self.routes.forget(gone)
        for peer in sorted(self.routes.told()):
            self.routes.reset(peer)
            await self.network.send(peer, self.protocol, encode_message(Reset()))

    async def _flush_every_interval(self) -> None:
        while True:
            await trio.sleep(self.interval)
            txs = self._batcher.take()
            if txs:
                await self._publish(txs)
