"""Fuzzing what peers send, through the in-memory network: a lying server answers block
range and block-by-id requests with fuzzed bytes; a client sends fuzzed requests; a peer
gossips fuzzed announcements and consensus messages, and sends fuzzed tx gossip; a peer
answers the status handshake with fuzzed bytes.

Whatever a peer sends, the node gets either what it asked for, checked (each block the
one its commit or id names, of this chain, with the body its header commits to), or a
NetworkError with the peer penalized; gossip is accepted, ignored or rejected with the
sender penalized; a status it cannot read or of another chain gets the peer banned.
Nothing else ever comes out.

``BIZRA_FUZZ_EXAMPLES`` raises every test's number of examples (for long runs).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import cbor2
import trio
from gossipkit import accept
from hypothesis import given
from hypothesis import strategies as st

from chain.codec import dumps, join_array, loads_canonical
from chain.commits import check_body
from chain.errors import DecodeError, InvalidTx, NetworkError
from chain.merkle import merkle_root
from chain.transition import decode_tx
from chain.types import Block, Commit, encode, tx_hash
from consensus.messages import VoteMessage, encode_message
from node.consensus_gossip import ConsensusGossip, decode_gossip
from p2p import txgossip
from p2p.blocks import (
    MAX_BLOCKS_PER_REQUEST,
    SHORT_ID_LEN,
    Announcement,
    BlockExchange,
    CompactBlock,
    short_id,
)
from p2p.memory import MemoryHub, MemoryNetwork
from p2p.network import MAX_GOSSIP_BYTES, Validation, request_protocol
from p2p.peers import PeerId
from p2p.status import MAX_STATUS_BYTES, Status, StatusService
from p2p.status import VERSION as STATUS_VERSION
from p2p.txgossip import TxGossip
from storage.memory import MemoryKV
from storage.store import Store

from chainkit import LocalChain
from fuzzkit import fuzz, mutations
from storekit import GENESIS_HASH, commit_next, transfers

# --- a chain to serve, and lies about it --------------------------------------------------

HEIGHTS = 6
CHAIN = LocalChain(validators=4, users=4)
CHAIN_ID = CHAIN.config.chain_id
STORE = Store.open(MemoryKV(), CHAIN.genesis, GENESIS_HASH)
for _ in range(HEIGHTS):
    commit_next(CHAIN, STORE, transfers(CHAIN, 3))
BLOCKS: list[Block] = []
COMMITS: list[Commit] = []
for _h in range(1, HEIGHTS + 1):
    _block, _commit = STORE.blocks.block(_h), STORE.blocks.commit(_h)
    assert _block is not None and _commit is not None
    BLOCKS.append(_block)
    COMMITS.append(_commit)

OTHER = LocalChain(validators=1, users=1, chain_id="bizra-other-9")
OTHER.run()
OTHER_BLOCK = OTHER.next_block()
OTHER.apply(OTHER_BLOCK)
assert OTHER.last_commit is not None
WRONG_BLOCKS = [
    OTHER_BLOCK,
    dataclasses.replace(BLOCKS[2], txs=BLOCKS[2].txs[1:]),
    dataclasses.replace(BLOCKS[3], evidence=()),
    dataclasses.replace(BLOCKS[1], last_commit=None),
    dataclasses.replace(BLOCKS[4], header=dataclasses.replace(BLOCKS[4].header, height=2)),
    dataclasses.replace(BLOCKS[4], header=dataclasses.replace(BLOCKS[4].header, chain_id="bizra-other-9")),
]
WRONG_COMMITS = [OTHER.last_commit, dataclasses.replace(COMMITS[2], height=2),
                 dataclasses.replace(COMMITS[3], block_id=bytes(32))]
ANY_BLOCKS = BLOCKS + WRONG_BLOCKS
ANY_COMMITS = COMMITS + WRONG_COMMITS


def blocks_response(pairs: list[tuple[Block, Commit]]) -> bytes:
    return join_array([join_array([encode(block), encode(commit)]) for block, commit in pairs])


VALID_RANGES = [blocks_response(list(zip(BLOCKS[i:i + n], COMMITS[i:i + n], strict=True)))
                for i in range(HEIGHTS) for n in (1, 3)]
VALID_BLOCKS = [encode(block) for block in BLOCKS]


# --- strategies ---------------------------------------------------------------------------

u64 = st.one_of(st.integers(0, 2**64 - 1), st.integers(0, HEIGHTS + 2))
cbor_values = st.recursive(
    st.one_of(st.none(), st.booleans(), u64, st.integers(), st.floats(), st.binary(max_size=40),
              st.binary(min_size=32, max_size=32), st.text(max_size=20)),
    lambda c: st.one_of(st.lists(c, max_size=5), st.dictionaries(st.text(max_size=3), c, max_size=2)),
    max_leaves=16,
).map(cbor2.dumps)
"""The encodings of random CBOR values."""


lying_ranges = st.lists(st.tuples(st.sampled_from(ANY_BLOCKS), st.sampled_from(ANY_COMMITS)),
                        max_size=6).map(blocks_response)
"""Well-formed block-range answers with any blocks and commits: wrong heights, wrong
commits, other chains, bodies that are not their headers'."""
range_answers = st.one_of(st.binary(max_size=200), cbor_values, mutations(VALID_RANGES), lying_ranges,
                          st.sampled_from(VALID_RANGES))
