"""The libp2p :class:`~p2p.network.Network`: the only module that imports py-libp2p.

TCP, Noise only (a peer offering only plaintext, SECIO or TLS is refused), yamux;
GossipSub v1.1 (``/meshsub/1.1.0``) with StrictSign and publisher+seqno message ids, a
1-second heartbeat and a mesh degree for 4–100 peers; request/response on streams, one
request per stream, each direction a 4-byte big-endian length and the payload, with
limits and a deadline on both sides; direct messages on one long-lived stream per peer
and protocol, framed the same way and written by one task per stream. Nothing is
discovered on its own: no mDNS, no UPnP, no DHT; peers are the ones the node is told to
dial.

Every py-libp2p exception stops at this module's edge as a NetworkError.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import libp2p.pubsub.gossipsub as gossipsub_module
import libp2p.pubsub.pubsub as pubsub_module
import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyType
from libp2p.crypto.x25519 import create_new_key_pair as create_noise_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import RetryConfig
from libp2p.network.stream.exceptions import StreamError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.protocol_muxer.exceptions import MultiselectClientError
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import OutBoundQueueSize, PriorityQueue, RpcQueue
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import MAX_WINDOW_SIZE, YamuxStream
from libp2p.tools.anyio_service import background_trio_service

from chain.crypto import address_of
from chain.errors import BizraError, NetworkError
from chain.service import TaskStatus
from p2p.network import (
    INBOUND_STREAMS,
    INBOX,
    INVALID_MESSAGE_PENALTY,
    MAX_GOSSIP_BYTES,
    SEND_QUEUE,
    SUBSCRIPTION_BUFFER,
    Gossip,
    Handler,
    Link,
    PeerEvent,
    UnsupportedProtocol,
    Validation,
    Validator,
)
from p2p.peers import PeerBook, PeerId, RateLimit

log = logging.getLogger(__name__)

GOSSIPSUB_PROTOCOL = TProtocol("/meshsub/1.1.0")
MESH_DEGREE, MESH_LOW, MESH_HIGH = 6, 4, 12
HEARTBEAT_SECONDS = 1
OUTBOUND_QUEUE = OutBoundQueueSize  # py-libp2p's per-peer outbound queue (32 messages)
QUEUE_WAIT_S = 2.0
GOSSIP_WINDOW = 4 << 20
"""The receive window each peer's gossip stream starts with (yamux: 256 KiB)."""
URGENT_QUEUE = 1_024
"""Messages of topics that are not bulk a peer's queue takes (py-libp2p: 32 in all)."""
POLL_S = 0.001
DIAL_TIMEOUT_S = 10.0
RESET_TIMEOUT_S = 2.0
"""The longest a stream's reset may take (it waits for the connection's writer)."""
CLOSE_TIMEOUT_S = 2.0
# Our limits in place of py-libp2p's 10-messages-a-second one: a peer's gossip (what it
# forwards, not only what it publishes) and the requests it makes of us. Well above what
# an honest peer sends at full load (bench/gossip.py: ~120 messages/s), well below what
# would starve the node.
GOSSIP_MESSAGES_PER_S = 1_000
GOSSIP_BYTES_PER_S = 16 << 20
REQUESTS_PER_S = 50
WATCH_INTERVAL_S = 0.5
"""How often connections are looked over (peer events; banned peers dropped)."""
VALIDATIONS = 1_024
"""Gossip messages validated at once (py-libp2p's 10 would make the signature checks of
a burst of votes wait on each other instead of going in one batch)."""
# py-libp2p hands received messages to a subscription through a 32-message channel and
# drops what does not fit; our pump empties it at once, but a burst can still overflow
# it, so it is made as large as ours.
pubsub_module.SUBSCRIPTION_CHANNEL_SIZE = SUBSCRIPTION_BUFFER
_LENGTH = 4
RECORD_PEERS = 1_024
"""Peers whose last signed peer record is remembered as checked."""
RECORD_RECHECK_S = 600.0
"""A peer's record is checked again after this long (the peerstore keeps it 2 hours)."""
RECORD_REUSE_S = 5.0
"""How long this node's own signed peer record is reused before its addresses are
looked at again."""


