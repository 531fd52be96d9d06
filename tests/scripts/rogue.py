"""A hostile peer in its own process, for tests/e2e/test_hostile_peers.py.

``python rogue.py --genesis FILE --node ADDR [--node ADDR ...] --schedule KIND=SECONDS[,KIND=SECONDS...]``

It speaks the node's own p2p stack (``p2p.host.Libp2pNetwork`` with a fresh key, and
``p2p.status.StatusService`` with the chain id and genesis hash of ``--genesis``, so the
nodes take it for a peer of their chain), dials every ``--node`` (multiaddrs ending in
``/p2p/<peer id>``) and sends, phase after phase, the attacks of ``--schedule``:

- ``far-round``: proposals of the height being decided (and the next two) with rounds far
  beyond reach (1,001 to 2**64 − 1), whole (``[0, proposal, block]``) and by id
  (``[4, proposal]``), signatures of random bytes;
- ``announce``: block announcements far above the chain (heights 1,000,000 ahead, 2**32,
  2**62, 2**63 − 1, 2**64 − 1) with commits of random signatures, every 10 ms;
  meanwhile the rogue's status reports height 2**63 − 1, and it serves no blocks;
- ``proposal-refs``: ``[4, proposal]`` of the height being decided and the next two, each
  naming another random block id, random signatures;
- ``votes``: prevotes and precommits of the height being decided and the next two, from the
  genesis validators (right and wrong indexes) and from unknown addresses, random
  signatures, some in far rounds, as fast as the rogue can publish;
- ``oversize``: gossip of 61,441 bytes to ~1 MiB on each topic (consensus, blocks),
  published through py-libp2p's pubsub directly, past the sender's own 60 KiB check;
- ``txs``: tx gossip (``/bizra/<chain>/txs/2``, direct messages) of every wrong kind:
  garbage, wrong CBOR shapes, batches of junk txs, messages above the limit (to ~1 MiB),
  and floods of ``have`` and ``reset`` naming random origins;
- ``requests``: a few well-formed requests (the largest range, a range from 2**64 − 1,
  an unknown block id), then malformed ones on ``status``, ``blocks`` and
  ``block-parts`` (garbage, wrong CBOR shapes, non-canonical CBOR, huge heights and
  counts, frames above the limits or cut short), 100 a second per node, and 20 streams
  per node left hanging after half a length prefix;
- ``mixed``: all of the above at once, and once a second a forged announcement a few
  heights ahead (a node knows that height's validator set, checks the commit, and
  refuses it); the status claims 2**63 − 1 here too.

Two more take ``announce`` apart, to tell which half of it does what: ``status-lie``
(the status claims 2**63 − 1, nothing is sent) and ``far-announce`` (the announcements,
with an honest status).

Every attack runs under an identity (a fresh key) that lasts until its phase ends or
until every node has dropped it (banned it); then a new identity carries on, so each
attack keeps reaching the nodes for its whole phase. An identity dials each node once
(py-libp2p's auto-connector is stopped); it is connected to a node again only by that
node's dialling, or when it opens a request stream to a node that dropped it (py-libp2p
dials to open a stream).

Prints ``begin`` when the first phase starts, ``identity <peer id> <kind>
status-height=<h> at=<time>`` for each identity, one ``phase <kind> ...`` line as each
phase ends, and last ``summary <json>``: messages sent per kind (and those py-libp2p
would not send), whether each well-formed or malformed request was answered or reset,
connections the nodes dropped, dials that failed, and for each identity: when it came
and went, what it sent, which nodes dropped it and when, which connected to it again,
and the connections it still had when it left (who dialled each, and since when).
Times are wall-clock times of day, as the nodes' logs write them.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from chain.codec import dumps
from chain.crypto import address_of
from chain.errors import DecodeError, NetworkError
from chain.genesis import genesis_hash, parse_genesis
from chain.sizes import ADDRESS_LEN, HASH_LEN, SIGNATURE_LEN
from chain.types import (
    Block,
    Commit,
    CommitFlag,
    CommitSig,
    Header,
    Proposal,
    Vote,
    VoteType,
)
from p2p.blocks import Announcement
from p2p.host import Libp2pNetwork
from p2p.network import (
    MAX_GOSSIP_BYTES,
    Validation,
    gossip_topic,
    peer_of,
    request_protocol,
)
from p2p.peers import PeerId
from p2p.status import StatusService

LIE_HEIGHT = 2**63 - 1
"""The height the rogue's status claims in the ``announce``, ``mixed`` and ``status-lie``
phases (0 in the others)."""
FAR_ROUNDS = (1_001, 10**6, 2**31, 2**32, 2**62, 2**63 - 2, 2**63 - 1, 2**63, 2**64 - 1)
FAR_HEIGHTS_AHEAD = (10**6,)
FAR_HEIGHTS = (2**32, 2**62, 2**63 - 1, 2**64 - 1)
OVERSIZES = (MAX_GOSSIP_BYTES + 1, 100_000, 262_144, 524_288, 1_000_000, 1_040_000)
"""Payload sizes above the gossip limit, up to what py-libp2p carries (1 MiB an RPC)."""
QUEUED = 256
"""Messages the rogue lets wait in a peer's outbound queue (py-libp2p drops past 1,024)."""
AHEAD = 3
"""Heights past the last the rogue heard of that its consensus messages are for."""
STALLED_PER_NODE = 20
REQUEST_SLOTS = 32
READY_S = 3.0