block_answers = st.one_of(st.binary(max_size=200), cbor_values, mutations(VALID_BLOCKS),
                          st.sampled_from([encode(b) for b in ANY_BLOCKS]), st.just(dumps(None)))


def run(scenario: Callable[[MemoryHub, MemoryNetwork, MemoryNetwork], Awaitable[None]]) -> None:
    """Run ``scenario(hub, node, peer)`` on a fresh in-memory network of two connected
    nodes."""
    async def main() -> None:
        hub = MemoryHub()
        node, peer = hub.join("node"), hub.join("peer")
        hub.connect(node.local_id, peer.local_id)
        await scenario(hub, node, peer)
    trio.run(main)


def exchange(network: MemoryNetwork) -> BlockExchange:
    return BlockExchange(network, CHAIN_ID, STORE.blocks, accept, max_block_bytes=1 << 20)


def answering(answer: bytes) -> Callable[[PeerId, bytes], Awaitable[bytes]]:
    async def handler(peer: PeerId, request: bytes) -> bytes:
        return answer
    return handler


def check_answer(answer: bytes, protocol: Callable[[BlockExchange], str],
                 fetch: Callable[[BlockExchange, PeerId], Awaitable[Any]],
                 check: Callable[[Any], None], *, max_request_bytes: int = 64) -> None:
    """A peer answers ``answer`` on ``protocol``; what ``fetch`` returns passes ``check``
    and costs the peer nothing, or ``fetch`` raises NetworkError and the peer loses score."""
    async def scenario(hub: MemoryHub, node: MemoryNetwork, peer: MemoryNetwork) -> None:
        client = exchange(node)
        peer.set_handler(protocol(client), answering(answer), max_request_bytes=max_request_bytes)
        try:
            got = await fetch(client, peer.local_id)
        except NetworkError as exc:
            assert str(exc)
            assert node.score(peer.local_id) < 0
            return
        assert node.score(peer.local_id) == 0
        check(got)
    run(scenario)


def check_served(request: bytes, protocol: Callable[[BlockExchange], str],
                 check: Callable[[object], None]) -> None:
    """A peer asks ``request`` of ``protocol``: the node answers canonical CBOR whose
    value passes ``check``, or refuses with a NetworkError."""
    async def scenario(hub: MemoryHub, node: MemoryNetwork, peer: MemoryNetwork) -> None:
        server = exchange(node)
        try:
            answer = await peer.request(node.local_id, protocol(server), request, max_response_bytes=64 << 20,
                                        timeout=10)
        except NetworkError as exc:
            assert str(exc)
            return
        check(loads_canonical(answer, "answer"))
    run(scenario)


def assert_is_the_chains_block(block: Block) -> None:
    assert block.header.chain_id == CHAIN_ID
    # Hashed here from the txs, not taken from what the block has worked out already.
    assert block.header.data_hash == merkle_root([tx_hash(tx) for tx in block.txs])
    check_body(block)


# --- the tests ----------------------------------------------------------------------------


