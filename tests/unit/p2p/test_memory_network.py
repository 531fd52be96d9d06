"""The in-memory network keeps the network's rules: gossip reaches every node through
the mesh once, validation runs before forwarding, a peer sending garbage is penalized,
disconnected and banned, requests honour limits and deadlines."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import trio
import trio.testing
from gossipkit import accept, checking, ignore

from chain.errors import DecodeError, NetworkError
from p2p.memory import MemoryHub, MemoryNetwork
from p2p.network import MAX_GOSSIP_BYTES, Validation, gossip_topic, request_protocol
from p2p.peers import PeerBook, PeerId
from p2p.status import MAX_STATUS_BYTES, Status, StatusService

TOPIC = gossip_topic("bizra-devnet-1", "txs")


def line(n: int) -> tuple[MemoryHub, list[MemoryNetwork]]:
    """``n`` nodes connected in a line: 0 - 1 - 2 - ..."""
    hub = MemoryHub()
    nodes = [hub.join(f"peer{i}") for i in range(n)]
    for a, b in itertools.pairwise(nodes):
        assert hub.connect(a.local_id, b.local_id)
    return hub, nodes


async def test_gossip_crosses_the_mesh_once_per_node() -> None:
    _, nodes = line(4)
    subs = [node.subscribe(TOPIC, accept) for node in nodes]
    await nodes[0].publish(TOPIC, b"batch")
    for sub in subs[1:]:
        got = sub.receive_nowait()
        assert got.data == b"batch"
        with pytest.raises(trio.WouldBlock):
            sub.receive_nowait()
    with pytest.raises(trio.WouldBlock):
        subs[0].receive_nowait()  # a node does not receive its own message


async def test_blocked_peers_are_not_heard_until_the_block_is_lifted() -> None:
    """0 - 1 - 2, with 1 and 2 blocking each other: a partition, healed at once."""
    _, nodes = line(3)
    subs = [node.subscribe(TOPIC, accept) for node in nodes]
    blocks = request_protocol("bizra-devnet-1", "block-parts")

    async def serve(peer: PeerId, data: bytes) -> bytes:
        return data

    nodes[2].set_handler(blocks, serve, max_request_bytes=100)
    nodes[1].block([nodes[2].local_id])
    nodes[2].block([nodes[1].local_id])
    await nodes[0].publish(TOPIC, b"cut")
    assert subs[1].receive_nowait().data == b"cut"
    with pytest.raises(trio.WouldBlock):
        subs[2].receive_nowait()
    with pytest.raises(NetworkError, match="blocked"):
        await nodes[1].request(nodes[2].local_id, blocks, b"x", max_response_bytes=10, timeout=1)
    assert nodes[1].score(nodes[2].local_id) == nodes[2].score(nodes[1].local_id) == 0
    for node in nodes:
        node.block([])
    await nodes[0].publish(TOPIC, b"healed")
    assert subs[2].receive_nowait().data == b"healed"
    assert await nodes[1].request(nodes[2].local_id, blocks, b"x", max_response_bytes=10, timeout=1) == b"x"


async def test_nothing_above_60_kib_is_gossiped() -> None:
    _, nodes = line(2)
    with pytest.raises(NetworkError, match="above the 61440-byte limit"):
        await nodes[0].publish(TOPIC, bytes(MAX_GOSSIP_BYTES + 1))
    await nodes[0].publish(TOPIC, bytes(MAX_GOSSIP_BYTES))


async def test_a_rejected_message_is_not_forwarded_and_costs_its_sender(
        autojump_clock: trio.testing.MockClock) -> None:
    hub, nodes = line(3)
    refuse_junk = checking(lambda _, data: Validation.REJECT if data == b"junk" else Validation.ACCEPT)
    for node in nodes:
        node.subscribe(TOPIC, refuse_junk)
    last = nodes[2].subscribe(TOPIC, accept)
    await nodes[0].publish(TOPIC, b"junk")
    with pytest.raises(trio.WouldBlock):
        last.receive_nowait()
    assert nodes[1].book.score(nodes[0].local_id) < 0
    for _ in range(10):
        await nodes[0].publish(TOPIC, b"junk")
    assert nodes[0].local_id not in nodes[1].connected  # disconnected
    assert not hub.connect(nodes[0].local_id, nodes[1].local_id)  # and banned
    await trio.sleep(nodes[1].book.ban_seconds + 1)
    assert hub.connect(nodes[0].local_id, nodes[1].local_id)  # until the ban ends


async def test_ignored_messages_cost_nothing() -> None:
    _, nodes = line(2)
    nodes[1].subscribe(TOPIC, ignore)
    for _ in range(50):
        await nodes[0].publish(TOPIC, b"old")
    assert nodes[1].book.score(nodes[0].local_id) == 0


async def test_requests_answer_within_limits_and_deadlines(autojump_clock: trio.testing.MockClock) -> None:
    _, nodes = line(2)
    blocks = request_protocol("bizra-devnet-1", "block-parts")

    async def serve(peer: PeerId, data: bytes) -> bytes:
        if data == b"slow":
            await trio.sleep(60)
        return data * 2

    nodes[1].set_handler(blocks, serve, max_request_bytes=100)
    peer = nodes[1].local_id
    assert await nodes[0].request(peer, blocks, b"ab", max_response_bytes=10, timeout=1) == b"abab"
    with pytest.raises(NetworkError, match="took more than 5 s"):
        await nodes[0].request(peer, blocks, b"slow", max_response_bytes=10, timeout=5)
    with pytest.raises(NetworkError, match="limit is 100"):
        await nodes[0].request(peer, blocks, bytes(101), max_response_bytes=1_000, timeout=1)
    with pytest.raises(NetworkError, match="above 10"):
        await nodes[0].request(peer, blocks, bytes(6), max_response_bytes=10, timeout=1)
    with pytest.raises(NetworkError, match="does not serve"):
        await nodes[0].request(peer, "/other/1", b"", max_response_bytes=10, timeout=1)
    with pytest.raises(NetworkError, match="not connected"):
        await nodes[0].request(PeerId("nobody"), blocks, b"", max_response_bytes=10, timeout=1)


async def test_peer_events_report_connections() -> None:
    hub = MemoryHub()
    a, b = hub.join("a"), hub.join("b")
    events = a.peer_events()
    hub.connect(a.local_id, b.local_id)
    hub.disconnect(a.local_id, b.local_id)
    got = [events.receive_nowait(), events.receive_nowait()]
    assert [(e.peer, e.connected) for e in got] == [(b.local_id, True), (b.local_id, False)]


def test_scores_recover_slowly_and_never_above_zero() -> None:
    book = PeerBook()
    peer = PeerId("p")
    assert not book.penalize(peer, 20, now=0)
    for _ in range(1_000):
        book.reward_valid(peer)
    assert book.score(peer) == 0
    assert book.penalize(peer, 101, now=5)
    assert book.is_banned(peer, now=5 + book.ban_seconds - 1)
    assert not book.is_banned(peer, now=5 + book.ban_seconds)


async def test_a_peer_of_another_chain_is_banned_at_the_handshake(
        autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub()
    ours, same, other = hub.join("ours"), hub.join("same"), hub.join("other")
    services = [StatusService(ours, "bizra-a", bytes(32), lambda: 7, lambda: ["/ip4/127.0.0.1/tcp/1"]),
                StatusService(same, "bizra-a", bytes(32), lambda: 9, lambda: []),
                StatusService(other, "bizra-b", bytes(32), lambda: 9, lambda: [])]
    async with trio.open_nursery() as nursery:
        for service in services:
            await nursery.start(service.run)
        hub.connect(ours.local_id, same.local_id)
        hub.connect(ours.local_id, other.local_id)
        await trio.sleep(1)
        assert ours.peers() == [same.local_id]
        assert services[0].peers[same.local_id].height == 9
        assert services[1].peers[ours.local_id].addresses == ("/ip4/127.0.0.1/tcp/1",)
        assert not hub.connect(ours.local_id, other.local_id)  # banned
        nursery.cancel_scope.cancel()


async def test_a_peer_with_another_genesis_is_banned_too(autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryHub()
    a, b = hub.join("a"), hub.join("b")
    service = StatusService(a, "bizra-a", bytes(32), lambda: 1, lambda: [])
    StatusService(b, "bizra-a", b"\x01" * 32, lambda: 1, lambda: [])
    hub.connect(a.local_id, b.local_id)
    assert await service.check(b.local_id) is None
    assert a.peers() == []
    assert a.book.is_banned(b.local_id, trio.current_time())


async def test_the_status_says_the_lowest_height_served_and_an_older_node_is_talked_to_in_its_version(
        autojump_clock: trio.testing.MockClock) -> None:
    """A node tells its peers the lowest height it serves blocks from (one restored from
    a snapshot serves none below it). A node of the
    first version of the handshake, which does not say it, is asked and answered in
    that version and stays connected; its lowest height is taken as the first."""
    hub = MemoryHub()
    ours, restored, older = hub.join("ours"), hub.join("restored"), hub.join("older")
    service = StatusService(ours, "bizra-a", bytes(32), lambda: 7, lambda: [], lambda: 1)
    StatusService(restored, "bizra-a", bytes(32), lambda: 90, lambda: [], lambda: 40)
    old_status = Status("bizra-a", bytes(32), 12, ("/memory/p2p/older",))

    async def answer_in_version_1(peer: PeerId, request: bytes) -> bytes:
        return old_status.encode(1)

    older.set_handler(request_protocol("bizra-a", "status", 1), answer_in_version_1, max_request_bytes=0)
    hub.connect(ours.local_id, restored.local_id)
    hub.connect(ours.local_id, older.local_id)
    seen = await service.check(restored.local_id)
    assert seen is not None and (seen.height, seen.base) == (90, 40)
    assert await service.check(older.local_id) == old_status and old_status.base == 0
    assert sorted(ours.peers()) == sorted([restored.local_id, older.local_id])
    # asked again, it is asked in its version at once
    asked: list[str] = []
    request = ours.request

    async def recorded(peer: PeerId, protocol: str, data: bytes, *, max_response_bytes: int,
                       timeout: float) -> bytes:
        asked.append(protocol)
        return await request(peer, protocol, data, max_response_bytes=max_response_bytes, timeout=timeout)

    ours.request = recorded  # type: ignore[method-assign]
    assert await service.check(older.local_id) == old_status
    assert await service.check(restored.local_id) is not None
    assert asked == [request_protocol("bizra-a", "status", 1), request_protocol("bizra-a", "status", 2)]
    ours.request = request  # type: ignore[method-assign]
    # and an older node asking this one gets the first version's five fields
    answer = await older.request(ours.local_id, request_protocol("bizra-a", "status", 1), b"",
                                 max_response_bytes=MAX_STATUS_BYTES, timeout=5)
    assert Status.decode(answer, 1) == dataclasses.replace(service.status(), base=0)
    with pytest.raises(DecodeError, match="expected 6 fields, got 5"):
        Status.decode(answer)


def test_a_status_that_does_not_decode_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        Status.decode(b"\x80")
    status = Status("c", bytes(32), 3, ("x/p2p/a",), ("y/p2p/b",), 2)
    assert Status.decode(status.encode()) == status
    with pytest.raises(DecodeError):
        Status.decode(status.encode(), 1)


async def test_a_link_says_who_dialed_while_the_peers_are_connected() -> None:
    hub, (a, b) = line(2)
    to_b, to_a = a.link(b.local_id), b.link(a.local_id)
    assert to_b is not None and to_a is not None
    assert (to_b.outbound, to_a.outbound) == (True, False)
    assert to_b.remote_ip == "" and to_b.since_ns > 0
    hub.disconnect(a.local_id, b.local_id)
    assert a.link(b.local_id) is None and b.link(a.local_id) is None