def say(*words: object) -> None:
    print(*words, flush=True)


def clock() -> str:
    """The wall-clock time, as the nodes' logs show it (to compare with them)."""
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


def junk(n: int) -> bytes:
    return os.urandom(n)


def frame(payload: bytes) -> bytes:
    """A request frame: a 4-byte big-endian length, then the payload."""
    return len(payload).to_bytes(4, "big") + payload


def sized(head: list[Any], size: int) -> bytes:
    """The CBOR array ``head + [zero bytes]`` of exactly ``size`` bytes."""
    body = size
    for _ in range(4):
        data = dumps([*head, bytes(body)])
        body += size - len(data)
    assert len(data) == size, (len(data), size)
    return data


@dataclass
class Identity:
    """One key of the rogue's, with its network and status service."""

    kind: str
    net: Libp2pNetwork
    status: StatusService
    nodes: frozenset[PeerId]
    joined: set[PeerId] = field(default_factory=set)
    lost: int = 0
    dropped_by: list[str] = field(default_factory=list)
    """The nodes that closed the connection, each time one did, with when."""
    back: list[str] = field(default_factory=list)
    """The nodes that connected again after dropping it, each time, with when."""
    sent: int = 0
    first_sent: str | None = None
    ready: str | None = None
    connections: dict[int, tuple[object, PeerId, str, str]] = field(default_factory=dict)
    """Each connection to a node seen (kept, so that its id is not reused): the node, who
    dialled it ("rogue" or "node"), when it was first seen."""

    def connected(self) -> set[PeerId]:
        return set(self.net.peers()) & self.nodes


