"""Peers find each other from one bootnode, keep within the maximum, and come back after
a restart; rate limits and the node key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import trio
import trio.testing

from chain.errors import NetworkError
from p2p import nodekey
from p2p.memory import MemoryHub, MemoryNetwork
from p2p.peering import BACKOFF_MAX_S, MAX_CANDIDATES, PeerManager
from p2p.peers import PeerId, RateLimit
from p2p.status import MAX_ADDRESSES, Status, StatusService

CHAIN = "bizra-devnet-1"


class Node:
    """A memory-network node with its status service and peer manager."""

    def __init__(self, hub: MemoryHub, name: str, bootnodes: list[str], *, target: int = 10,
                 maximum: int = 40) -> None:
        self.net: MemoryNetwork = hub.join(name)
        self.status = StatusService(self.net, CHAIN, bytes(32), lambda: 0, self.net.listen_addrs)
        self.peering = PeerManager(self.net, self.status, bootnodes, target=target, maximum=maximum)

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.status.run)
        await nursery.start(self.peering.run)


def address(name: str) -> str:
    return f"/memory/p2p/{name}"


async def test_nodes_that_know_one_bootnode_find_each_other(autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub()
    nodes = [Node(hub, "boot", [])] + [Node(hub, f"n{i}", [address("boot")]) for i in range(1, 6)]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await node.start(nursery)
            await trio.sleep(1)
        await trio.sleep(5)
        for node in nodes:
            assert len(node.net.peers()) == 5, node.net.local_id
        nursery.cancel_scope.cancel()


async def test_a_full_node_sheds_peers_who_then_settle_elsewhere(
        autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub()
    boot = Node(hub, "boot", [], target=1, maximum=2)
    others = [Node(hub, f"n{i}", [address("boot")], target=2, maximum=3) for i in range(5)]
    events = boot.net.peer_events()
    async with trio.open_nursery() as nursery:
        for node in [boot, *others]:
            await node.start(nursery)
        await trio.sleep(30)
        while True:  # what happened so far
            try:
                events.receive_nowait()
            except trio.WouldBlock:
                break
        await trio.sleep(30)
        assert len(boot.net.peers()) <= 2
        for node in others:
            assert len(node.net.peers()) >= 2, node.net.local_id
        churn = 0
        while True:
            try:
                churn += events.receive_nowait().connected
            except trio.WouldBlock:
                break
        assert churn <= 2, "the others settled on each other instead of redialling the full node"
        nursery.cancel_scope.cancel()


async def test_a_restarted_bootnode_is_back_within_10_seconds(autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub()
    a, b = Node(hub, "a", [address("boot")]), Node(hub, "b", [address("boot")])
    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as boot_tasks:
            boot = Node(hub, "boot", [])
            await boot.start(boot_tasks)
            await a.start(nursery)
            await b.start(nursery)
            await trio.sleep(3)
            assert boot.net.peers() == [PeerId("a"), PeerId("b")]
            assert a.net.peers() == [PeerId("b"), PeerId("boot")]  # b, found through the bootnode
            boot_tasks.cancel_scope.cancel()
        hub.leave(PeerId("boot"))
        await trio.sleep(60)  # down long enough for the dials to back off fully
        assert a.peering.candidates[PeerId("boot")].failures > 5
        restarted = Node(hub, "boot", [])
        await restarted.start(nursery)
        started = trio.current_time()
        with trio.fail_after(10):
            while restarted.net.peers() != [PeerId("a"), PeerId("b")]:
                await trio.sleep(0.1)
        assert trio.current_time() - started <= BACKOFF_MAX_S + 1
        nursery.cancel_scope.cancel()


def test_bootnodes_must_name_their_peer_id() -> None:
    hub = MemoryHub()
    net = hub.join("x")
    status = StatusService(net, CHAIN, bytes(32), lambda: 0, net.listen_addrs)
    with pytest.raises(NetworkError, match="must end in /p2p/"):
        PeerManager(net, status, ["/ip4/127.0.0.1/tcp/26656"])
    with pytest.raises(NetworkError, match="target"):
        PeerManager(net, status, [], target=5, maximum=4)


def test_a_rate_limit_refuses_what_is_over_and_refills() -> None:
    limit = RateLimit(rate=10, burst=20)
    peer = PeerId("p")
    assert sum(limit.allow(peer, 1, now=0.0) for _ in range(30)) == 20
    assert not limit.allow(peer, 1, now=0.05)
    assert sum(limit.allow(peer, 1, now=1.0) for _ in range(30)) == 10
    assert limit.allow(PeerId("other"), 20, now=1.0)  # per peer


def test_the_node_key_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "home" / "node_key.pem"
    key = nodekey.load_or_create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert nodekey.load_or_create(path).seed == key.seed
    assert not list(path.parent.glob("*.tmp"))


def test_a_damaged_node_key_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "node_key.pem"
    path.write_bytes(b"not a key")
    with pytest.raises(NetworkError, match=r"cannot be used.*move it away"):
        nodekey.load_or_create(path)
    assert path.read_bytes() == b"not a key"


def test_peers_cannot_grow_the_candidates_without_bound() -> None:
    """Each status names up to 16 peers, and a peer may name new ones every time: the
    node keeps ``MAX_CANDIDATES`` besides its bootnodes."""
    node = Node(MemoryHub(), "me", [address("boot")])
    for round_ in range(2 * MAX_CANDIDATES // MAX_ADDRESSES):
        named = tuple(address(f"made-up-{round_}-{i}") for i in range(MAX_ADDRESSES))
        node.status.peers[PeerId("liar")] = Status(CHAIN, bytes(32), 0, (), named)
        node.peering._learn()
    assert len(node.peering.candidates) == MAX_CANDIDATES + 1
    assert node.peering.candidates[PeerId("boot")].bootnode
