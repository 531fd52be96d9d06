"""Blocks between peers (§8).

- Announcements on the gossip topic ``/bizra/<c>/blocks/1``: a new block's header and
  the commit that finalized it, ``[header, commit]``, no body (a commit of a few hundred
  validators fits the 60 KiB gossip limit). An announcement whose commit is not for its
  header, or of another chain, is rejected and costs its sender; the rest is the node's
  ``check`` (a height it already has: ignore; a commit that does not verify: reject).
- ``/bizra/<c>/blocks/1`` request/response: ``[start, count]`` asks for the blocks from
  ``start`` with their commits; the answer is ``[[block, commit], ...]``, consecutive
  heights from ``start``, at most ``count`` and ``MAX_BLOCKS_PER_REQUEST`` of them, cut
  once ``RESPONSE_BUDGET_BYTES`` is reached (always at least one block that exists), and
  empty if the peer does not have ``start``.
- ``/bizra/<c>/block-parts/1`` request/response: a block id (CBOR bytes) asks for that
  block whole (a proposal too large to gossip, or a committed block); the answer is the
  block, or null if the peer does not have it.
- ``/bizra/<c>/compact-block/2`` request/response: a block id asks for that block with
  its txs named by short ids, the first ``SHORT_ID_LEN`` bytes of their hashes
  (:class:`CompactBlock`), or null: what a peer rebuilds from its mempool.
- ``/bizra/<c>/block-txs/1`` request/response: ``[block_id, [index, ...]]`` (indexes
  ascending) asks for those txs of that block; the answer is ``[tx, ...]`` in the same
  order, or null if the peer does not have the block.

Whatever a peer sends is checked before it is used: each block must be the one its
commit (or the id asked for) names and its body the one its header commits to (a
compact block's txs only once it is rebuilt), else the peer loses score and the caller
gets a NetworkError. Whether a commit's signatures make
the block final is for block sync and consensus, which know the validator sets.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, TypeVarTuple

import trio

from chain.codec import (
    dumps,
    expect_array,
    expect_bytes,
    expect_list,
    expect_uint,
    join_array,
    loads_canonical,
)
from chain.commits import check_body
from chain.errors import DecodeError, InvalidBlock, NetworkError
from chain.service import TaskStatus
from chain.sizes import HASH_LEN, TX_BYTES_LIMIT
from chain.types import Block, Commit, Header, encode, tx_hash
from p2p.network import (
    INVALID_MESSAGE_PENALTY,
    Gossip,
    Network,
    Validation,
    gossip_topic,
    request_protocol,
)
from p2p.peers import PeerId

MAX_BLOCKS_PER_REQUEST = 100
RESPONSE_BUDGET_BYTES = 8 << 20
"""A blocks response stops growing past this size (it still holds one block at least)."""
BLOCK_OVERHEAD_BYTES = 4 << 20
"""What a block's encoding may add to its txs' bytes: CBOR heads (5 bytes a tx at most),
header, evidence and last commit."""
MAX_REQUEST_BYTES = 64
SHORT_ID_LEN = 8
"""A compact block names each tx by this many bytes of its hash: a quarter of the bytes
to carry, and a collision costs a whole-block fetch (two txs sharing a short id take
about 2**32 tries to make; one matching a given tx, 2**64)."""
MAX_TXS_REQUEST_BYTES = 1 << 20
"""A block-txs request: a block id and up to ~200,000 indexes."""
SERVED_COMPACT = 4
"""Compact blocks kept encoded for the peers that ask next (a proposal is asked for by
every peer at about the same time)."""
REQUEST_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class Announcement:
    """A new block, as its header and the commit that finalized it."""

    header: Header
    commit: Commit

    def encode(self) -> bytes:
        return dumps([self.header.to_cbor(), self.commit.to_cbor()])

    @classmethod
    def decode(cls, data: bytes) -> Announcement:
        header, commit = expect_array(loads_canonical(data, "block announcement"), 2, "block announcement")
        return cls(Header.from_cbor(header), Commit.from_cbor(commit))


def short_id(h: bytes) -> bytes:
    """The short id of the tx whose hash is ``h``."""
    return h[:SHORT_ID_LEN]


@dataclass(frozen=True, slots=True)
class CompactBlock:
    """A block whose txs are named by short ids (§8.7). It is encoded as a block whose
    txs are those ids, so that the block decoder and its bounds serve it."""

    block: Block
    """The block with ``txs`` holding the txs' short ids."""

    @classmethod
    def of(cls, block: Block) -> CompactBlock:
        return cls(dataclasses.replace(block, txs=tuple([short_id(h) for h in block.tx_hashes()])))

    @property
    def tx_ids(self) -> tuple[bytes, ...]:
        return self.block.txs

    def encode(self) -> bytes:
        return encode(self.block)

    @classmethod
    def decode(cls, obj: object) -> CompactBlock:
        """From the decoded CBOR of a compact block; DecodeError unless every tx is
        named by a short id."""
        block = Block.from_cbor(obj)
        for i, name in enumerate(block.txs):
            if len(name) != SHORT_ID_LEN:
                raise DecodeError(f"compact block.txs[{i}]: {len(name)} bytes, not a "
                                  f"{SHORT_ID_LEN}-byte short id")
        return cls(block)

    def rebuilt(self, txs: Sequence[bytes], tx_hashes: Sequence[bytes]) -> Block | None:
        """The block, given its txs and their hashes, if they are the ones its header
        commits to (else None: a short id matched another tx, or the peer lied)."""
        compact = self.block
        block = Block.hashed(compact.header, tuple(txs), tuple(tx_hashes), compact.evidence,
                             compact.last_commit)
        try:
            check_body(block)
        except InvalidBlock:
            return None
        return block


