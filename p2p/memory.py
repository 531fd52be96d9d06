"""The in-memory :class:`~p2p.network.Network`, for fast tests: nodes in one trio process,
connected as the test says, with the same rules as the libp2p one (size limits,
validation before forwarding, scores and bans, request deadlines).

Gossip floods: a node forwards an accepted message to its other peers once (messages
are known by publisher and sequence number, as GossipSub's ids are). A direct message
goes straight into the peer's inbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection

import trio

from chain.errors import BizraError, NetworkError
from p2p.network import (
    INBOX,
    INVALID_MESSAGE_PENALTY,
    MAX_GOSSIP_BYTES,
    SUBSCRIPTION_BUFFER,
    Gossip,
    Handler,
    Link,
    PeerEvent,
    UnsupportedProtocol,
    Validation,
    Validator,
    peer_of,
)
from p2p.peers import PeerBook, PeerId

log = logging.getLogger(__name__)

SEEN_MESSAGES = 100_000


class MemoryHub:
    """The nodes of one in-memory network and their connections."""

    def __init__(self, clock: Callable[[], float] = trio.current_time) -> None:
        self.nodes: dict[PeerId, MemoryNetwork] = {}
        self.clock = clock

    def join(self, peer_id: str) -> MemoryNetwork:
        node = MemoryNetwork(self, PeerId(peer_id))
        self.nodes[node.local_id] = node
        return node

    def leave(self, peer: PeerId) -> None:
        """Take ``peer`` off the network (its process stopped): its links drop."""
        node = self.nodes.pop(peer)
        for other in sorted(node.connected):
            self.disconnect(peer, other)

    def connect(self, a: PeerId, b: PeerId) -> bool:
        """Connect ``a`` (the dialer) and ``b`` unless either has banned the other."""
        node_a, node_b = self.nodes[a], self.nodes[b]
        now = self.clock()
        if node_a.book.is_banned(b, now) or node_b.book.is_banned(a, now) or b in node_a.connected:
            return False
        node_a._link(b, outbound=True)
        node_b._link(a, outbound=False)
        return True

    def disconnect(self, a: PeerId, b: PeerId) -> None:
        for one, other in ((a, b), (b, a)):
            if one in self.nodes:
                self.nodes[one]._unlink(other)


class MemoryNetwork:
    """One node's view of a :class:`MemoryHub`."""

    def __init__(self, hub: MemoryHub, peer_id: PeerId) -> None:
        self.hub = hub
        self._id = peer_id
        self.connected: set[PeerId] = set()
        self._links: dict[PeerId, Link] = {}
        self.book = PeerBook()
        self._subs: dict[str, list[tuple[Validator, trio.MemorySendChannel[Gossip]]]] = {}
        self._handlers: dict[str, tuple[Handler, int]] = {}
        self._inboxes: dict[str, tuple[trio.MemorySendChannel[Gossip], int]] = {}
        self._events: list[trio.MemorySendChannel[PeerEvent]] = []
        self._seen: OrderedDict[tuple[PeerId, int], None] = OrderedDict()
        self._seqno = 0
        self.blocked: frozenset[PeerId] = frozenset()
        self.dropped = 0
        """Accepted messages a full subscription could not take (each one logged)."""
        self.duplicates = 0
        """Messages received again and dropped unchecked."""
        self.rate_limited = 0
        """Always 0: this network sets no rate limits."""

    @property
    def local_id(self) -> PeerId:
        return self._id

    def node_id(self, peer: PeerId) -> str:
        """Peers in memory have no keys: the address of their name's bytes stands in."""
        return hashlib.sha256(peer.encode()).digest()[:20].hex()

    def peers(self) -> list[PeerId]:
        return sorted(self.connected)

    def link(self, peer: PeerId) -> Link | None:
        return self._links.get(peer) if peer in self.connected else None

    def listen_addrs(self) -> list[str]:
        return [f"/memory/p2p/{self._id}"]

    async def connect(self, address: str) -> PeerId:
        peer = peer_of(address)
        if peer == self._id:
            raise NetworkError("cannot connect to itself")
        if peer not in self.hub.nodes or not address.startswith("/memory/"):
            raise NetworkError(f"cannot connect to {address}: nobody there")
        if self.book.is_banned(peer, self.hub.clock()):
            raise NetworkError(f"peer {peer} is banned")
        if peer not in self.connected and not self.hub.connect(self._id, peer):
            raise NetworkError(f"cannot connect to {address}: refused")
        await trio.lowlevel.checkpoint()
        return peer

    async def disconnect(self, peer: PeerId) -> None:
        self.hub.disconnect(self._id, peer)
        await trio.lowlevel.checkpoint()

    def peer_events(self) -> trio.MemoryReceiveChannel[PeerEvent]:
        send, receive = trio.open_memory_channel[PeerEvent](1_024)
        self._events.append(send)
        return receive

    def _emit(self, event: PeerEvent) -> None:
        for channel in self._events:
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                channel.send_nowait(event)

    def _link(self, peer: PeerId, *, outbound: bool) -> None:
        self.connected.add(peer)
        self._links[peer] = Link(outbound, "", time.time_ns())
        self._emit(PeerEvent(peer, True))

    def _unlink(self, peer: PeerId) -> None:
        if peer in self.connected:
            self.connected.discard(peer)
            self._links.pop(peer, None)
            self._emit(PeerEvent(peer, False))

    # --- gossip --------------------------------------------------------------------

    def subscribe(self, topic: str, validator: Validator, *, bulk: bool = False
                  ) -> trio.MemoryReceiveChannel[Gossip]:
        send, receive = trio.open_memory_channel[Gossip](SUBSCRIPTION_BUFFER)
        self._subs.setdefault(topic, []).append((validator, send))
        return receive

    async def publish(self, topic: str, data: bytes) -> None:
        if len(data) > MAX_GOSSIP_BYTES:
            raise NetworkError(f"a gossip message of {len(data)} bytes is above the {MAX_GOSSIP_BYTES}-byte "
                               "limit; send it by request/response")
        self._seqno += 1
        message_id = (self._id, self._seqno)
        self._remember(message_id)
        await self._forward(message_id, topic, data, came_from=None)

    def _remember(self, message_id: tuple[PeerId, int]) -> bool:
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        if len(self._seen) > SEEN_MESSAGES:
            self._seen.popitem(last=False)
        return True

    async def _forward(self, message_id: tuple[PeerId, int], topic: str, data: bytes,
                       came_from: PeerId | None) -> None:
        for peer in sorted(self.connected):
            if peer != came_from and peer != message_id[0]:
                await self.hub.nodes[peer]._receive(self._id, message_id, topic, data)

    async def _receive(self, sender: PeerId, message_id: tuple[PeerId, int], topic: str, data: bytes) -> None:
        if sender not in self.connected or sender in self.blocked or \
                self.book.is_banned(sender, self.hub.clock()):
            return
        if not self._remember(message_id):
            self.duplicates += 1
            return
        subs = self._subs.get(topic)
        if not subs:
            return
        verdicts = [await validator(sender, data) for validator, _ in subs]
        if Validation.REJECT in verdicts:
            self.penalize(sender, INVALID_MESSAGE_PENALTY, f"invalid message on {topic}")
            return
        if Validation.IGNORE in verdicts:
            return
        self.book.reward_valid(sender)
        for _, channel in subs:
            try:
                channel.send_nowait(Gossip(sender, data))
            except trio.WouldBlock:
                self.dropped += 1
                log.warning("gossip dropped: subscriber full",
                            extra={"topic": topic, "dropped": self.dropped})
            except trio.BrokenResourceError:
                pass
        await self._forward(message_id, topic, data, came_from=sender)

    # --- request/response ----------------------------------------------------------

    def set_handler(self, protocol: str, handler: Handler, *, max_request_bytes: int) -> None:
        self._handlers[protocol] = (handler, max_request_bytes)

    async def request(self, peer: PeerId, protocol: str, data: bytes, *, max_response_bytes: int,
                      timeout: float) -> bytes:
        if peer not in self.connected:
            raise NetworkError(f"peer {peer} is not connected")
        remote = self.hub.nodes[peer]
        if peer in self.blocked or self._id in remote.blocked:
            raise NetworkError(f"{protocol} request to {peer}: blocked")
        entry = remote._handlers.get(protocol)
        if entry is None:
            raise UnsupportedProtocol(f"peer {peer} does not serve {protocol}")
        handler, max_request = entry
        if len(data) > max_request:
            remote.penalize(self._id, INVALID_MESSAGE_PENALTY, f"request above {max_request} bytes")
            raise NetworkError(f"request of {len(data)} bytes refused by {peer}: the limit is {max_request}")
        try:
            with trio.fail_after(timeout):
                answer = await handler(self._id, data)
        except trio.TooSlowError:
            raise NetworkError(f"{protocol} request to {peer} took more than {timeout} s") from None
        except NetworkError as exc:  # a bad request: as the libp2p network, penalize its sender
            remote.penalize(self._id, INVALID_MESSAGE_PENALTY, f"bad {protocol} request: {exc}")
            raise NetworkError(f"{peer} refused the {protocol} request: {exc}") from None
        except BizraError as exc:
            raise NetworkError(f"{peer} could not answer {protocol}: {exc}") from None
        if len(answer) > max_response_bytes:
            self.penalize(peer, INVALID_MESSAGE_PENALTY, f"response above {max_response_bytes} bytes")
            raise NetworkError(f"response of {len(answer)} bytes from {peer} is above {max_response_bytes}")
        return answer

    # --- direct messages -------------------------------------------------------------

    def inbox(self, protocol: str, *, max_message_bytes: int, capacity: int = INBOX
              ) -> trio.MemoryReceiveChannel[Gossip]:
        send, receive = trio.open_memory_channel[Gossip](capacity)
        self._inboxes[protocol] = (send, max_message_bytes)
        return receive

    async def send(self, peer: PeerId, protocol: str, data: bytes) -> bool:
        await trio.lowlevel.checkpoint()
        if peer not in self.connected or peer in self.blocked or self.book.is_banned(peer, self.hub.clock()):
            return False
        remote = self.hub.nodes[peer]
        entry = remote._inboxes.get(protocol)
        if entry is None or self._id in remote.blocked:
            return True  # lost on the way, as a message to a peer that does not read it
        inbox, limit = entry
        if len(data) > limit:
            remote.penalize(self._id, INVALID_MESSAGE_PENALTY,
                            f"bad {protocol} message: {len(data)} bytes, above the limit of {limit}")
            return True
        try:
            inbox.send_nowait(Gossip(self._id, data))
        except trio.WouldBlock:
            return False
        return True

    # --- scores --------------------------------------------------------------------

    def block(self, peers: Collection[PeerId]) -> None:
        self.blocked = frozenset(peers)

    def ban(self, peer: PeerId, reason: str) -> None:
        log.warning("peer banned", extra={"peer": peer, "reason": reason})
        self.book.ban(peer, self.hub.clock())
        self.hub.disconnect(self._id, peer)

    def score(self, peer: PeerId) -> float:
        return self.book.score(peer)

    def penalize(self, peer: PeerId, points: float, reason: str) -> None:
        log.info("peer penalized", extra={"peer": peer, "points": points, "reason": reason})
        if self.book.penalize(peer, points, self.hub.clock()):
            log.warning("peer banned", extra={"peer": peer, "reason": reason})
            self.hub.disconnect(self._id, peer)
