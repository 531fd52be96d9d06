"""The network as the rest of the node sees it, whatever carries it (libp2p, or memory
in tests): gossip per topic with a validation hook, request/response by protocol id,
direct messages to a connected peer by protocol id, peer events, scores and bans.

Limits (§8): no gossip payload above :data:`MAX_GOSSIP_BYTES`; requests and responses
above their protocol's limits are refused on both sides; a request has a deadline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import trio

from chain.errors import NetworkError
from p2p.peers import PeerId

MAX_GOSSIP_BYTES = 61_440
"""60 KiB: the most any gossip message carries (§8)."""
INVALID_MESSAGE_PENALTY = 20.0
"""What a message that fails validation costs its sender's score."""
SUBSCRIPTION_BUFFER = 4_096
"""The accepted messages a subscription holds for its reader; one that comes while it is
full is dropped (and counted in :attr:`Network.dropped`)."""


SEND_QUEUE = 64
"""Direct messages waiting to leave for one peer on one protocol (4 MiB at 64 KiB each);
one sent while they fill it is dropped (``send`` says so): a slow peer never holds up
the sender."""
INBOX = 256
"""Direct messages of one protocol waiting for the node to take them (all peers'); a
peer's next message waits on its stream while it is full."""
INBOUND_STREAMS = 2
"""Streams one peer may have open to a node on one direct-message protocol: the one it
writes, and the one it opened again before the node saw the first end. One more is
reset, and costs the peer."""


class UnsupportedProtocol(NetworkError):
    """The peer does not serve the protocol asked for (for this chain's protocols: it is
    a node of another chain)."""


class Validation(Enum):
    ACCEPT = "accept"  # deliver and forward
    IGNORE = "ignore"  # drop, no penalty (a duplicate, a height already past)
    REJECT = "reject"  # drop and penalize the sender


@dataclass(frozen=True, slots=True)
class Gossip:
    """A gossip message that passed validation: who sent it to us, and its payload."""

    sender: PeerId
    data: bytes


@dataclass(frozen=True, slots=True)
class PeerEvent:
    peer: PeerId
    connected: bool


@dataclass(frozen=True, slots=True)
class Link:
    """This node's connection to a peer, as the network knows it."""

    outbound: bool
    """This node dialed the peer."""
    remote_ip: str
    """The IP address of the peer's end of the connection; "" if there is none (memory)."""
    since_ns: int
    """When the connection was first seen open (ns since the Unix epoch)."""


Validator = Callable[[PeerId, bytes], Awaitable[Validation]]
Handler = Callable[[PeerId, bytes], Awaitable[bytes]]


class Network(Protocol):
    """See the module docstring. Errors are :class:`chain.errors.NetworkError`."""

    @property
    def local_id(self) -> PeerId: ...

    def node_id(self, peer: PeerId) -> str:
        """CometBFT's node id of ``peer`` (this node's too): the address (§1) of the
        Ed25519 key its peer id holds, 40 hex digits; "" for an id that holds none."""

    @property
    def dropped(self) -> int:
        """Accepted gossip messages a full subscription could not take."""

    @property
    def rate_limited(self) -> int:
        """Peers' messages and requests refused over their rate limits."""

    @property
    def duplicates(self) -> int:
        """Gossip messages received again (from another peer) and dropped unchecked."""

    async def publish(self, topic: str, data: bytes) -> None:
        """Gossip ``data`` on ``topic``; NetworkError above MAX_GOSSIP_BYTES."""

    def subscribe(self, topic: str, validator: Validator, *, bulk: bool = False
                  ) -> trio.MemoryReceiveChannel[Gossip]:
        """Messages of ``topic`` that ``validator`` accepted (it runs before they are
        forwarded; REJECT penalizes the sender). The messages of a ``bulk`` topic (txs)
        give way to all others (votes, proposals, blocks) on their way to each peer,
        whether this node publishes or forwards them."""

    def set_handler(self, protocol: str, handler: Handler, *, max_request_bytes: int) -> None:
        """Answer requests of ``protocol``; a request above the limit is refused."""

    async def request(self, peer: PeerId, protocol: str, data: bytes, *, max_response_bytes: int,
                      timeout: float) -> bytes:
        """``peer``'s answer; NetworkError if it fails, is too large or is late."""

    def inbox(self, protocol: str, *, max_message_bytes: int, capacity: int = INBOX
              ) -> trio.MemoryReceiveChannel[Gossip]:
        """The direct messages peers send on ``protocol``, each peer's in the order it
        sent them, ``capacity`` of them waiting at most (a peer's next one waits on its
        stream). A message above the limit costs its sender and ends its stream; a
        blocked or banned peer's are dropped; a peer's stream beyond ``INBOUND_STREAMS``
        open on the protocol is reset and costs it."""

    async def send(self, peer: PeerId, protocol: str, data: bytes) -> bool:
        """Queue ``data`` for connected ``peer`` on ``protocol`` (messages to one peer on
        one protocol leave in order on one stream); False, and nothing sent, if the peer is
        not connected, is blocked or banned, or already has ``SEND_QUEUE`` messages
        waiting. Delivery is not confirmed."""

    def listen_addrs(self) -> list[str]:
        """This node's addresses, each ending in ``/p2p/<peer id>``."""

    async def connect(self, address: str) -> PeerId:
        """Dial ``address`` (ending in ``/p2p/<peer id>``) unless connected already;
        NetworkError if it fails or the peer is banned."""

    async def disconnect(self, peer: PeerId) -> None:
        """Close the connection to ``peer``, if any."""

    def peers(self) -> list[PeerId]:
        """The peers connected now."""

    def link(self, peer: PeerId) -> Link | None:
        """The connection to ``peer``; None if it is not connected."""

    def score(self, peer: PeerId) -> float:
        """``peer``'s score: 0 for a good peer, lower for one that misbehaved."""

    def penalize(self, peer: PeerId, points: float, reason: str) -> None:
        """Lower ``peer``'s score; below the threshold it is disconnected and banned."""

    def ban(self, peer: PeerId, reason: str) -> None:
        """Disconnect ``peer`` and refuse it for the ban period."""

    def peer_events(self) -> trio.MemoryReceiveChannel[PeerEvent]:
        """Connections and disconnections, from now on."""

    def block(self, peers: Collection[PeerId]) -> None:
        """Stop hearing ``peers`` (replacing the last call's set; empty: none): gossip
        they send or forward is dropped, their requests go unanswered and requests to
        them fail, without penalty. The connections stay up, so lifting it heals at
        once. Blocked on both sides, two groups of nodes are partitioned (gossip
        crosses only by a direct hop, which the receiving side drops)."""


def peer_of(address: str) -> PeerId:
    """The peer id an address ends in (``.../p2p/<peer id>``); NetworkError if none."""
    _, sep, peer = address.rpartition("/p2p/")
    if not sep or not peer or "/" in peer:
        raise NetworkError(f"not a peer address (it must end in /p2p/<peer id>): {address}")
    return PeerId(peer)


def gossip_topic(chain_id: str, name: str) -> str:
    """``/bizra/<chain id>/<name>/1`` (§8): name is txs, consensus or blocks."""
    return f"/bizra/{chain_id}/{name}/1"


def request_protocol(chain_id: str, name: str, version: int = 1) -> str:
    """``/bizra/<chain id>/<name>/<version>`` (§8)."""
    return f"/bizra/{chain_id}/{name}/{version}"
