"""libp2p between separate processes on loopback: 4 nodes find each other from one
bootnode and gossip reaches all, killed and restarted peers are back within 10 s,
gossip and request/response of a 4 MiB body, a peer sending garbage disconnected and
banned, a node of another chain refused at the status handshake; and in-process, a
peer that offers only plaintext is refused (the test builds that peer with py-libp2p
itself), a peer writing unreadable bytes on the gossip stream, a busy port, a burst
of full-size messages, a clean shutdown under load."""

from __future__ import annotations

import contextlib
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from hashlib import sha256
from pathlib import Path

import multiaddr
import pytest
import trio
from gossipkit import accept
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport

import p2p.host
from chain.crypto import PrivateKey, address_of
from chain.errors import NetworkError
from chain.service import TaskStatus
from p2p.host import REQUESTS_PER_S, Libp2pNetwork
from p2p.network import (
    INBOUND_STREAMS,
    INVALID_MESSAGE_PENALTY,
    MAX_GOSSIP_BYTES,
    Gossip,
    Handler,
    Validation,
    Validator,
)
from p2p.peers import PeerId
from p2p.txgossip import TxGossip

NODE = Path(__file__).resolve().parents[1] / "scripts" / "p2pnode.py"


class Node:
    """A ``p2pnode.py`` process and the lines it prints."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, str(NODE), *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def wait_for(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        for line in self.seen:
            if line.startswith(prefix):
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line {prefix!r} within {timeout} s; got {self.seen}")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()

    def wait_for_peers(self, count: int, timeout: float) -> float:
        """Seconds until the node reports ``count`` peers."""
        started = time.monotonic()
        self.wait_for(f"peers {count}", timeout)
        return time.monotonic() - started

    def forget(self) -> None:
        """Drop the lines seen so far (the next wait_for looks at new ones only)."""
        self.seen.clear()


@contextmanager
def nodes() -> Iterator[list[Node]]:
    """The processes started inside, killed on the way out."""
    started: list[Node] = []
    try:
        yield started
    finally:
        for node in started:
            node.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_four_nodes_find_each_other_from_one_bootnode_and_come_back_after_a_restart() -> None:
    with nodes() as running:
        boot_port = free_port()
        boot = Node("10", "--port", str(boot_port), "--discover", "3")
        running.append(boot)
        address = boot.wait_for("addr").split()[1]
        others = [Node(str(seed), "--bootnode", address, "--discover", "3") for seed in (11, 12)]
        publisher = Node("13", "--bootnode", address, "--discover", "3", "--publish", "hello")
        running += [*others, publisher]
        for node in [boot, *others, publisher]:
            node.wait_for_peers(3, timeout=30)
        for node in [boot, *others]:
            assert node.wait_for("got hello 9")

        # A peer is killed and restarts with the same key on another port.
        others[0].stop()
        for node in [boot, others[1], publisher]:
            node.wait_for("peers 2", timeout=15)
            node.forget()
        restarted = Node("11", "--bootnode", address, "--discover", "3")
        running.append(restarted)
        restarted.wait_for("addr")
        assert restarted.wait_for_peers(3, timeout=10) <= 10
        for node in [boot, others[1], publisher]:
            node.wait_for("peers 3", timeout=10)
            node.forget()

        # The bootnode is killed, stays down while the others' dials back off, and
        # restarts on its port: the others dial it again.
        boot.stop()
        for node in [restarted, others[1], publisher]:
            node.wait_for("peers 2", timeout=15)
        time.sleep(10)
        boot = Node("10", "--port", str(boot_port), "--discover", "3")
        running.append(boot)
        boot.wait_for("addr")
        assert boot.wait_for_peers(3, timeout=10) <= 10


@pytest.mark.slow
def test_gossip_and_a_4_mib_body_between_processes() -> None:
    with nodes() as running:
        a = Node("1")
        running.append(a)
        address = a.wait_for("addr").split()[1]
        b = Node("2", "--bootnode", address, "--publish", "hello", "--request", str(4 << 20))
        running.append(b)
        assert a.wait_for("joined")
        assert a.wait_for("got hello")
        assert b.wait_for("response") == f"response {4 << 20}"


@pytest.mark.slow
def test_a_peer_sending_garbage_is_disconnected_and_banned() -> None:
    with nodes() as running:
        a = Node("1")
        running.append(a)
        address = a.wait_for("addr").split()[1]
        b = Node("3", "--bootnode", address, "--junk", "8", "--publish", "after")
        running.append(b)
        joined = a.wait_for("joined").split()[1]
        assert a.wait_for("left") == f"left {joined}"
        time.sleep(3)
        a.wait_for("left")
        assert not any(line.startswith("got") for line in a.seen + list(a.lines.queue))


@pytest.mark.slow
def test_a_node_of_another_chain_is_refused_at_the_handshake() -> None:
    with nodes() as running:
        a = Node("1")
        running.append(a)
        address = a.wait_for("addr").split()[1]
        b = Node("4", "--chain", "bizra-other-1", "--bootnode", address, "--publish", "hello")
        running.append(b)
        joined = a.wait_for("joined").split()[1]
        assert a.wait_for("left", timeout=15) == f"left {joined}"
        time.sleep(2)
        a.wait_for("left")
        assert not any(line.startswith("got") for line in a.seen + list(a.lines.queue))


async def test_a_plaintext_only_peer_is_refused() -> None:
    net = Libp2pNetwork(sha256(b"noise only").digest())
    key_pair = create_new_key_pair(sha256(b"plaintext").digest())
    plain = new_host(key_pair=key_pair, sec_opt={PLAINTEXT_PROTOCOL_ID: InsecureTransport(key_pair)})
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        async with plain.run(listen_addrs=[]):
            with pytest.raises(Exception):  # noqa: B017 (whatever py-libp2p raises: it must not connect)
                with trio.fail_after(10):
                    await plain.connect(info_from_p2p_addr(multiaddr.Multiaddr(net.listen_addrs()[0])))
            assert net.peers() == []
        nursery.cancel_scope.cancel()


async def test_a_peer_sending_unreadable_gossip_is_banned_and_the_node_runs_on() -> None:
    """Bytes on the gossip stream that are no pubsub RPC stop py-libp2p's read loop with
    an exception that would stop the whole host; the node bans the sender instead, and
    goes on gossiping with the others."""
    net, good = Libp2pNetwork(sha256(b"victim").digest()), Libp2pNetwork(sha256(b"good").digest())
    topic = "/bizra/bizra-test-1/txs/1"
    received = net.subscribe(topic, accept)
    good.subscribe(topic, accept)
    key_pair = create_new_key_pair(sha256(b"rogue").digest())
    rogue = new_host(key_pair=key_pair)
    rogue_id = PeerId(rogue.get_id().to_base58())
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        await nursery.start(good.run)
        async with rogue.run(listen_addrs=[]):
            await rogue.connect(info_from_p2p_addr(multiaddr.Multiaddr(net.listen_addrs()[0])))
            stream = await rogue.new_stream(ID.from_base58(net.local_id), [TProtocol("/meshsub/1.1.0")])
            await stream.write(b"\x06" + b"\xff" * 6)  # a length, then bytes that are no RPC
            with trio.fail_after(10):
                while rogue_id in net.peers() or not net.book.is_banned(rogue_id, trio.current_time()):
                    await trio.sleep(0.1)
        await good.connect(net.listen_addrs()[0])
        await trio.sleep(2)  # the mesh forms
        await good.publish(topic, b"still here")
        with trio.fail_after(10):
            assert (await received.receive()).data == b"still here"
        nursery.cancel_scope.cancel()

async def test_a_banned_peer_that_connects_again_is_dropped_as_it_connects(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """py-libp2p accepts every connection it can upgrade; the node drops a banned
    peer's at once, not at its next look over its connections (made rare here)."""
    monkeypatch.setattr(p2p.host, "WATCH_INTERVAL_S", 3600.0)
    net, rogue = Libp2pNetwork(sha256(b"gate").digest()), Libp2pNetwork(sha256(b"gate rogue").digest())
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        await nursery.start(rogue.run)
        net.ban(rogue.local_id, "a test")
        with contextlib.suppress(NetworkError):  # the node may drop it before it returns
            await rogue.connect(net.listen_addrs()[0])
        with trio.fail_after(10):
            while net.peers() or rogue.peers():
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()