class BlockSource(Protocol):
    """The committed blocks this node can serve (its store); called from worker threads."""

    def encoded_block(self, height: int) -> bytes | None:
        """The canonical encoding of the committed block at ``height``, or None."""

    def encoded_commit(self, height: int) -> bytes | None:
        """The canonical encoding of the commit of ``height``, or None."""

    def block_by_id(self, block_id: bytes) -> Block | None:
        """The committed block ``block_id``, or None."""


AnnouncementCheck = Callable[[PeerId, Announcement], Awaitable[Validation]]


def _mismatch(block: Block, commit: Commit | None, chain_id: str, *, compact: bool = False) -> str | None:
    """Why ``block`` (with ``commit``, if given) is not what it claims to be, or None.
    A ``compact`` block's txs are short ids: they are checked once it is rebuilt."""
    header = block.header
    if header.chain_id != chain_id:
        return f"block {header.height} is of chain {header.chain_id!r}"
    if commit is not None and (commit.height != header.height or commit.block_id != block.block_id()):
        return f"the commit of block {header.height} is for another block"
    try:
        check_body(block, txs=not compact)
    except InvalidBlock as exc:
        return str(exc)
    return None


class BlockExchange:
    """Announces this node's new blocks, serves blocks to peers, and fetches theirs.

    ``max_block_bytes`` is the chain's parameter: responses are refused above what a
    valid block (or a budget of them) can take. A block asked for by id is looked up in
    ``known`` (the blocks consensus holds in memory, on the event loop), then in
    ``source`` (on a worker thread: reading and decoding a block of megabytes would hold
    up the loop)."""

    def __init__(self, network: Network, chain_id: str, source: BlockSource, check: AnnouncementCheck, *,
                 max_block_bytes: int, known: Callable[[bytes], Block | None] | None = None) -> None:
        self.network = network
        self.chain_id = chain_id
        self.source = source
        self.known = known
        self.check = check
        self.max_block_response = max_block_bytes + BLOCK_OVERHEAD_BYTES
        self.max_blocks_response = RESPONSE_BUDGET_BYTES + self.max_block_response
        self.topic = gossip_topic(chain_id, "blocks")
        self.blocks_protocol = request_protocol(chain_id, "blocks")
        self.parts_protocol = request_protocol(chain_id, "block-parts")
        self.compact_protocol = request_protocol(chain_id, "compact-block", version=2)
        self.txs_protocol = request_protocol(chain_id, "block-txs")
        self._served: OrderedDict[bytes, bytes] = OrderedDict()
        """The last compact blocks served, encoded, by block id."""
        self._messages = network.subscribe(self.topic, self._validate)
        self._announced_send, self.announced = trio.open_memory_channel[tuple[PeerId, Announcement]](256)
        network.set_handler(self.blocks_protocol, self._serve_blocks, max_request_bytes=MAX_REQUEST_BYTES)
        network.set_handler(self.parts_protocol, self._serve_block, max_request_bytes=MAX_REQUEST_BYTES)
        network.set_handler(self.compact_protocol, self._serve_compact, max_request_bytes=MAX_REQUEST_BYTES)
        network.set_handler(self.txs_protocol, self._serve_txs, max_request_bytes=MAX_TXS_REQUEST_BYTES)

    # --- announcements -------------------------------------------------------------

    async def announce(self, header: Header, commit: Commit) -> None:
        """Gossip that block ``header`` was committed by ``commit``."""
        await self.network.publish(self.topic, Announcement(header, commit).encode())

    async def _validate(self, peer: PeerId, data: bytes) -> Validation:
        try:
            announcement = Announcement.decode(data)
        except DecodeError:
            return Validation.REJECT
        header, commit = announcement.header, announcement.commit
        if header.chain_id != self.chain_id or commit.height != header.height \
                or commit.block_id != header.block_id():
            return Validation.REJECT
        return await self.check(peer, announcement)

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Hand accepted announcements to :attr:`announced` until cancelled."""
        task_status.started()
        message: Gossip
        async for message in self._messages:
            await self._announced_send.send((message.sender, Announcement.decode(message.data)))

    # --- serving -------------------------------------------------------------------

    async def _serve_blocks(self, peer: PeerId, request: bytes) -> bytes:
        try:
            start, count = expect_array(loads_canonical(request, "blocks request"), 2, "blocks request")
            start = expect_uint(start, "blocks request start")
            count = expect_uint(count, "blocks request count", MAX_BLOCKS_PER_REQUEST)
        except DecodeError as exc:
            raise NetworkError(str(exc)) from None
        # Reading megabytes of blocks: off the event loop.
        return await trio.to_thread.run_sync(_blocks_response, self.source, start, count)

    async def _block_by_id(self, block_id: bytes) -> Block | None:
        block = self.known(block_id) if self.known is not None else None
        if block is None:
            block = await trio.to_thread.run_sync(self.source.block_by_id, block_id)
        return block

    async def _serve_block(self, peer: PeerId, request: bytes) -> bytes:
        block = await self._block_by_id(_block_id_of(request, "block-parts request"))
        return dumps(None) if block is None else await trio.to_thread.run_sync(encode, block)

    async def _serve_compact(self, peer: PeerId, request: bytes) -> bytes:
        block_id = _block_id_of(request, "compact-block request")
        served = self._served.get(block_id)
        if served is None:
            block = await self._block_by_id(block_id)
            if block is None:
                return dumps(None)
            # Hashing and encoding tens of thousands of txs: off the event loop.
            served = self._served[block_id] = await trio.to_thread.run_sync(
                lambda: CompactBlock.of(block).encode())
            while len(self._served) > SERVED_COMPACT:
                self._served.popitem(last=False)
        return served

    async def _serve_txs(self, peer: PeerId, request: bytes) -> bytes:
        try:
            block_id, indexes = expect_array(loads_canonical(request, "block-txs request"), 2,
                                             "block-txs request")
            block_id = expect_bytes(block_id, "block-txs request block id", HASH_LEN)
            wanted = [expect_uint(i, "block-txs request index")
                      for i in expect_list(indexes, "block-txs request indexes")]
        except DecodeError as exc:
            raise NetworkError(str(exc)) from None
        block = await self._block_by_id(block_id)
        if block is None:
            return dumps(None)
        if any(b <= a for a, b in itertools.pairwise(wanted)) or \
                (wanted and wanted[-1] >= len(block.txs)):
            raise NetworkError(f"block-txs request: indexes not ascending or past the block's "
                               f"{len(block.txs)} txs")
        txs = block.txs
        return await trio.to_thread.run_sync(lambda: dumps([txs[i] for i in wanted]))

    # --- fetching ------------------------------------------------------------------

    async def fetch_blocks(self, peer: PeerId, start: int, count: int) -> list[tuple[Block, Commit]]:
        """Blocks ``start``, ``start + 1``, … (at most ``count``) from ``peer``, each with
        its commit and checked against it; empty if ``peer`` does not have ``start``.
        NetworkError if the request fails or the peer sent something else (it is
        penalized)."""
        count = min(count, MAX_BLOCKS_PER_REQUEST)
        raw = await self.network.request(peer, self.blocks_protocol, dumps([start, count]),
                                         max_response_bytes=self.max_blocks_response,
                                         timeout=REQUEST_TIMEOUT_S)
        return await self._read(peer, _read_blocks, raw, start, count, self.chain_id)

    async def fetch_block(self, peer: PeerId, block_id: bytes) -> Block | None:
        """The block ``block_id`` from ``peer``, checked against its id; None if
        ``peer`` does not have it. NetworkError as :meth:`fetch_blocks`."""
        return await self._fetch_by_id(peer, self.parts_protocol, block_id, "block", Block.from_cbor)

    def compact_problem(self, compact: CompactBlock, block_id: bytes) -> str | None:
        """Why ``compact``, pushed with a proposal of ``block_id``, is not that block of
        this chain (its header, evidence and last commit; its txs are checked once it is
        rebuilt), or None."""
        if compact.block.block_id() != block_id:
            return f"a compact block {compact.block.block_id().hex()[:16]}… for {block_id.hex()[:16]}…"
        return _mismatch(compact.block, None, self.chain_id, compact=True)

    async def fetch_compact(self, peer: PeerId, block_id: bytes) -> CompactBlock | None:
        """The block ``block_id`` from ``peer`` with its txs named by short ids, checked
        against its id (header, evidence and last commit; its txs once rebuilt); None if
        ``peer`` does not have it. NetworkError as :meth:`fetch_blocks`."""
        block = await self._fetch_by_id(peer, self.compact_protocol, block_id, "compact block",
                                        _compact_block_of, compact=True)
        return None if block is None else CompactBlock(block)

    async def _fetch_by_id(self, peer: PeerId, protocol: str, block_id: bytes, what: str,
                           decode: Callable[[object], Block], *, compact: bool = False) -> Block | None:
        """Block ``block_id`` as ``protocol`` answers it (``compact``: its txs are short
        ids), of this chain, with that id and a body that is its header's."""
        raw = await self.network.request(peer, protocol, dumps(block_id),
                                         max_response_bytes=self.max_block_response,
                                         timeout=REQUEST_TIMEOUT_S)
        return await self._read(peer, _read_block, raw, what, decode, block_id, self.chain_id, compact)

    async def fetch_txs(self, peer: PeerId, block_id: bytes, ids: dict[int, bytes]) -> list[bytes] | None:
        """The txs of block ``block_id`` at the indexes of ``ids`` (ascending), from
        ``peer``, each checked against its short id; None if ``peer`` does not have the
        block. NetworkError as :meth:`fetch_blocks`."""
        indexes = sorted(ids)
        raw = await self.network.request(peer, self.txs_protocol, dumps([block_id, indexes]),
                                         max_response_bytes=self.max_block_response,
                                         timeout=REQUEST_TIMEOUT_S)
        return await self._read(peer, _read_txs, raw, block_id, ids, indexes)

    async def _read(self, peer: PeerId, read: Callable[[bytes, *_Args], _T], raw: bytes, *args: *_Args) -> _T:
        """``read(raw, *args)``, a response's decoding and checks, on a worker thread: a
        response may be megabytes of txs to decode and hash, which would hold up the
        event loop (votes, gossip, RPC) meanwhile. If it is not what was asked for,
        ``peer`` is penalized and NetworkError raised."""
        try:
            return await trio.to_thread.run_sync(read, raw, *args)
        except _Unfit as exc:
            raise self._fault(peer, str(exc)) from None

    def _fault(self, peer: PeerId, problem: str) -> NetworkError:
        self.network.penalize(peer, INVALID_MESSAGE_PENALTY, problem)
        return NetworkError(f"peer {peer}: {problem}")