@fuzz(300)
@given(range_answers, st.integers(1, HEIGHTS + 2), st.integers(0, MAX_BLOCKS_PER_REQUEST + 5))
def test_a_lying_block_range_answer_is_a_network_error_and_costs_the_liar(
        answer: bytes, start: int, count: int) -> None:
    """Whatever a peer answers to a block-range request, ``fetch_blocks`` returns the
    blocks asked for, each checked against its commit and of this chain, or raises
    NetworkError and the peer loses score."""
    def check(pairs: list[tuple[Block, Commit]]) -> None:
        assert len(pairs) <= min(count, MAX_BLOCKS_PER_REQUEST)
        for offset, (block, commit) in enumerate(pairs):
            assert block.header.height == commit.height == start + offset
            assert commit.block_id == block.block_id()
            assert_is_the_chains_block(block)
    check_answer(answer, lambda c: c.blocks_protocol, lambda c, peer: c.fetch_blocks(peer, start, count),
                 check)


@fuzz(300)
@given(block_answers, st.sampled_from([b.block_id() for b in ANY_BLOCKS] + [bytes(32)]))
def test_a_lying_block_answer_is_a_network_error_and_costs_the_liar(answer: bytes, block_id: bytes) -> None:
    """Whatever a peer answers to a block-by-id request, ``fetch_block`` returns None or
    the block of that id, of this chain, with its body; or raises NetworkError and the
    peer loses score."""
    def check(block: Block | None) -> None:
        if block is not None:
            assert block.block_id() == block_id
            assert_is_the_chains_block(block)
    check_answer(answer, lambda c: c.parts_protocol, lambda c, peer: c.fetch_block(peer, block_id), check)


block_requests = st.one_of(
    st.binary(max_size=80), cbor_values,
    st.builds(lambda start, count: dumps([start, count]), u64, u64),
    mutations([dumps([1, 3]), dumps([HEIGHTS, MAX_BLOCKS_PER_REQUEST]), dumps(BLOCKS[0].block_id())]),
    st.sampled_from([dumps(b.block_id()) for b in BLOCKS]),
)


@fuzz(300)
@given(block_requests, st.booleans())
def test_fuzzed_block_requests_are_answered_or_refused_with_a_network_error(
        request: bytes, by_id: bool) -> None:
    """Whatever a peer asks the block-range or block-by-id protocol, the node answers
    with canonical CBOR (blocks, a block, or null) or refuses with a NetworkError."""
    def check(value: object) -> None:
        if by_id:
            assert value is None or Block.from_cbor(value).block_id() == loads_canonical(request, "id")
        else:
            assert isinstance(value, list)
            for item in value:
                Block.from_cbor(item[0])
                Commit.from_cbor(item[1])
    check_served(request, lambda s: s.parts_protocol if by_id else s.blocks_protocol, check)


VALID_COMPACTS = [CompactBlock.of(b).encode() for b in BLOCKS]
ANY_COMPACTS = [CompactBlock.of(b).encode() for b in ANY_BLOCKS]
compact_answers = st.one_of(st.binary(max_size=200), cbor_values, mutations(VALID_COMPACTS),
                            st.sampled_from(VALID_COMPACTS + ANY_COMPACTS),
                            st.sampled_from([encode(b) for b in BLOCKS]), st.just(dumps(None)))


@fuzz(300)
@given(compact_answers, st.sampled_from([b.block_id() for b in ANY_BLOCKS] + [bytes(32)]))
def test_a_lying_compact_block_answer_is_a_network_error_and_costs_the_liar(
        answer: bytes, block_id: bytes) -> None:
    """Whatever a peer answers to a compact-block request, ``fetch_compact`` returns None
    or the compact block of that id, of this chain, with short ids for txs and the
    evidence and last commit of its header (its txs are checked once rebuilt); or raises
    NetworkError and the peer loses score."""
    def check(compact: CompactBlock | None) -> None:
        if compact is not None:
            assert compact.block.block_id() == block_id and compact.block.header.chain_id == CHAIN_ID
            assert all(len(i) == SHORT_ID_LEN for i in compact.tx_ids)
            check_body(compact.block, txs=False)
    check_answer(answer, lambda c: c.compact_protocol, lambda c, peer: c.fetch_compact(peer, block_id), check)


TXS_BLOCK = max(BLOCKS, key=lambda b: len(b.txs))
txs_answers = st.one_of(st.binary(max_size=200), cbor_values, st.just(dumps(None)),
                        mutations([dumps(list(TXS_BLOCK.txs[:2]))]),
                        st.lists(st.sampled_from(list(TXS_BLOCK.txs)), max_size=3).map(dumps))