class _SignedRecords:
    """py-libp2p 0.8.1 puts the sender's signed peer record in every gossip RPC, and
    checks the one in every RPC it receives: an Ed25519 check and a peerstore update
    each time (4% of a loaded node's samples), and the sender lists its addresses again
    for each. Here a record already checked from a peer is taken as it was, and this
    node's own is reused for ``RECORD_REUSE_S`` (the addresses it lists change only when
    the node starts listening)."""

    def __init__(self) -> None:
        self._consume = pubsub_module.maybe_consume_signed_record  # type: ignore[attr-defined]
        self._issue = pubsub_module.env_to_send_in_RPC  # type: ignore[attr-defined]
        self._checked: OrderedDict[ID, tuple[bytes, float]] = OrderedDict()
        self._own: weakref.WeakKeyDictionary[Any, tuple[float, tuple[bytes, bool]]] = \
            weakref.WeakKeyDictionary()

    def consume(self, msg: Any, host: Any, peer_id: ID) -> bool:
        if not msg.HasField("senderRecord"):
            return True
        record, now = msg.senderRecord, time.monotonic()
        checked = self._checked.get(peer_id)
        if checked is not None and checked[0] == record and now < checked[1]:
            return True
        if not self._consume(msg, host, peer_id):
            return False
        self._checked[peer_id] = (record, now + RECORD_RECHECK_S)
        self._checked.move_to_end(peer_id)
        while len(self._checked) > RECORD_PEERS:
            self._checked.popitem(last=False)
        return True

    def issue(self, host: Any) -> tuple[bytes, bool]:
        now = time.monotonic()
        own = self._own.get(host)
        if own is None or now > own[0]:
            own = self._own[host] = (now + RECORD_REUSE_S, self._issue(host))
        return own[1]


_records = _SignedRecords()
for _module in (pubsub_module, gossipsub_module):
    _module.maybe_consume_signed_record = _records.consume  # type: ignore[attr-defined]
    _module.env_to_send_in_RPC = _records.issue  # type: ignore[attr-defined]


def check_port_free(host: str, port: int) -> None:
    """Raise NetworkError if ``host:port`` is taken: py-libp2p listens with SO_REUSEPORT,
    so a second node on the same port would start silently and share its connections."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As a listener does: a node restarted at once must not be refused because its
        # old connections linger in TIME_WAIT (a live listener still makes bind fail).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise NetworkError(f"cannot listen on {host}:{port}: {exc.strerror}; is another node "
                               "running there?") from None


class _UrgentFirst(PriorityQueue):
    """A peer's outbound queue where messages of topics that are not bulk (votes,
    proposals, block announcements) go first and find room when bulk messages (txs)
    fill it. py-libp2p's queue holds 32 RPCs of any topic, sends them in order and
    drops what comes while it is full, so under tx load it dropped votes (a
    4-validator devnet at 2,000 tx/s stopped deciding heights). Bulk RPCs still get at
    most ``max_size`` places, and are dropped past that as before; ``len`` counts them
    only, as py-libp2p's full-queue checks and our back-pressure expect."""

    def __init__(self, max_size: int, bulk_topics: set[str]) -> None:
        super().__init__(max_size)
        self._bulk_topics = bulk_topics

    def push(self, rpc: Any, priority: bool = False) -> bool:
        if priority or not any(topic in self._bulk_topics for m in rpc.publish for topic in m.topicIDs):
            if len(self._priority) >= URGENT_QUEUE:
                return False
            self._priority.append(rpc)
            return True
        return super().push(rpc)

    def __len__(self) -> int:
        return len(self._non_priority)


class _Queues(dict[Any, RpcQueue]):
    """``Pubsub.peer_queues``: each peer's queue made :class:`_UrgentFirst` as it is added."""

    def __init__(self, bulk_topics: set[str]) -> None:
        super().__init__()
        self._bulk_topics = bulk_topics

    def __setitem__(self, peer: Any, queue: RpcQueue) -> None:
        inner = getattr(queue, "_queue", None)
        if type(inner) is PriorityQueue and not inner:
            queue._queue = _UrgentFirst(inner.max_size, self._bulk_topics)
        super().__setitem__(peer, queue)


class _BanGate(INotifee):
    """Drops a connection from a banned peer as soon as it is made (py-libp2p accepts
    every connection it can upgrade; the ban list is the node's)."""

    def __init__(self, refuse: Callable[[ID], None]) -> None:
        self._refuse = refuse

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._refuse(conn.muxed_conn.peer_id)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        pass

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, address: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, address: multiaddr.Multiaddr) -> None:
        pass


