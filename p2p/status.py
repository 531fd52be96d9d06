"""The status handshake (``/bizra/<chain id>/status/2``, §8.4): on every new connection
each side asks the other for its chain id, genesis hash, height, its addresses, the
addresses of the peers it is connected to and the lowest height it serves blocks from;
a peer of another chain or genesis is banned at once. Connected peers are asked again
every ``REFRESH_S``. What peers said is kept for block sync (the heights they hold) and
peer exchange (:mod:`p2p.peering` dials the addresses they know).

A node of the first version of the handshake (``status/1``, the same without the lowest
height) is asked that one, and answered in it. A node restored from a snapshot (state
sync) serves blocks from its snapshot's height on only, and the lowest height tells its
peers not to ask it for older ones (CometBFT's blocksync status carries its ``base`` so).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio

from chain.codec import (
    dumps,
    expect_array,
    expect_bytes,
    expect_list,
    expect_text,
    expect_uint,
    loads_canonical,
)
from chain.errors import DecodeError, NetworkError
from chain.service import TaskStatus
from chain.sizes import HASH_LEN
from p2p.network import Network, UnsupportedProtocol, request_protocol
from p2p.peers import PeerId

log = logging.getLogger(__name__)

MAX_STATUS_BYTES = 4_096
STATUS_TIMEOUT_S = 5.0
MAX_ADDRESSES = 16
REFRESH_S = 10.0
VERSION = 2
"""The handshake's version; version 1 is still asked of, and answered to, older nodes."""


@dataclass(frozen=True, slots=True)
class Status:
    chain_id: str
    genesis_hash: bytes
    height: int
    addresses: tuple[str, ...]
    """Where the peer listens, each ending in ``/p2p/<its peer id>``."""
    peers: tuple[str, ...] = ()
    """Addresses of the peers it is connected to (peer exchange)."""
    base: int = 0
    """The lowest height whose block (with its commit) it serves; 0 when it did not say
    (a version-1 status): from the chain's first."""

    def encode(self, version: int = VERSION) -> bytes:
        """``[chain_id, genesis_hash, height, [address…], [peer address…], base]``; in
        version 1, without ``base``."""
        fields: list[object] = [self.chain_id, self.genesis_hash, self.height, list(self.addresses),
                                list(self.peers)]
        if version >= 2:
            fields.append(self.base)
        return dumps(fields)

    @classmethod
    def decode(cls, data: bytes, version: int = VERSION) -> Status:
        fields = expect_array(loads_canonical(data, "status"), 6 if version >= 2 else 5, "status")
        chain_id, genesis_hash, height, addresses, peers = fields[:5]
        return cls(expect_text(chain_id, "status.chain_id", 50),
                   expect_bytes(genesis_hash, "status.genesis_hash", HASH_LEN),
                   expect_uint(height, "status.height"),
                   _addresses(addresses, "status.addresses"),
                   _addresses(peers, "status.peers"),
                   expect_uint(fields[5], "status.base") if version >= 2 else 0)


def _addresses(value: object, what: str) -> tuple[str, ...]:
    return tuple(expect_text(a, what, 200) for a in expect_list(value, what, MAX_ADDRESSES))


class StatusService:
    """Answers status requests and checks every new peer's. ``base`` gives the lowest
    height this node serves blocks from (0: from the chain's first)."""

    def __init__(self, network: Network, chain_id: str, genesis_hash: bytes, height: Callable[[], int],
                 addresses: Callable[[], list[str]], base: Callable[[], int] = lambda: 0) -> None:
        self.network = network
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.height = height
        self.addresses = addresses
        self.base = base
        self.protocols = {version: request_protocol(chain_id, "status", version) for version in (VERSION, 1)}
        """The handshake's protocol by version, the current first."""
        self.peers: dict[PeerId, Status] = {}
        self._versions: dict[PeerId, int] = {}
        """The version each connected peer answered in: the one it is asked in again."""
        for version, protocol in self.protocols.items():
            network.set_handler(protocol, functools.partial(self._answer, version), max_request_bytes=0)

    def status(self) -> Status:
        """What this node tells its peers."""
        addresses = tuple(self.addresses()[:MAX_ADDRESSES])
        peers = tuple(status.addresses[0] for status in self.peers.values() if status.addresses)
        return Status(self.chain_id, self.genesis_hash, self.height(), addresses, peers[:MAX_ADDRESSES],
                      self.base())

    async def _answer(self, version: int, peer: PeerId, request: bytes) -> bytes:
        return self.status().encode(version)

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        events = self.network.peer_events()
        task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._refresh)
            async for event in events:
                if event.connected:
                    nursery.start_soon(self.check, event.peer)
                else:
                    self.peers.pop(event.peer, None)
                    self._versions.pop(event.peer, None)

    async def _refresh(self) -> None:
        while True:
            await trio.sleep(REFRESH_S)
            async with trio.open_nursery() as nursery:
                for peer in self.network.peers():
                    nursery.start_soon(self.check, peer)

    async def check(self, peer: PeerId) -> Status | None:
        """Ask ``peer`` for its status, in the first version of the handshake it serves:
        the one it answered in before first, else the current one; ban it if it is another
        chain's (or lies)."""
        known = self._versions.get(peer)
        versions = sorted(self.protocols, key=lambda v: v != known)  # stable: the current next
        try:
            for version in versions:
                protocol = self.protocols[version]
                try:
                    raw = await self.network.request(peer, protocol, b"", max_response_bytes=MAX_STATUS_BYTES,
                                                     timeout=STATUS_TIMEOUT_S)
                except UnsupportedProtocol:
                    continue
                status = Status.decode(raw, version)
                self._versions[peer] = version
                break
            else:
                self.network.ban(peer, "it does not speak this chain's status protocol: another chain")
                return None
        except NetworkError as exc:
            log.info("no status from peer", extra={"peer": peer, "error": str(exc)})
            return None
        except DecodeError as exc:
            self.network.ban(peer, f"unreadable status: {exc}")
            return None
        if status.chain_id != self.chain_id or status.genesis_hash != self.genesis_hash:
            self.network.ban(peer, f"another chain: {status.chain_id} "
                                   f"(genesis {status.genesis_hash.hex()[:16]}…)")
            return None
        self.peers[peer] = status
        return status