TOPIC = "/bizra/bizra-test-1/txs/1"


@asynccontextmanager
async def meshed(name: str, validate: Validator
                 ) -> AsyncIterator[tuple[Libp2pNetwork, Libp2pNetwork, trio.MemoryReceiveChannel[Gossip]]]:
    """Two running nodes ``a`` and ``b`` on ``TOPIC``, connected, their mesh formed, and
    what ``b`` accepts of the gossip (checked by ``validate``); stopped on the way out."""
    a, b = (Libp2pNetwork(sha256(f"{name} {side}".encode()).digest()) for side in "ab")
    received = b.subscribe(TOPIC, validate)
    a.subscribe(TOPIC, validate)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await a.connect(b.listen_addrs()[0])
        await trio.sleep(2)  # the mesh forms
        yield a, b, received
        nursery.cancel_scope.cancel()


async def test_a_validator_that_raises_drops_the_message_not_the_node() -> None:
    async def validate(peer: PeerId, data: bytes) -> Validation:
        if data == b"boom":
            raise RuntimeError("a bug in a validator")
        return Validation.ACCEPT

    async with meshed("raises", validate) as (a, b, received):
        await a.publish(TOPIC, b"boom")
        await a.publish(TOPIC, b"after")
        with trio.fail_after(10):
            assert (await received.receive()).data == b"after"
        assert b.score(a.local_id) == 0 and a.local_id in b.peers()