def _blocks_response(source: BlockSource, start: int, count: int) -> bytes:
    """The answer to a blocks request ``[start, count]`` from ``source`` (see the module
    docstring): its blocks and commits as stored, neither decoded nor encoded again."""
    items: list[bytes] = []
    size = 0
    for height in range(start, start + count):
        block, commit = source.encoded_block(height), source.encoded_commit(height)
        if block is None or commit is None:
            break
        item = join_array([block, commit])
        if items and size + len(item) > RESPONSE_BUDGET_BYTES:
            break
        items.append(item)
        size += len(item)
    return join_array(items)


class _Unfit(Exception):
    """A response is not what was asked for: why, to penalize its sender with."""


_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")


def _read_blocks(raw: bytes, start: int, count: int, chain_id: str) -> list[tuple[Block, Commit]]:
    """A blocks response to ``[start, count]``: each block with its commit, checked
    against it and of consecutive heights from ``start``. _Unfit otherwise."""
    try:
        items = expect_list(loads_canonical(raw, "blocks response"), "blocks response", count)
        pairs = []
        for item in items:
            block, commit = expect_array(item, 2, "blocks response item")
            pairs.append((Block.from_cbor(block), Commit.from_cbor(commit)))
    except DecodeError as exc:
        raise _Unfit(f"unreadable blocks response: {exc}") from None
    for offset, (block, commit) in enumerate(pairs):
        if block.header.height != start + offset:
            raise _Unfit(f"sent block {block.header.height} where {start + offset} was asked for")
        problem = _mismatch(block, commit, chain_id)
        if problem:
            raise _Unfit(problem)
    return pairs