@fuzz(300)
@given(txs_answers)
def test_a_lying_block_txs_answer_is_a_network_error_and_costs_the_liar(answer: bytes) -> None:
    """Whatever a peer answers to a block-txs request, ``fetch_txs`` returns None or
    exactly the txs asked for, each hashing to its short id; or raises NetworkError and
    the peer loses score."""
    wanted = {i: short_id(tx_hash(TXS_BLOCK.txs[i])) for i in range(2)}

    def check(txs: list[bytes] | None) -> None:
        assert txs is None or txs == list(TXS_BLOCK.txs[:2])
    check_answer(answer, lambda c: c.txs_protocol,
                 lambda c, peer: c.fetch_txs(peer, TXS_BLOCK.block_id(), wanted), check,
                 max_request_bytes=1 << 20)


txs_requests = st.one_of(
    st.binary(max_size=80), cbor_values,
    st.builds(lambda block, indexes: dumps([block.block_id(), indexes]), st.sampled_from(BLOCKS),
              st.lists(st.integers(0, 10), max_size=12)),
    mutations([dumps([TXS_BLOCK.block_id(), [0, 1]])]),
)


@fuzz(300)
@given(st.one_of(txs_requests, block_requests), st.booleans())
def test_fuzzed_compact_and_block_txs_requests_are_answered_or_refused_with_a_network_error(
        request: bytes, compact: bool) -> None:
    """Whatever a peer asks the compact-block or block-txs protocol, the node answers
    with canonical CBOR (a compact block, txs, or null) or refuses with a NetworkError."""
    def check(value: object) -> None:
        if value is None:
            return
        if compact:
            assert CompactBlock.decode(value).block.block_id() == loads_canonical(request, "id")
        else:
            block_id, indexes = loads_canonical(request, "request")
            block = next(b for b in BLOCKS if b.block_id() == block_id)
            assert value == [block.txs[i] for i in indexes]
    check_served(request, lambda s: s.compact_protocol if compact else s.txs_protocol, check)


VOTE = VoteMessage(CHAIN.sign_commit(BLOCKS[-1]).vote_for(0, bytes(20)))
VALID_GOSSIP = [
    Announcement(BLOCKS[-1].header, COMMITS[-1]).encode(),
    encode_message(VOTE),
]
TOPICS = ["blocks", "consensus"]


@fuzz(300)
@given(st.sampled_from(TOPICS),
       st.one_of(st.binary(max_size=200), cbor_values, mutations(VALID_GOSSIP), st.sampled_from(VALID_GOSSIP),
                 st.just(bytes(MAX_GOSSIP_BYTES + 1))))
def test_fuzzed_gossip_is_accepted_ignored_or_rejected_at_a_cost(topic: str, data: bytes) -> None:
    """Whatever a peer gossips on the blocks or consensus topic, the node's validators
    accept it (and then it decodes), ignore it, or reject it and the peer loses score;
    publishing it raises nothing but a NetworkError (too large)."""
    async def scenario(hub: MemoryHub, node: MemoryNetwork, peer: MemoryNetwork) -> None:
        blocks = exchange(node)
        consensus = ConsensusGossip(node, CHAIN_ID, blocks, accept)
        try:
            await peer.publish(f"/bizra/{CHAIN_ID}/{topic}/1", data)
        except NetworkError:
            assert len(data) > MAX_GOSSIP_BYTES
            return
        channel = {"blocks": blocks._messages, "consensus": consensus._messages}[topic]
        delivered = channel.statistics().current_buffer_used
        score = node.score(peer.local_id)
        assert score <= 0
        if delivered:
            assert score == 0
            message = channel.receive_nowait()
            if topic == "blocks":
                Announcement.decode(message.data)
            else:
                decode_gossip(message.data)
    run(scenario)


VALID_TX_GOSSIP = [
    txgossip.encode_message(txgossip.Batch("peer", transfers(CHAIN, 3))),
    txgossip.encode_message(txgossip.Have("peer")),
    txgossip.encode_message(txgossip.Reset()),
]


@fuzz(300)
@given(st.one_of(st.binary(max_size=200), cbor_values, mutations(VALID_TX_GOSSIP),
                 st.sampled_from(VALID_TX_GOSSIP), st.just(bytes(txgossip.MAX_MESSAGE_BYTES + 1))))