async def test_gossip_above_the_limit_is_refused_and_costs_its_sender() -> None:
    """py-libp2p reads pubsub messages of up to 1 MiB; one above the protocol's 60 KiB is
    refused before any validator sees it, and its sender loses score (here it goes
    round the publisher's own check, as a hostile peer would)."""
    seen: list[int] = []

    async def validate(peer: PeerId, data: bytes) -> Validation:
        seen.append(len(data))
        return Validation.ACCEPT

    async with meshed("large", validate) as (a, b, received):
        await a._pubsub.publish(TOPIC, bytes(MAX_GOSSIP_BYTES + 1))
        await a.publish(TOPIC, b"after")
        with trio.fail_after(10):
            assert (await received.receive()).data == b"after"
        assert seen == [len(b"after")] and b.score(a.local_id) < 0


ECHO = "/bizra/bizra-test-1/echo/1"


@asynccontextmanager
async def asking(name: str, protocol: str, handler: Handler
                 ) -> AsyncIterator[tuple[Libp2pNetwork, Libp2pNetwork, PeerId]]:
    """A running ``server`` that answers ``protocol`` with ``handler`` (and ``ECHO``
    with ``echo``), a running ``client`` connected to it, and the server's peer id;
    stopped on the way out."""
    server, client = (Libp2pNetwork(sha256(f"{name} {side}".encode()).digest())
                      for side in ("serves", "asks"))
    server.set_handler(protocol, handler, max_request_bytes=64)
    server.set_handler(ECHO, echo, max_request_bytes=64)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        await nursery.start(client.run)
        yield server, client, await client.connect(server.listen_addrs()[0])
        nursery.cancel_scope.cancel()


async def test_a_request_handler_that_fails_costs_the_requester_and_the_node_serves_on() -> None:
    async def crash(peer: PeerId, data: bytes) -> bytes:
        raise KeyError(data)  # any failure a request could cause

    async with asking("crash", "/bizra/bizra-test-1/crash/1", crash) as (server, client, peer):
        with pytest.raises(NetworkError):
            await client.request(peer, "/bizra/bizra-test-1/crash/1", b"x", max_response_bytes=64, timeout=5)
        assert await client.request(peer, ECHO, b"y", max_response_bytes=64, timeout=5) == b"y"
        assert server.score(client.local_id) < 0