class _Pubsub(Pubsub):
    """py-libp2p's Pubsub with five faults of 0.8.1 closed.

    - It writes to a peer's stream from several tasks (the peer's outbound queue, the
      replay of recent messages to a peer that just connected, flushes of pending
      messages). A write leaves as several yamux frames whenever the peer's receive
      window is short (under load, any size), and two such writes interleave their
      frames and corrupt the stream. Here the writes to one stream take turns.
    - An RPC that does not parse (protobuf DecodeError) escapes the read loop and stops
      the whole host. Here it costs the peer that sent it (``on_garbage``) and closes
      its stream; the node runs on.
    - A peer's outbound queue drops votes behind txs: see :class:`_UrgentFirst`.
    - A message is marked seen only once validated, and validators run as tasks, so a
      copy that arrives from another peer meanwhile was validated again. Here a copy of
      a message being validated, or seen, is dropped at once (and counted in
      ``duplicates``; the publisher's signature makes a copy the same message).
    - Message ids are the sender and a sequence number, counted from the start time in
      seconds. A node that sent more messages than it ran seconds (every node) starts
      again, after a restart, on numbers its peers saw before, and they drop its
      messages as duplicates until it passes its old count or they forget it (120 s).
      Here the count starts from the time in nanoseconds, as go-libp2p's does.
    """

    def __init__(self, host: Any, router: Any, *, on_garbage: Callable[[ID, str], None]) -> None:
        super().__init__(host, router, strict_signing=True, max_concurrent_validator_count=VALIDATIONS)
        self._validating: set[bytes] = set()
        self.duplicates = 0
        self.counter = time.time_ns()
        self._on_garbage = on_garbage
        self.bulk_topics: set[str] = set()
        self.peer_queues = _Queues(self.bulk_topics)
        self._write_turns: weakref.WeakKeyDictionary[Any, trio.Lock] = weakref.WeakKeyDictionary()

    async def push_msg(self, msg_forwarder: ID, msg: Any) -> None:
        if msg_forwarder == self.my_id:
            await super().push_msg(msg_forwarder, msg)
            return
        msg_id = self.get_message_id(msg)
        if msg_id in self._validating or self.seen_messages.has(msg_id):
            self.duplicates += 1
            return
        self._validating.add(msg_id)
        try:
            await super().push_msg(msg_forwarder, msg)
        finally:
            self._validating.discard(msg_id)

    async def write_msg(self, stream: Any, rpc_msg: Any) -> bool:
        turn = self._write_turns.setdefault(stream, trio.Lock())
        async with turn:
            return bool(await super().write_msg(stream, rpc_msg))

    async def stream_handler(self, stream: Any) -> None:
        try:
            await _widen_receive_window(stream, GOSSIP_WINDOW)
            await super().stream_handler(stream)
        except Exception as exc:  # the adapter's edge: what the peer sent broke the read loop
            peer = stream.muxed_conn.peer_id
            self._on_garbage(peer, f"unreadable gossip: {exc!r}")
            with contextlib.suppress(Exception):
                await stream.reset()
            self._handle_dead_peer(peer)


async def _no_dials() -> None:
    """What py-libp2p's auto-connector does here: nothing."""


class _GossipSub(GossipSub):
    """GossipSub that dials no peer a peer's PRUNE names (peer exchange), whoever sent
    it: the node's peers come from its peer manager only."""

    async def _do_px(self, px_peers: list[Any]) -> None:
        pass