def _read_block(raw: bytes, what: str, decode: Callable[[object], Block], block_id: bytes, chain_id: str,
                compact: bool) -> Block | None:
    """A response naming block ``block_id`` (or null): that block of this chain, with a
    body that is its header's (``compact``: but for its txs). _Unfit otherwise."""
    try:
        obj = loads_canonical(raw, f"{what} response")
        block = None if obj is None else decode(obj)
    except DecodeError as exc:
        raise _Unfit(f"unreadable {what}: {exc}") from None
    if block is None:
        return None
    if block.block_id() != block_id:
        raise _Unfit(f"sent block {block.block_id().hex()[:16]}… for {block_id.hex()[:16]}…")
    problem = _mismatch(block, None, chain_id, compact=compact)
    if problem:
        raise _Unfit(problem)
    return block


def _compact_block_of(obj: object) -> Block:
    return CompactBlock.decode(obj).block


def _read_txs(raw: bytes, block_id: bytes, ids: dict[int, bytes], indexes: list[int]) -> list[bytes] | None:
    """A response for the txs at ``indexes`` of block ``block_id`` (or null): each the
    tx its short id in ``ids`` names. _Unfit otherwise."""
    try:
        obj = loads_canonical(raw, "block-txs response")
        txs = None if obj is None else [expect_bytes(t, "block-txs response tx", max_bytes=TX_BYTES_LIMIT)
                                        for t in expect_list(obj, "block-txs response", len(indexes))]
    except DecodeError as exc:
        raise _Unfit(f"unreadable block txs: {exc}") from None
    if txs is None:
        return None
    if len(txs) != len(indexes):
        raise _Unfit(f"sent {len(txs)} txs for {len(indexes)} asked")
    for i, tx in zip(indexes, txs, strict=True):
        if short_id(tx_hash(tx)) != ids[i]:
            raise _Unfit(f"sent a tx for index {i} of block {block_id.hex()[:16]}… that is not the one "
                         "the block names")
    return txs


def _block_id_of(request: bytes, what: str) -> bytes:
    """The block id a request names; NetworkError (the handler's refusal) otherwise."""
    try:
        return expect_bytes(loads_canonical(request, what), "block id", HASH_LEN)
    except DecodeError as exc:
        raise NetworkError(str(exc)) from None