async def test_requests_that_time_out_free_their_streams_so_the_peer_is_still_asked() -> None:
    """A yamux connection opens 256 streams at a time; a request that times out must
    still reset its stream, or a peer that never answers 256 of them (slow, or hostile)
    would leave no stream to ask it anything again, nor, after 10,000, any peer."""
    async def never(peer: PeerId, data: bytes) -> bytes:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async with asking("stalls", "/bizra/bizra-test-1/never/1", never) as (_, client, peer):
        timed_out = 0

        async def ask() -> None:
            nonlocal timed_out
            with pytest.raises(NetworkError, match="took more than"):
                await client.request(peer, "/bizra/bizra-test-1/never/1", b"x", max_response_bytes=64,
                                     timeout=1)
            timed_out += 1

        for _ in range(3):  # in waves the server's request rate limit lets through
            async with trio.open_nursery() as wave:
                for _ in range(REQUESTS_PER_S * 2):
                    wave.start_soon(ask)
            await trio.sleep(2)
        assert timed_out == REQUESTS_PER_S * 6 > 256
        with trio.fail_after(10):
            assert await client.request(peer, ECHO, b"y", max_response_bytes=64, timeout=5) == b"y"


async def test_a_port_in_use_is_refused_with_a_clear_message() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        net = Libp2pNetwork(sha256(b"busy").digest(), port=port)
        with pytest.raises(NetworkError, match=f"cannot listen on 127.0.0.1:{port}.*another node"):
            await net.run()


def test_a_peers_cometbft_node_id_is_the_address_of_the_key_its_peer_id_holds() -> None:
    seed = sha256(b"node id").digest()
    network = Libp2pNetwork(seed)
    assert network.node_id(network.local_id) == address_of(PrivateKey.from_seed(seed).public_key).hex()
    assert network.node_id(PeerId("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")) == ""  # a key's hash
    assert network.node_id(PeerId("not base58!")) == ""


async def test_a_bad_address_is_a_network_error() -> None:
    net = Libp2pNetwork(sha256(b"dialer").digest())
    with pytest.raises(NetworkError, match="not a peer address"):
        await net.connect("/ip4/127.0.0.1/tcp/1")