async def _read_exact(stream: Any, n: int) -> bytes:
    # Whatever has arrived, in one read: each read waits its turn on the event loop,
    # and on a loaded node a turn can take a few hundred ms (bench/load.py: a 2.6 MB
    # block read 64 KiB at a time took 20 s to fetch).
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.read(n - len(buf))
        if not chunk:
            raise NetworkError(f"stream closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


async def _widen_receive_window(stream: Any, size: int) -> None:
    """Let the peer send up to ``size`` bytes on ``stream`` (16 MiB at most) without
    waiting for our window updates. Yamux starts every stream at 256 KiB and grows it
    one round trip at a time; a response of several MB would wait for many of them,
    each as slow as the two nodes' event loops."""
    muxed = getattr(stream, "muxed_stream", None)
    if not isinstance(muxed, YamuxStream):
        return
    async with muxed.window_lock:
        extra = min(size, MAX_WINDOW_SIZE) - muxed.recv_window
        if extra <= 0:
            return
        muxed.recv_window += extra
        muxed.target_recv_window = max(muxed.target_recv_window, muxed.recv_window)
    await muxed.send_window_update(extra)


class _Oversize(NetworkError):
    """A frame above its protocol's limit: the peer broke the protocol."""


async def _read_frame(stream: Any, limit: int) -> bytes:
    length = int.from_bytes(await _read_exact(stream, _LENGTH), "big")
    if length > limit:
        raise _Oversize(f"a frame of {length} bytes is above the limit of {limit}")
    return await _read_exact(stream, length)


class Libp2pNetwork:
    """A libp2p node with the Ed25519 identity ``key_seed`` (32 bytes) listening on
    ``host:port`` (0: any free port). Start it with ``await nursery.start(net.run)``;
    subscriptions and handlers may be set before or after."""

    def __init__(self, key_seed: bytes, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._key_pair = create_new_key_pair(key_seed)
        self._listen = multiaddr.Multiaddr(f"/ip4/{host}/tcp/{port}")
        self._bind = (host, port)
        sec = {NOISE_PROTOCOL_ID: NoiseTransport(self._key_pair,
                                                 noise_privkey=create_noise_key_pair().private_key)}
        self._host: Any = new_host(key_pair=self._key_pair, sec_opt=sec, muxer_preference="YAMUX",
                                   listen_addrs=[self._listen], enable_mDNS=False, enable_upnp=False)
        swarm: Any = self._host.get_network()
        swarm.retry_config = RetryConfig(max_retries=0)
        # The node dials the peers its peer manager picks (p2p/peering.py), no others:
        # py-libp2p's auto-connector would dial every peer in its peerstore (banned ones
        # too) to keep 200 connections.
        swarm.auto_connector.maybe_connect = _no_dials
        # py-libp2p's own spam protection caps every peer at 10 messages a second per
        # topic, and drops the rest: far below a node's tx and vote traffic.
        self._router: Any = _GossipSub([GOSSIPSUB_PROTOCOL], MESH_DEGREE, MESH_LOW, MESH_HIGH,
                                       heartbeat_interval=HEARTBEAT_SECONDS, spam_protection_enabled=False)
        self._pubsub: Any = _Pubsub(self._host, self._router,
                                    on_garbage=lambda peer, why: self.ban(PeerId(peer.to_base58()), why))
        self.book = PeerBook()
        self._host.get_network().register_notifee(_BanGate(self._refuse_if_banned))
        self._subs: dict[str, tuple[Validator, trio.MemorySendChannel[Gossip]]] = {}
        self._outboxes: dict[tuple[PeerId, str], trio.MemorySendChannel[bytes]] = {}
        self._nursery: trio.Nursery | None = None
        self._addrs: list[str] = []
        self._events: list[trio.MemorySendChannel[PeerEvent]] = []
        self._since: dict[PeerId, int] = {}  # when _watch_peers first saw each connected peer
        self._publish_lock = trio.Lock()
        self._urgent = 0  # publishes of votes, proposals and blocks under way
        self._gossip_messages = RateLimit(GOSSIP_MESSAGES_PER_S, 2 * GOSSIP_MESSAGES_PER_S)
        self._gossip_bytes = RateLimit(GOSSIP_BYTES_PER_S, 2 * GOSSIP_BYTES_PER_S)
        self._requests = RateLimit(REQUESTS_PER_S, 2 * REQUESTS_PER_S)
        self.dropped = 0
        """Accepted messages a full subscription could not take (each one logged)."""
        self.slow_peers = 0
        """Publishes that went ahead while a peer's queue stayed full (each one logged)."""
        self.rate_limited = 0
        """Gossip messages and requests refused because their peer was over its limit."""
        self.blocked: frozenset[PeerId] = frozenset()

    @property
    def local_id(self) -> PeerId:
        return PeerId(self._host.get_id().to_base58())

    def node_id(self, peer: PeerId) -> str:
        return _node_id(peer)

    def listen_addrs(self) -> list[str]:
        """This node's addresses, each ending in ``/p2p/<peer id>`` (what bootnodes list);
        worked out once while the node listens (its listeners do not change then)."""
        if self._addrs:
            return list(self._addrs)
        addrs = [f"{a}" if "/p2p/" in str(a) else f"{a}/p2p/{self.local_id}" for a in self._host.get_addrs()]
        if self._nursery is not None:
            self._addrs = addrs
        return list(addrs)

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, run gossip, and serve until cancelled; shuts down cleanly."""
        check_port_free(*self._bind)
        try:
            async with self._services(), trio.open_nursery() as nursery:
                self._nursery = nursery
                for topic in list(self._subs):
                    await self._start_subscription(topic)
                nursery.start_soon(self._watch_peers)
                task_status.started()
                try:
                    await trio.sleep_forever()
                finally:
                    await self._close_connections()
        finally:
            self._nursery = None
            self._addrs = []

    async def _close_connections(self) -> None:
        """Close every connection, releasing the sockets: py-libp2p's own shutdown is
        cancelled before it gets to them."""
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
            for connections in list(self._host.get_network().connections.values()):
                for connection in list(connections):
                    with contextlib.suppress(Exception):
                        await connection.close()

    @contextlib.asynccontextmanager
    async def _services(self) -> AsyncIterator[None]:
        async with self._host.run(listen_addrs=[self._listen]), \
                background_trio_service(self._pubsub), background_trio_service(self._router):
            await self._pubsub.wait_until_ready()
            yield

    async def connect(self, address: str) -> PeerId:
        """Dial ``address`` (a multiaddr with ``/p2p/<peer id>``).

        Only ``address`` is tried, once: py-libp2p's stale addresses for the peer (it may
        have restarted on another port) and its 60-second negative dial cache are
        cleared first, and retrying is the caller's (:mod:`p2p.peering` backs off)."""
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        except Exception as exc:
            raise NetworkError(f"not a peer address: {address} ({exc})") from None
        peer = PeerId(info.peer_id.to_base58())
        if info.peer_id == self._host.get_id():
            raise NetworkError("cannot connect to itself")
        if self.book.is_banned(peer, trio.current_time()):
            raise NetworkError(f"peer {peer} is banned")
        if info.peer_id not in self._host.get_network().connections:
            self._host.get_network().unblock_peer(info.peer_id)
            self._host.get_peerstore().clear_addrs(info.peer_id)
        try:
            with trio.fail_after(DIAL_TIMEOUT_S):
                await self._host.connect(info)
        except trio.TooSlowError:
            raise NetworkError(f"dialling {address} took more than {DIAL_TIMEOUT_S} s") from None
        except Exception as exc:
            raise NetworkError(f"cannot connect to {address}: {exc}") from None
        return peer

    async def disconnect(self, peer: PeerId) -> None:
        with contextlib.suppress(Exception):
            await self._host.disconnect(ID.from_base58(peer))

    @property
    def duplicates(self) -> int:
        return int(self._pubsub.duplicates)

    def peers(self) -> list[PeerId]:
        return sorted(PeerId(p.to_base58()) for p in self._host.get_connected_peers())

    def link(self, peer: PeerId) -> Link | None:
        """The peer's first open connection: who dialed (py-libp2p's muxer knows), the
        remote IP of its socket, and when the connection was first seen (to within
        ``WATCH_INTERVAL_S``; now, if not seen yet)."""
        try:
            connections = self._host.get_network().connections.get(ID.from_base58(peer))
        except ValueError:
            return None
        if not connections:
            return None
        muxed = connections[0].muxed_conn
        remote = ""
        with contextlib.suppress(OSError):  # a socket closing meanwhile has no remote end
            where = getattr(muxed, "get_remote_address", None)
            address = where() if where is not None else None
            remote = str(address[0]) if address else ""
        return Link(muxed.is_initiator, remote, self._since.get(peer) or time.time_ns())

    def peer_events(self) -> trio.MemoryReceiveChannel[PeerEvent]:
        send, receive = trio.open_memory_channel[PeerEvent](1_024)
        self._events.append(send)
        return receive

    def _refuse_if_banned(self, peer_id: ID) -> None:
        peer = PeerId(peer_id.to_base58())
        if self._nursery is not None and self.book.is_banned(peer, trio.current_time()):
            log.debug("connection of a banned peer dropped", extra={"peer": peer})
            self._nursery.start_soon(self.disconnect, peer)

    async def _watch_peers(self) -> None:
        known: set[PeerId] = set()
        while True:
            now = set(self.peers())
            for peer in now:  # a banned peer back before the last poll saw it go is dropped too
                if self.book.is_banned(peer, trio.current_time()):
                    await self.disconnect(peer)
            for peer, connected in [(p, True) for p in now - known] + [(p, False) for p in known - now]:
                if connected:
                    self._since[peer] = time.time_ns()
                else:
                    self._since.pop(peer, None)
                for channel in self._events:
                    with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                        channel.send_nowait(PeerEvent(peer, connected))
                if not connected:
                    for limit in (self._gossip_messages, self._gossip_bytes, self._requests):
                        limit.forget(peer)
                    for key in [key for key in self._outboxes if key[0] == peer]:
                        self._outboxes.pop(key).close()
            known = now
            await trio.sleep(WATCH_INTERVAL_S)

    # --- gossip --------------------------------------------------------------------

    def subscribe(self, topic: str, validator: Validator, *, bulk: bool = False
                  ) -> trio.MemoryReceiveChannel[Gossip]:
        if bulk:
            self._pubsub.bulk_topics.add(topic)
        send, receive = trio.open_memory_channel[Gossip](SUBSCRIPTION_BUFFER)
        self._subs[topic] = (validator, send)
        if self._nursery is not None:
            self._nursery.start_soon(self._start_subscription, topic)
        return receive

    async def _start_subscription(self, topic: str) -> None:
        validator, channel = self._subs[topic]

        own = self._host.get_id()

        async def check(forwarder: ID, message: Any) -> bool:
            if forwarder == own:
                return True  # py-libp2p validates what this node publishes too
            peer = PeerId(forwarder.to_base58())
            now = trio.current_time()
            if peer in self.blocked or self.book.is_banned(peer, now):
                return False
            if len(message.data) > MAX_GOSSIP_BYTES:  # py-libp2p takes up to 1 MiB
                self.penalize(peer, INVALID_MESSAGE_PENALTY,
                              f"a message of {len(message.data)} bytes on {topic}, above {MAX_GOSSIP_BYTES}")
                return False
            if not (self._gossip_messages.allow(peer, 1, now)
                    and self._gossip_bytes.allow(peer, len(message.data), now)):
                self._count_limited(peer, topic)
                return False
            try:
                verdict = await validator(peer, bytes(message.data))
            except Exception:  # a fault of ours: raised into py-libp2p, it would stop the host
                log.exception("gossip validator failed; message dropped", extra={"topic": topic})
                return False
            if verdict is Validation.REJECT:
                self.penalize(peer, INVALID_MESSAGE_PENALTY, f"invalid message on {topic}")
            return verdict is Validation.ACCEPT

        self._pubsub.set_topic_validator(topic, check, True)
        subscription = await self._pubsub.subscribe(topic)
        assert self._nursery is not None
        self._nursery.start_soon(self._pump, subscription, channel, topic)

    async def _pump(self, subscription: Any, channel: trio.MemorySendChannel[Gossip], topic: str) -> None:
        own = self._host.get_id().to_bytes()
        while True:
            message = await subscription.get()
            if message.from_id == own:
                continue
            sender = PeerId(ID(message.from_id).to_base58())
            self.book.reward_valid(sender)
            try:
                channel.send_nowait(Gossip(sender, bytes(message.data)))
            except trio.WouldBlock:
                self.dropped += 1
                log.warning("gossip dropped: subscriber full",
                            extra={"topic": topic, "dropped": self.dropped})

    async def publish(self, topic: str, data: bytes) -> None:
        if len(data) > MAX_GOSSIP_BYTES:
            raise NetworkError(f"a gossip message of {len(data)} bytes is above the {MAX_GOSSIP_BYTES}-byte "
                               "limit; send it by request/response")
        bulk = topic in self._pubsub.bulk_topics
        if bulk:
            # Before the lock, so that a vote never waits behind a batch of txs waiting
            # for room.
            while self._urgent:
                await trio.sleep(POLL_S)
            await self._wait_for_room()
        else:
            self._urgent += 1
        try:
            # One publish at a time: py-libp2p 0.8.1 interleaves concurrent writes to a
            # peer's stream, which corrupts it (docs/network.md, py-libp2p 0.8.1).
            async with self._publish_lock:
                await self._pubsub.publish(topic, data)
        except Exception as exc:
            raise NetworkError(f"cannot publish on {topic}: {exc}") from None
        finally:
            if not bulk:
                self._urgent -= 1

    async def _wait_for_room(self) -> None:
        """Back-pressure for bulk messages: a peer's queue takes 32 of them and drops
        the rest without a word, so a publish waits while any peer's queue is nearly
        full (a peer that stays so for ``QUEUE_WAIT_S`` is skipped, and counted)."""
        with trio.move_on_after(QUEUE_WAIT_S) as waited:
            while any(len(queue) >= OUTBOUND_QUEUE - 2 for queue in self._pubsub.peer_queues.values()):
                await trio.sleep(POLL_S)
        if waited.cancelled_caught:
            self.slow_peers += 1
            log.warning("a peer's gossip queue stayed full", extra={"slow_peers": self.slow_peers})

    def _count_limited(self, peer: PeerId, what: str) -> None:
        self.rate_limited += 1
        log.debug("peer over its rate limit",
                  extra={"peer": peer, "on": what, "rate_limited": self.rate_limited})

    # --- request/response ----------------------------------------------------------

    def set_handler(self, protocol: str, handler: Handler, *, max_request_bytes: int) -> None:
        async def serve(stream: Any) -> None:
            peer = PeerId(stream.muxed_conn.peer_id.to_base58())
            if peer in self.blocked:
                await self._reset(stream)
                return
            if self.book.is_banned(peer, trio.current_time()) or \
                    not self._requests.allow(peer, 1, trio.current_time()):
                self._count_limited(peer, protocol)
                await self._reset(stream)
                return
            try:
                with trio.fail_after(30):
                    request = await _read_frame(stream, max_request_bytes)
                    answer = await handler(peer, request)
                    await stream.write(len(answer).to_bytes(_LENGTH, "big") + answer)
                    await stream.close()
            except NetworkError as exc:
                self.penalize(peer, INVALID_MESSAGE_PENALTY, f"bad {protocol} request: {exc}")
                await self._reset(stream)
            except (BizraError, trio.TooSlowError, StreamError) as exc:
                log.info("request not answered",
                         extra={"peer": peer, "protocol": protocol, "error": str(exc)})
                await self._reset(stream)
            except Exception:  # the handler's edge: raised into py-libp2p, it would reach the swarm
                log.exception("request handler failed", extra={"peer": peer, "protocol": protocol})
                self.penalize(peer, INVALID_MESSAGE_PENALTY, f"a {protocol} request it could not handle")
                await self._reset(stream)

        self._host.set_stream_handler(TProtocol(protocol), serve)

    @staticmethod
    async def _reset(stream: Any) -> None:
        """Reset ``stream``, even from a cancelled task (a request that timed out): a
        stream left open keeps one of the connection's 256 stream slots and one of the
        swarm's, and once they are gone every new stream waits for one forever."""
        with trio.CancelScope(shield=True, deadline=trio.current_time() + RESET_TIMEOUT_S), \
                contextlib.suppress(Exception):
            await stream.reset()

    async def request(self, peer: PeerId, protocol: str, data: bytes, *, max_response_bytes: int,
                      timeout: float) -> bytes:
        if peer in self.blocked:
            raise NetworkError(f"{protocol} request to {peer}: the peer is blocked")
        if self.book.is_banned(peer, trio.current_time()):  # py-libp2p would dial it again
            raise NetworkError(f"{protocol} request to {peer}: the peer is banned")
        try:
            with trio.fail_after(timeout):
                stream = await self._host.new_stream(ID.from_base58(peer), [TProtocol(protocol)])
                try:
                    await _widen_receive_window(stream, max_response_bytes + _LENGTH)
                    await stream.write(len(data).to_bytes(_LENGTH, "big") + data)
                    answer = await _read_frame(stream, max_response_bytes)
                finally:
                    await self._reset(stream)
        except trio.TooSlowError:
            raise NetworkError(f"{protocol} request to {peer} took more than {timeout} s") from None
        except NetworkError as exc:
            self.penalize(peer, INVALID_MESSAGE_PENALTY, f"bad {protocol} response: {exc}")
            raise
        except Exception as exc:  # the adapter's edge: every py-libp2p failure
            cause = exc.__cause__
            if isinstance(cause, MultiselectClientError) and "not supported" in str(cause):
                raise UnsupportedProtocol(f"peer {peer} does not serve {protocol}") from None
            raise NetworkError(f"{protocol} request to {peer} failed: {exc}") from None
        return answer

    # --- direct messages -------------------------------------------------------------

    def inbox(self, protocol: str, *, max_message_bytes: int, capacity: int = INBOX
              ) -> trio.MemoryReceiveChannel[Gossip]:
        inbox, messages = trio.open_memory_channel[Gossip](capacity)

        open_streams: dict[PeerId, int] = {}

        async def serve(stream: Any) -> None:
            peer = PeerId(stream.muxed_conn.peer_id.to_base58())
            if open_streams.get(peer, 0) >= INBOUND_STREAMS:
                self.penalize(peer, INVALID_MESSAGE_PENALTY,
                              f"more than {INBOUND_STREAMS} streams open on {protocol}")
                await self._reset(stream)
                return
            open_streams[peer] = open_streams.get(peer, 0) + 1
            try:
                await self._read_messages(peer, protocol, stream, inbox, max_message_bytes)
            finally:
                left = open_streams.pop(peer) - 1
                if left:
                    open_streams[peer] = left

        self._host.set_stream_handler(TProtocol(protocol), serve)
        return messages

    async def _read_messages(self, peer: PeerId, protocol: str, stream: Any,
                             inbox: trio.MemorySendChannel[Gossip], max_message_bytes: int) -> None:
        """Hand the messages of ``peer``'s ``stream`` to ``inbox`` until it ends."""
        try:
            await _widen_receive_window(stream, GOSSIP_WINDOW)
            while True:
                data = await _read_frame(stream, max_message_bytes)
                now = trio.current_time()
                if peer in self.blocked or self.book.is_banned(peer, now):
                    break
                if not (self._gossip_messages.allow(peer, 1, now)
                        and self._gossip_bytes.allow(peer, len(data), now)):
                    self._count_limited(peer, protocol)
                    continue
                await inbox.send(Gossip(peer, data))
        except _Oversize as exc:
            self.penalize(peer, INVALID_MESSAGE_PENALTY, f"bad {protocol} message: {exc}")
        except Exception as exc:  # the stream ended: the peer closed it or went away
            log.debug("direct stream closed",
                      extra={"peer": peer, "protocol": protocol, "error": repr(exc)})
        await self._reset(stream)

    async def send(self, peer: PeerId, protocol: str, data: bytes) -> bool:
        if self._nursery is None or peer in self.blocked or self.book.is_banned(peer, trio.current_time()) \
                or ID.from_base58(peer) not in self._host.get_network().connections:
            return False
        key = (peer, protocol)
        outbox = self._outboxes.get(key)
        if outbox is None:
            outbox, frames = trio.open_memory_channel[bytes](SEND_QUEUE)
            self._outboxes[key] = outbox
            self._nursery.start_soon(self._write_frames, peer, protocol, outbox, frames)
        frame = len(data).to_bytes(_LENGTH, "big") + data
        await trio.lowlevel.checkpoint()
        try:
            outbox.send_nowait(frame)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def _write_frames(self, peer: PeerId, protocol: str, outbox: trio.MemorySendChannel[bytes],
                            frames: trio.MemoryReceiveChannel[bytes]) -> None:
        """The one writer of ``peer``'s stream for ``protocol``: opens it and writes what
        is queued until the peer goes or the stream fails (what is queued then is lost)."""
        try:
            with trio.fail_after(DIAL_TIMEOUT_S):
                stream = await self._host.new_stream(ID.from_base58(peer), [TProtocol(protocol)])
            try:
                async for frame in frames:
                    await stream.write(frame)
            except Exception:
                await self._reset(stream)
                raise
        except Exception as exc:  # the adapter's edge: the stream could not open, or broke
            log.debug("direct stream ended", extra={"peer": peer, "protocol": protocol, "error": repr(exc)})
        finally:
            if self._outboxes.get((peer, protocol)) is outbox:
                del self._outboxes[(peer, protocol)]
            frames.close()

    # --- scores --------------------------------------------------------------------

    def block(self, peers: Collection[PeerId]) -> None:
        self.blocked = frozenset(peers)
        log.warning("peers blocked", extra={"peers": sorted(self.blocked)})

    def score(self, peer: PeerId) -> float:
        return self.book.score(peer)

    def penalize(self, peer: PeerId, points: float, reason: str) -> None:
        log.info("peer penalized", extra={"peer": peer, "points": points, "reason": reason})
        if self.book.penalize(peer, points, trio.current_time()) and self._nursery is not None:
            log.warning("peer banned", extra={"peer": peer, "reason": reason})
            self._nursery.start_soon(self.disconnect, peer)

    def ban(self, peer: PeerId, reason: str) -> None:
        log.warning("peer banned", extra={"peer": peer, "reason": reason})
        self.book.ban(peer, trio.current_time())
        if self._nursery is not None:
            self._nursery.start_soon(self.disconnect, peer)




@functools.lru_cache(maxsize=1024)
def _node_id(peer: PeerId) -> str:
    """CometBFT's node id of ``peer`` (the address of its Ed25519 key, in hex); empty for a
    peer id that holds no Ed25519 key. Kept for the peers asked about most."""
    try:
        key = ID.from_base58(peer).extract_public_key()
    except ValueError:
        return ""
    if key is None or key.get_type() is not KeyType.Ed25519:
        return ""
    return address_of(key.to_bytes()).hex()


def peer_id_of(key_seed: bytes) -> PeerId:
    """The peer id of the node whose key has the Ed25519 seed ``key_seed``."""
    return PeerId(ID.from_pubkey(create_new_key_pair(key_seed).public_key).to_base58())