def test_fuzzed_tx_gossip_is_taken_or_ignored_or_costs_its_sender(data: bytes) -> None:
    """Whatever a peer sends as tx gossip, the node hands over a batch of txs that
    decode, steers its routes, drops it, or penalizes the peer: a message that does not
    decode, or is too large, always costs it."""
    async def scenario(hub: MemoryHub, node: MemoryNetwork, peer: MemoryNetwork) -> None:
        def check_tx(raw: bytes) -> Validation:
            try:
                decode_tx(raw, CHAIN.config.params)
            except InvalidTx:
                return Validation.REJECT
            return Validation.ACCEPT

        txs = TxGossip(node, CHAIN_ID, check_tx)
        await peer.send(node.local_id, txs.protocol, data)
        with contextlib.suppress(trio.WouldBlock):  # nothing: it was above the limit
            message = txs._inbox.receive_nowait()
            await txs._receive(message.sender, message.data)
        score = node.score(peer.local_id)
        assert score <= 0
        try:
            decoded = txgossip.decode_message(data)
        except DecodeError:
            assert score < 0
            return
        assert len(data) <= txgossip.MAX_MESSAGE_BYTES
        if txs.received.statistics().current_buffer_used:
            assert score == 0 and isinstance(decoded, txgossip.Batch)
            _, got = txs.received.receive_nowait()
            assert got == decoded.txs and all(decode_tx(raw, CHAIN.config.params) for raw in got)
    run(scenario)


STATUS_PROTOCOL = request_protocol(CHAIN_ID, "status", STATUS_VERSION)
VALID_STATUSES = [
    Status(CHAIN_ID, GENESIS_HASH, 3, ("/memory/p2p/peer",), ("/memory/p2p/other",)).encode(),
    Status(CHAIN_ID, GENESIS_HASH, 0, (), ()).encode(),
    Status("bizra-other-9", GENESIS_HASH, 3, (), ()).encode(),
    Status(CHAIN_ID, bytes(32), 3, (), ()).encode(),
]


@fuzz(300)
@given(st.one_of(st.binary(max_size=200), cbor_values, mutations(VALID_STATUSES),
                 st.sampled_from(VALID_STATUSES), st.just(bytes(MAX_STATUS_BYTES + 1))))
def test_a_fuzzed_status_gets_the_peer_banned_or_recorded(answer: bytes) -> None:
    """Whatever a peer answers to the status handshake, ``check`` returns: the status,
    recorded, when it is this chain's; otherwise None, and the peer is banned when the
    status is unreadable or another chain's."""
    async def scenario(hub: MemoryHub, node: MemoryNetwork, peer: MemoryNetwork) -> None:
        service = StatusService(node, CHAIN_ID, GENESIS_HASH, lambda: 1, node.listen_addrs)
        peer.set_handler(STATUS_PROTOCOL, answering(answer), max_request_bytes=0)
        status = await service.check(peer.local_id)
        banned = node.book.is_banned(peer.local_id, hub.clock())
        if len(answer) > MAX_STATUS_BYTES:
            assert status is None and not banned
            return
        try:
            sent = Status.decode(answer)
        except DecodeError:
            assert status is None and banned
            return
        if (sent.chain_id, sent.genesis_hash) == (CHAIN_ID, GENESIS_HASH):
            assert status == sent == service.peers[peer.local_id] and not banned
        else:
            assert status is None and banned
    run(scenario)


def test_the_fuzzing_starts_from_valid_messages() -> None:
    """The valid messages the fuzzing mutates are valid: each decodes, and the honest
    answers pass the client's checks."""
    assert txgossip.decode_message(VALID_TX_GOSSIP[0])
    assert Announcement.decode(VALID_GOSSIP[0]).header == BLOCKS[-1].header
    assert isinstance(decode_gossip(VALID_GOSSIP[1]), VoteMessage)

    async def scenario(hub: MemoryHub, node: MemoryNetwork, peer: MemoryNetwork) -> None:
        client = exchange(node)
        exchange(peer)
        pairs = await client.fetch_blocks(peer.local_id, 2, 3)
        assert [block for block, _ in pairs] == BLOCKS[1:4]
        assert await client.fetch_block(peer.local_id, BLOCKS[0].block_id()) == BLOCKS[0]
    run(scenario)