class Rogue:
    def __init__(self, genesis_file: Path, nodes: list[str]) -> None:
        raw = genesis_file.read_bytes()
        genesis = parse_genesis(raw)
        self.chain_id = genesis.chain_id
        self.genesis_hash = genesis_hash(raw)
        self.validators = [address_of(v.pub_key) for v in genesis.validators]
        self.addresses = nodes
        self.node_ids = frozenset(peer_of(a) for a in nodes)
        self.txs_protocol = request_protocol(self.chain_id, "txs", 2)
        self.consensus_topic = gossip_topic(self.chain_id, "consensus")
        self.blocks_topic = gossip_topic(self.chain_id, "blocks")
        self.tip = 0
        """The highest height the nodes reported (in their status, or announced)."""
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self.connections_lost = 0
        self.dial_failures = 0
        self.identities: list[dict[str, Any]] = []
        self._slots = trio.Semaphore(REQUEST_SLOTS)
        self.attacks: dict[str, Callable[[Identity], Awaitable[None]]] = {
            "far-round": self.far_round, "announce": self.announce, "proposal-refs": self.proposal_refs,
            "votes": self.votes, "oversize": self.oversize, "txs": self.txs, "requests": self.requests,
            "mixed": self.mixed,
            "status-lie": self.nothing, "far-announce": self.announce,
        }

    # --- phases and identities -------------------------------------------------------

    async def run(self, schedule: list[tuple[str, float]]) -> None:
        say("begin", json.dumps(schedule))
        for kind, seconds in schedule:
            await self.phase(kind, seconds)
        say("summary", json.dumps({
            "sent": dict(self.sent), "failed": dict(self.failed), "answers": dict(self.answers),
            "connections_lost": self.connections_lost, "dial_failures": self.dial_failures,
            "identities": self.identities,
        }, sort_keys=True))

    async def phase(self, kind: str, seconds: float) -> None:
        since = clock()
        started = trio.current_time()
        deadline = started + seconds
        sent, lost, made = sum(self.sent.values()), self.connections_lost, 0
        while trio.current_time() < deadline - 0.3:
            began = trio.current_time()
            await self.session(kind, deadline)
            made += 1
            if trio.current_time() - began < 0.5:
                await trio.sleep(0.5)  # no tight loop of identities
        say("phase", kind, f"{trio.current_time() - started:.1f}s", f"sent={sum(self.sent.values()) - sent}",
            f"identities={made}", f"lost={self.connections_lost - lost}", f"tip={self.tip}",
            f"from={since}", f"to={clock()}")

    async def session(self, kind: str, deadline: float) -> None:
        """One identity, attacking with ``kind`` until ``deadline`` or until every node
        has dropped it."""
        lie = LIE_HEIGHT if kind in ("announce", "mixed", "status-lie") else 0
        net = Libp2pNetwork(junk(32))
        status = StatusService(net, self.chain_id, self.genesis_hash, lambda: lie, lambda: [])
        me = Identity(kind, net, status, self.node_ids)
        record: dict[str, Any] = {"peer": str(net.local_id), "kind": kind, "status_height": lie,
                                  "from": clock()}
        self.identities.append(record)
        say("identity", net.local_id, kind, f"status-height={lie}", f"at={record['from']}")
        net.subscribe(self.blocks_topic, self._learn(me))
        async with trio.open_nursery() as nursery:
            await nursery.start(net.run)
            # py-libp2p's auto-connector would dial again every node that drops this
            # identity: the rogue leaves that to a fresh identity, so that a
            # connection a node keeps or makes again is the node's doing.
            connector = getattr(net._host.get_network(), "auto_connector", None)
            if connector is not None:
                await connector.stop()
            await nursery.start(status.run)
            async with trio.open_nursery() as dials:
                for address in self.addresses:
                    dials.start_soon(self._dial, net, address)
            await self._ready(me)
            me.ready = clock()
            with trio.move_on_at(deadline):
                async with trio.open_nursery() as attacking:
                    attacking.start_soon(self.attacks[kind], me)
                    await self._until_dropped(me)
                    attacking.cancel_scope.cancel()
            kept = self._kept(me)
            # Leave every node before going: a connection left open would go on
            # claiming this identity's status height.
            with trio.move_on_after(5):
                for peer in me.connected():
                    await net.disconnect(peer)
                while me.connected():
                    await trio.sleep(0.05)
            record.update(joined=len(me.joined), lost=me.lost, kept=kept, to=clock(),
                          ready=me.ready, first_sent=me.first_sent, sent=me.sent, dropped_by=me.dropped_by,
                          back=me.back)
            nursery.cancel_scope.cancel()

    @staticmethod
    def _note_connections(me: Identity) -> None:
        """When the rogue first saw each connection it has to a node, and who dialled it."""
        for peer in me.connected():
            for connection in me.net._host.get_network().get_connections(ID.from_base58(peer)):
                if id(connection) not in me.connections:
                    muxed = getattr(connection, "muxed_conn", None)
                    by = "rogue" if getattr(muxed, "is_initiator_value", False) else "node"
                    me.connections[id(connection)] = (connection, peer, by, clock())

    @staticmethod
    def _kept(me: Identity) -> dict[str, list[dict[str, str]]]:
        """The connections to nodes the rogue has now: who dialled each, and since when."""
        kept: dict[str, list[dict[str, str]]] = {}
        for peer in sorted(me.connected()):
            for connection in me.net._host.get_network().get_connections(ID.from_base58(peer)):
                known = me.connections.get(id(connection))
                by, since = (known[2], known[3]) if known else ("?", clock())
                kept.setdefault(peer, []).append({"dialled_by": by, "since": since})
        return kept

    async def _dial(self, net: Libp2pNetwork, address: str) -> None:
        try:
            await net.connect(address)
        except NetworkError:
            self.dial_failures += 1

    async def _until_dropped(self, me: Identity) -> None:
        """Until every node has dropped ``me``, counting each connection lost, and each
        node that is connected again after dropping it (by the rogue only when it opens
        a request stream: py-libp2p dials a peer to open a stream to it)."""
        connected: set[PeerId] = set()
        while not me.joined or connected:
            now = me.connected()
            lost, back = connected - now, (now - connected) & me.joined
            me.joined |= now
            me.lost += len(lost)
            me.dropped_by += [f"{peer} {clock()}" for peer in sorted(lost)]
            me.back += [f"{peer} {clock()}" for peer in sorted(back)]
            self.connections_lost += len(lost)
            connected = now
            self._note_connections(me)
            heights = [status.height for peer, status in me.status.peers.items() if peer in me.nodes]
            self.tip = max([self.tip, *heights])
            await trio.sleep(0.1)

    def _learn(self, me: Identity) -> Callable[[PeerId, bytes], Awaitable[Validation]]:
        """The gossip validator of the blocks topic: the nodes' own announcements tell
        the rogue the chain's height (nothing is forwarded or kept)."""

        async def check(peer: PeerId, data: bytes) -> Validation:
            if peer in me.nodes:
                with contextlib.suppress(DecodeError):
                    self.tip = max(self.tip, Announcement.decode(data).header.height)
            return Validation.IGNORE

        return check

    async def _ready(self, me: Identity) -> None:
        """Until the nodes' subscriptions are known (so gossip reaches them), at most
        ``READY_S``."""
        pubsub = me.net._pubsub
        with trio.move_on_after(READY_S):
            while True:
                subscribed = {str(p) for p in pubsub.peer_topics.get(self.consensus_topic, ())}
                if me.connected() and all(peer in subscribed for peer in me.connected()):
                    return
                await trio.sleep(0.05)

    # --- sending -----------------------------------------------------------------------

    async def gossip(self, me: Identity, kind: str, topic: str, data: bytes, *, raw: bool = False) -> None:
        """Publish ``data`` on ``topic``; with ``raw``, through py-libp2p's pubsub, past
        the network's size check. Waits while a node's queue is long (past 1,024
        py-libp2p drops what the rogue publishes, which would not reach the nodes)."""
        pubsub = me.net._pubsub
        while any(len(getattr(getattr(q, "_queue", None), "_priority", ())) > QUEUED
                  for q in list(pubsub.peer_queues.values())):
            await trio.sleep(0.002)
        try:
            if raw:
                async with me.net._publish_lock:
                    await pubsub.publish(topic, data)
            else:
                await me.net.publish(topic, data)
        except Exception as exc:  # a node dropped us meanwhile: whatever py-libp2p says
            self.failed[f"{kind}: {type(exc).__name__}"] += 1
            await trio.sleep(0.05)
            return
        self.sent[kind] += 1
        me.sent += 1
        if me.first_sent is None:
            me.first_sent = clock()

    def junk_header(self, height: int) -> Header:
        return Header(1, self.chain_id, height, time.time_ns(), junk(HASH_LEN), junk(HASH_LEN),
                      junk(HASH_LEN), junk(HASH_LEN), junk(HASH_LEN), junk(HASH_LEN), junk(HASH_LEN),
                      junk(HASH_LEN), junk(ADDRESS_LEN))

    def forged_announcement(self, height: int) -> bytes:
        header = self.junk_header(height)
        signatures = tuple(CommitSig(CommitFlag.COMMIT, time.time_ns(), junk(SIGNATURE_LEN))
                           for _ in self.validators)
        return Announcement(header, Commit(height, 0, header.block_id(), signatures)).encode()

    # --- the attacks -------------------------------------------------------------------

    def heights(self) -> range:
        """The height being decided and the next ones: the rogue learns the chain's
        height from the nodes' announcements, a block or two late under load."""
        return range(self.tip + 1, self.tip + 1 + AHEAD)

    async def far_round(self, me: Identity) -> None:
        for i in itertools.count():
            round_ = FAR_ROUNDS[i % len(FAR_ROUNDS)]
            for height in self.heights():
                block = Block(self.junk_header(height), (), (), None)
                pol = None if i % 2 else round_ - 1
                proposal = Proposal(height, round_, pol, block.block_id(), time.time_ns(),
                                    junk(SIGNATURE_LEN))
                await self.gossip(me, "far-round", self.consensus_topic,
                                  dumps([0, proposal.to_cbor(), block.to_cbor()]))
                await self.gossip(me, "far-round", self.consensus_topic, dumps([4, proposal.to_cbor()]))
            await trio.sleep(0.005)

    async def announce(self, me: Identity) -> None:
        """Far ahead only: a node ignores them (it does not know the validator sets that
        far), so this identity is never penalized for them and its status keeps
        claiming ``LIE_HEIGHT`` for the whole phase."""
        for i in itertools.count():
            far = [self.tip + ahead for ahead in FAR_HEIGHTS_AHEAD] + list(FAR_HEIGHTS)
            await self.gossip(me, "announce", self.blocks_topic, self.forged_announcement(far[i % len(far)]))
            await trio.sleep(0.01)

    async def nothing(self, me: Identity) -> None:
        await trio.sleep_forever()

    async def announce_near(self, me: Identity) -> None:
        """A few heights ahead, once a second: the commit gets checked, and fails."""
        for i in itertools.count():
            await self.gossip(me, "announce-near", self.blocks_topic,
                              self.forged_announcement(self.tip + 2 + i % 20))
            await trio.sleep(1)

    async def proposal_refs(self, me: Identity) -> None:
        for i in itertools.count():
            height = self.tip + 1 + i % AHEAD
            proposal = Proposal(height, i % 3, None, junk(HASH_LEN), time.time_ns(), junk(SIGNATURE_LEN))
            await self.gossip(me, "proposal-refs", self.consensus_topic, dumps([4, proposal.to_cbor()]))

    async def votes(self, me: Identity) -> None:
        n = len(self.validators)
        for i in itertools.count():
            height = self.tip + 1 + i % AHEAD
            address = self.validators[i % n] if i % 3 else junk(ADDRESS_LEN)
            round_ = FAR_ROUNDS[i % len(FAR_ROUNDS)] if i % 10 == 9 else i % 4
            vote = Vote(VoteType.PREVOTE if i % 2 else VoteType.PRECOMMIT, height, round_,
                        junk(HASH_LEN) if i % 5 else b"", time.time_ns(), address, (i // 3) % n,
                        junk(SIGNATURE_LEN))
            await self.gossip(me, "votes", self.consensus_topic, dumps([1, vote.to_cbor()]))

    async def oversize(self, me: Identity) -> None:
        topics = (self.consensus_topic, self.blocks_topic)
        for i in itertools.count():
            size = OVERSIZES[i % len(OVERSIZES)]
            topic = topics[(i // len(OVERSIZES)) % len(topics)]
            payload = sized([i % 3], size)
            await self.gossip(me, "oversize", topic, payload, raw=True)
            await trio.sleep(0.01)

    async def txs(self, me: Identity) -> None:
        origin = str(me.net.local_id)
        for i in itertools.count():
            cases = [junk(1 + i % 300), dumps([0, origin]), dumps([0, origin, []]), dumps([7]),
                     dumps([0, origin, [junk(40 + i % 200) for _ in range(50)]]),
                     dumps([1, junk(8).hex()]), dumps([2]), dumps([0, "x" * 65, [b"tx"]]),
                     sized([0, origin], OVERSIZES[i % len(OVERSIZES)] + 128)]
            data = cases[i % len(cases)]
            for node in sorted(me.net.peers()):
                if node in self.node_ids and await me.net.send(node, self.txs_protocol, data):
                    self.sent["txs"] += 1
                    me.sent += 1
                    if me.first_sent is None:
                        me.first_sent = clock()
            await trio.sleep(0.005)

    def request_cases(self) -> list[tuple[str, str, bytes]]:
        status = request_protocol(self.chain_id, "status")
        blocks = request_protocol(self.chain_id, "blocks")
        parts = request_protocol(self.chain_id, "block-parts")
        top = 2**64 - 1
        cases = [
            # Well-formed first (each identity sends them before it is banned), then the rest.
            ("status ok", status, frame(b"")),
            ("blocks [2**64-1, 100]", blocks, frame(dumps([top, 100]))),
            ("blocks [1, 100]", blocks, frame(dumps([1, 100]))),
            ("block-parts zero id", parts, frame(dumps(bytes(HASH_LEN)))),
            ("status with a body", status, frame(junk(16))),
            ("status length 2**32-1", status, (2**32 - 1).to_bytes(4, "big") + b"x"),
            ("blocks garbage", blocks, frame(junk(64))),
            ("blocks 65 bytes", blocks, frame(junk(65))),
            ("blocks length 2**32-1", blocks, (2**32 - 1).to_bytes(4, "big") + junk(64)),
            ("blocks [1]", blocks, frame(dumps([1]))),
            ("blocks [1, 2, 3]", blocks, frame(dumps([1, 2, 3]))),
            ("blocks map", blocks, frame(b"\xa1\x61a\x01")),
            ("blocks text", blocks, frame(dumps("blocks"))),
            ("blocks null", blocks, frame(dumps(None))),
            ("blocks [-1, 5]", blocks, frame(dumps([-1, 5]))),
            ("blocks [1, -5]", blocks, frame(dumps([1, -5]))),
            ("blocks [1.5, 2]", blocks, frame(b"\x82\xf9\x3e\x00\x02")),
            ("blocks [true, 1]", blocks, frame(b"\x82\xf5\x01")),
            ("blocks [bytes, 2]", blocks, frame(dumps([b"\x01", 2]))),
            ("blocks [2**64-1, 2**64-1]", blocks, frame(dumps([top, top]))),
            ("blocks [1, 2**64-1]", blocks, frame(dumps([1, top]))),
            ("blocks [1, 101]", blocks, frame(dumps([1, 101]))),
            ("blocks [bignum 2**72, 1]", blocks, frame(b"\x82\xc2\x49\x01" + bytes(8) + b"\x01")),
            ("blocks indefinite", blocks, frame(b"\x9f\x01\x02\xff")),
            ("blocks non-minimal", blocks, frame(b"\x82\x18\x01\x02")),
            ("blocks nested 60", blocks, frame(b"\x81" * 60 + b"\x00")),
            ("blocks trailing", blocks, frame(dumps([1, 2]) + b"\x00")),
            ("blocks cut", blocks, frame(dumps([1, 2])[:-1])),
            ("block-parts garbage", parts, frame(junk(64))),
            ("block-parts 65 bytes", parts, frame(junk(65))),
            ("block-parts 31 bytes", parts, frame(dumps(bytes(31)))),
            ("block-parts 33 bytes", parts, frame(dumps(bytes(33)))),
            ("block-parts 2**64-1", parts, frame(dumps(top))),
            ("block-parts null", parts, frame(dumps(None))),
            ("block-parts [id]", parts, frame(dumps([bytes(HASH_LEN)]))),
            ("block-parts text", parts, frame(dumps("x" * 32))),
            ("block-parts indefinite", parts, frame(b"\x5f\x41\x00\xff")),
            ("block-parts empty", parts, frame(b"")),
            ("block-parts cut frame", parts, frame(dumps(bytes(HASH_LEN)))[:20]),
        ]
        return cases

    async def requests(self, me: Identity) -> None:
        cases = self.request_cases()
        blocks = request_protocol(self.chain_id, "blocks")
        async with trio.open_nursery() as nursery:
            for node in me.connected():
                for _ in range(STALLED_PER_NODE):
                    nursery.start_soon(self._stall, me, node, blocks)
            for i in itertools.count():
                name, protocol, data = cases[i % len(cases)]
                for node in me.connected():
                    await self._slots.acquire()
                    nursery.start_soon(self._request, me, node, name, protocol, data)
                await trio.sleep(0.01)

    async def _request(self, me: Identity, node: PeerId, name: str, protocol: str, data: bytes) -> None:
        """``data`` written raw on a new ``protocol`` stream to ``node``; whether an
        answer came back is counted by case."""
        try:
            self.sent["requests"] += 1
            me.sent += 1
            with trio.move_on_after(3):
                stream = await me.net._host.new_stream(ID.from_base58(node), [TProtocol(protocol)])
                try:
                    await stream.write(data)
                    answer = await stream.read(1 << 16)
                    self.answers[f"{name}: {'answered' if answer else 'closed'}"] += 1
                finally:
                    with contextlib.suppress(Exception):
                        await stream.reset()
        except Exception:  # reset by the node, or refused: what the rogue expects
            self.answers[f"{name}: reset"] += 1
        finally:
            self._slots.release()

    async def _stall(self, me: Identity, node: PeerId, protocol: str) -> None:
        """Half a length prefix, then nothing, until the identity goes."""
        try:
            stream = await me.net._host.new_stream(ID.from_base58(node), [TProtocol(protocol)])
            await stream.write(b"\x00\x00")
            self.sent["requests-stalled"] += 1
            await trio.sleep_forever()
        except Exception as exc:
            self.failed[f"requests-stalled: {type(exc).__name__}"] += 1

    async def mixed(self, me: Identity) -> None:
        async with trio.open_nursery() as nursery:
            for kind in ("far-round", "announce", "proposal-refs", "votes", "oversize", "txs", "requests"):
                nursery.start_soon(self.attacks[kind], me)
            nursery.start_soon(self.announce_near, me)


def parse_schedule(text: str) -> list[tuple[str, float]]:
    out = []
    for item in text.split(","):
        kind, _, seconds = item.partition("=")
        out.append((kind.strip(), float(seconds)))
    return out


async def main(args: argparse.Namespace) -> None:
    rogue = Rogue(Path(args.genesis), args.node)
    schedule = parse_schedule(args.schedule)
    unknown = [kind for kind, _ in schedule if kind not in rogue.attacks]
    if unknown:
        raise SystemExit(f"unknown attacks: {unknown}; known: {sorted(rogue.attacks)}")
    await rogue.run(schedule)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--genesis", required=True)
    parser.add_argument("--node", action="append", required=True)
    parser.add_argument("--schedule", required=True)
    trio.run(main, parser.parse_args())