async def test_a_burst_of_full_size_messages_all_arrive() -> None:
    """py-libp2p queues 32 messages per peer and drops the rest silently; publishing
    waits for room instead, so a burst of 200 messages of 60 KiB all arrive."""
    a, b = Libp2pNetwork(sha256(b"burst a").digest()), Libp2pNetwork(sha256(b"burst b").digest())
    topic = "/bizra/bizra-test-1/txs/1"
    received = b.subscribe(topic, accept)
    a.subscribe(topic, accept)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await a.connect(b.listen_addrs()[0])
        await trio.sleep(3)  # the mesh forms
        for i in range(200):
            await a.publish(topic, i.to_bytes(2, "big") * (MAX_GOSSIP_BYTES // 2))
        got: set[int] = set()
        with trio.fail_after(30):
            while len(got) < 200:
                got.add(int.from_bytes((await received.receive()).data[:2], "big"))
        nursery.cancel_scope.cancel()


async def echo(peer: PeerId, data: bytes) -> bytes:
    return data


async def test_shutdown_under_load_is_clean() -> None:
    """Two nodes flood each other with full-size gossip and 4 MiB requests; one stops
    mid-stream and the other carries on, then stops too: nothing escapes either (no
    ExceptionGroup out of py-libp2p's pubsub), and each stops within seconds."""
    a, b = Libp2pNetwork(sha256(b"load a").digest()), Libp2pNetwork(sha256(b"load b").digest())
    topic = "/bizra/bizra-test-1/txs/1"
    protocol = "/bizra/bizra-test-1/echo/1"
    inbox = {net.local_id: net.subscribe(topic, accept) for net in (a, b)}
    for net in (a, b):
        net.set_handler(protocol, echo, max_request_bytes=8 << 20)
    received = {a.local_id: 0, b.local_id: 0}
    scopes: dict[PeerId, trio.CancelScope] = {}

    async def flood(net: Libp2pNetwork) -> None:
        while True:
            with contextlib.suppress(NetworkError):
                await net.publish(topic, bytes(MAX_GOSSIP_BYTES))
            await trio.sleep(0.005)

    async def count(net: Libp2pNetwork) -> None:
        async for _ in inbox[net.local_id]:
            received[net.local_id] += 1

    async def fetch(net: Libp2pNetwork, peer: PeerId) -> None:
        while True:
            with contextlib.suppress(NetworkError):
                await net.request(peer, protocol, bytes(4 << 20), max_response_bytes=8 << 20, timeout=10)

    async def node(net: Libp2pNetwork, other: PeerId, *, task_status: TaskStatus) -> None:
        with trio.CancelScope() as scopes[net.local_id]:
            async with trio.open_nursery() as nursery:
                await nursery.start(net.run)
                task_status.started()
                nursery.start_soon(count, net)
                nursery.start_soon(flood, net)
                nursery.start_soon(fetch, net, other)

    async with trio.open_nursery() as nursery:
        await nursery.start(node, a, b.local_id)
        await nursery.start(node, b, a.local_id)
        await a.connect(b.listen_addrs()[0])
        await trio.sleep(4)
        assert received[a.local_id] > 0 and received[b.local_id] > 0, received

        started = trio.current_time()
        scopes[b.local_id].cancel()
        await trio.sleep(2)  # a goes on publishing and requesting with its peer gone
        with trio.fail_after(5):
            while b.local_id in a.peers():  # a sees b leave
                await trio.sleep(0.1)
        scopes[a.local_id].cancel()
    assert trio.current_time() - started < 10


async def test_a_copy_that_arrives_while_the_first_is_validated_is_dropped_not_delivered_again() -> None:
    """Validators run as tasks, and py-libp2p marks a message seen only once validated:
    a copy relayed by another peer meanwhile was validated and handed to the node a
    second time. It is dropped, and counted."""
    nets = [Libp2pNetwork(sha256(b"copies %d" % i).digest()) for i in range(3)]

    async def slow(peer: PeerId, data: bytes) -> Validation:
        await trio.sleep(0.5)  # node 1's relay arrives meanwhile
        return Validation.ACCEPT

    inboxes = [net.subscribe(TOPIC, accept) for net in nets[:2]] + [nets[2].subscribe(TOPIC, slow)]
    async with trio.open_nursery() as nursery:
        for net in nets:
            await nursery.start(net.run)
        for i, j in ((0, 1), (0, 2), (1, 2)):
            await nets[i].connect(nets[j].listen_addrs()[0])
        await trio.sleep(3)  # the mesh forms
        for k in range(20):
            await nets[0].publish(TOPIC, b"message %d" % k)
        await trio.sleep(2)
        for inbox in inboxes[1:]:
            got = []
            with contextlib.suppress(trio.WouldBlock):
                while True:
                    got.append(inbox.receive_nowait().data)
            assert sorted(got) == sorted(b"message %d" % k for k in range(20))
        assert nets[2].duplicates > 0
        nursery.cancel_scope.cancel()


async def test_direct_messages_arrive_whole_and_in_order_and_an_oversize_one_costs_its_sender() -> None:
    a, b = (Libp2pNetwork(sha256(f"direct {side}".encode()).digest()) for side in "ab")
    protocol = "/bizra/bizra-test-1/direct/1"
    got: list[bytes] = []
    inbox = b.inbox(protocol, max_message_bytes=MAX_GOSSIP_BYTES)

    async def receive() -> None:
        async for message in inbox:
            assert message.sender == a.local_id
            got.append(message.data)

    sent = [i.to_bytes(2, "big") * (1 + i * 97 % (MAX_GOSSIP_BYTES // 2)) for i in range(300)]
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        nursery.start_soon(receive)
        assert not await a.send(b.local_id, protocol, b"not connected yet")
        await a.connect(b.listen_addrs()[0])
        with trio.fail_after(30):
            for data in sent:
                while not await a.send(b.local_id, protocol, data):  # its queue is full: wait
                    await trio.sleep(0.01)
            while len(got) < len(sent):
                await trio.sleep(0.01)
        assert got == sent and b.score(a.local_id) == 0
        assert await a.send(b.local_id, protocol, bytes(MAX_GOSSIP_BYTES + 1))
        with trio.fail_after(10):
            while b.score(a.local_id) == 0:
                await trio.sleep(0.01)
        assert len(got) == len(sent)
        nursery.cancel_scope.cancel()


async def test_a_peer_opens_two_direct_streams_on_a_protocol_at_most_and_a_third_costs_it() -> None:
    """An honest peer writes one stream per protocol (two for a moment when it opens a
    new one); a peer that opens more, each with a task to read it, is refused the third
    and loses score, while its first two still deliver."""
    a, b = (Libp2pNetwork(sha256(f"streams {side}".encode()).digest()) for side in "ab")
    protocol = "/bizra/bizra-test-1/direct/1"
    inbox = b.inbox(protocol, max_message_bytes=MAX_GOSSIP_BYTES)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await a.connect(b.listen_addrs()[0])
        streams = [await a._host.new_stream(ID.from_base58(b.local_id), [TProtocol(protocol)])
                   for _ in range(INBOUND_STREAMS)]
        with contextlib.suppress(Exception):  # reset as it opens, or right after
            await a._host.new_stream(ID.from_base58(b.local_id), [TProtocol(protocol)])
        with trio.fail_after(10):
            while b.score(a.local_id) == 0:
                await trio.sleep(0.01)
        assert b.score(a.local_id) == -INVALID_MESSAGE_PENALTY
        for i, stream in enumerate(streams):
            await stream.write(len(b"%d" % i).to_bytes(4, "big") + b"%d" % i)
        with trio.fail_after(10):
            got = {(await inbox.receive()).data for _ in range(INBOUND_STREAMS)}
        assert got == {b"%d" % i for i in range(INBOUND_STREAMS)}
        nursery.cancel_scope.cancel()


async def test_tx_gossip_reaches_every_node_of_a_full_mesh_about_once() -> None:
    """Four nodes on loopback, each connected to the others, each submitting txs: every
    node receives every other node's txs, and nearly every batch once."""
    nets = [Libp2pNetwork(sha256(f"tx gossip {i}".encode()).digest()) for i in range(4)]
    gossips = [TxGossip(net, "bizra-test-1", lambda tx: Validation.ACCEPT) for net in nets]
    got: list[set[bytes]] = [set() for _ in nets]

    async def collect(i: int) -> None:
        async for _, txs in gossips[i].received:
            got[i].update(txs)

    async with trio.open_nursery() as nursery:
        for net, gossip in zip(nets, gossips, strict=True):
            await nursery.start(net.run)
            await nursery.start(gossip.run)
        for i, net in enumerate(nets):
            nursery.start_soon(collect, i)
            for other in nets[i + 1:]:
                await net.connect(other.listen_addrs()[0])
        with trio.fail_after(10):
            while any(len(net.peers()) < 3 for net in nets):
                await trio.sleep(0.05)
        async def load(first: int, last: int) -> None:
            for k in range(first, last):
                for i, gossip in enumerate(gossips):
                    await gossip.submit(b"tx %d from %d " % (k, i) + bytes(200))
                if k % 20 == 0:
                    await trio.sleep(0.01)  # ~2,000 txs a second from each node
            with trio.fail_after(30):
                while any(len(txs) < 3 * last for txs in got):
                    await trio.sleep(0.05)

        await load(0, 500)  # the first batches teach the nodes who has what
        received, duplicates = (sum(g.batches_received for g in gossips), sum(g.duplicates for g in gossips))
        await load(500, 4_000)
        received = sum(g.batches_received for g in gossips) - received
        assert sum(g.duplicates for g in gossips) - duplicates <= 0.05 * received
        nursery.cancel_scope.cancel()
