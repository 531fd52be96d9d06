"""Consensus over the network: the driver's :class:`~consensus.driver.ConsensusNetwork`
on the gossip topic ``/bizra/<c>/consensus/1`` and the ``block-parts`` protocol.

Votes, and proposals whose block fits a gossip message, travel whole (the encodings of
:mod:`consensus.messages`). A proposal whose block does not fit travels with its block
compact when that fits, ``[5, proposal, compact block]``: a peer rebuilds the block
from its mempool at once, fetching only the txs it lacks from the peer that sent it.
Otherwise it travels as ``[4, proposal]``, and the proposer pushes ``[5, proposal,
compact block]`` to up to ``PUSH_PEERS`` of its peers directly, on the
``compact-proposal`` protocol: one hop, where a fetch takes a stream's negotiation and a
request through two busy event loops. A peer that has the bare proposal waits
``PUSH_WAIT_S`` for the push, then fetches the block by id from the peer that sent it
(and, failing that, from others), a push that comes meanwhile still winning, before
handing the driver the whole proposal. Either way a block that cannot be rebuilt is
fetched.
A block the driver asks for (:meth:`request_block`) is fetched the same way. A block
body the driver publishes to help a peer catch up is dropped when it does not fit: that
peer fetches it, or syncs.

A block is fetched compact first: its txs named by short ids, each looked up in this
node's mempool (``lookup``), and only the txs it lacks asked for; a block that cannot be
rebuilt so (or whose rebuilt txs are not the ones its header commits to: a short id
matched another tx) is fetched whole. The reconstruction rate (txs found here / txs named) is
counted in ``txs_named`` and ``txs_found``.

Gossip that does not decode is rejected (its sender loses score); one that does is
screened before it is forwarded or acted on (``screen``: the driver's
:meth:`~consensus.driver.Driver.screen`, which checks heights, rounds and signatures):
a forged one is rejected too, one of no concern now is ignored.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from chain.codec import dumps, expect_array, join_array, loads_canonical
from chain.errors import DecodeError, NetworkError
from chain.service import TaskStatus
from chain.types import Block, Proposal, tx_hash
from consensus.messages import (
    BlockMessage,
    PeerMessage,
    ProposalMessage,
    VoteMessage,
    decode_message,
    encode_message,
)
from p2p.blocks import BlockExchange, CompactBlock
from p2p.network import (
    INVALID_MESSAGE_PENALTY,
    MAX_GOSSIP_BYTES,
    Network,
    Validation,
    gossip_topic,
    request_protocol,
)
from p2p.peers import PeerId

log = logging.getLogger(__name__)

PROPOSAL_BY_ID = 4
COMPACT_PROPOSAL = 5
FETCH_PEERS = 4
"""How many peers a block is asked of, one after the other, before giving up."""
RECENT_BLOCKS = 8
"""The last blocks fetched, kept for a proposal of them that comes again."""
MAX_FETCHES = 8
"""Blocks fetched at once at most; a proposal beyond waits for its next gossip."""
PUSH_PEERS = 8
"""Peers a proposer pushes a compact proposal too large for gossip to."""
PUSH_WAIT_S = 0.5
"""How long a peer with a bare proposal waits for its push before it fetches the block."""
PUSH_INBOX = 4
"""Pushed proposals waiting to be read, at most (each up to a block's size)."""

Deliver = Callable[[PeerMessage], Awaitable[None]]
Lookup = Callable[[bytes], tuple[bytes, bytes] | None]
"""A tx's hash and encoding by its short id, if this node has it (the mempool's)."""
Screen = Callable[[PeerMessage | Proposal], Awaitable[Validation]]
"""Gossip validation of a decoded message (see :meth:`consensus.driver.Driver.screen`)."""


@dataclass(frozen=True, slots=True)
class CompactProposal:
    """A proposal with its block compact (its txs named by short ids)."""

    proposal: Proposal
    compact: CompactBlock


def decode_gossip(data: bytes) -> PeerMessage | Proposal | CompactProposal:
    """A consensus gossip message (a bare :class:`Proposal` when its block comes by id);
    DecodeError if it is none."""
    obj = loads_canonical(data, "consensus message")
    if type(obj) is list and obj and type(obj[0]) is int and obj[0] == PROPOSAL_BY_ID:
        _, proposal = expect_array(obj, 2, "proposal by id")
        return Proposal.from_cbor(proposal)
    if type(obj) is list and obj and type(obj[0]) is int and obj[0] == COMPACT_PROPOSAL:
        _, proposal, compact = expect_array(obj, 3, "compact proposal")
        return CompactProposal(Proposal.from_cbor(proposal), CompactBlock.decode(compact))
    message = decode_message(data)
    if not isinstance(message, ProposalMessage | VoteMessage | BlockMessage):
        raise DecodeError("consensus message: a WAL record is not gossip")
    return message


class ConsensusGossip:
    """See the module docstring. ``height`` is the height the driver is deciding;
    ``deliver`` hands it a message (the driver's :meth:`~consensus.driver.Driver.deliver`)."""

    def __init__(self, network: Network, chain_id: str, blocks: BlockExchange, screen: Screen,
                 lookup: Lookup = lambda _: None) -> None:
        self.network = network
        self.blocks = blocks
        self.screen = screen
        self.lookup = lookup
        self.topic = gossip_topic(chain_id, "consensus")
        self._messages = network.subscribe(self.topic, self._validate)
        self.push_protocol = request_protocol(chain_id, "compact-proposal")
        self._pushes_in = network.inbox(self.push_protocol, max_message_bytes=blocks.max_block_response,
                                        capacity=PUSH_INBOX)
        self._pushed_here: dict[bytes, tuple[PeerId, CompactBlock]] = {}
        """Compact blocks pushed to this node, by id, while their block is fetched."""
        self._push_came: dict[bytes, trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        self._deliver: Deliver | None = None
        self._fetching: set[bytes] = set()
        self._waiting: dict[bytes, list[Proposal]] = {}
        """Proposals of a block being fetched that came after the one that asked for it."""
        self._recent: OrderedDict[bytes, Block] = OrderedDict()
        """The last blocks fetched, by id: a proposal gossiped again (every few seconds,
        or in a later round) is handed over at once, not fetched again."""
        self.dropped_bodies = 0
        self.txs_named = 0
        """Txs named by the compact blocks fetched."""
        self.txs_found = 0
        """Of those, the ones found here (the rest were fetched)."""
        self.whole_fetches = 0
        """Blocks fetched whole because their compact form could not be had or rebuilt."""
        self._pushed: tuple[bytes, bytes] | None = None
        """The last compact proposal sent, by block id (a proposal is sent again every few
        seconds, and its short ids would be hashed again)."""
        self._pushed_block: bytes | None = None
        """The id of the last block pushed to peers: a proposal of it is gossiped again
        (every few seconds, and in later rounds), not pushed again."""
        self.pushes_sent = 0
        self.pushes_used = 0
        """Compact proposals pushed to this node for a block it did not have yet."""

    async def _validate(self, peer: PeerId, data: bytes) -> Validation:
        try:
            message = decode_gossip(data)
        except DecodeError:
            return Validation.REJECT
        if isinstance(message, CompactProposal):
            if self.blocks.compact_problem(message.compact, message.proposal.block_id) is not None:
                return Validation.REJECT
            return await self.screen(message.proposal)
        return await self.screen(message)

    async def publish(self, message: PeerMessage) -> None:
        data = encode_message(message)
        if len(data) > MAX_GOSSIP_BYTES:
            if isinstance(message, ProposalMessage):
                data = self._compact_proposal(message)
                if len(data) > MAX_GOSSIP_BYTES:
                    await self._push(message.proposal, data)
                    data = dumps([PROPOSAL_BY_ID, message.proposal.to_cbor()])
            else:
                self.dropped_bodies += 1
                return
        try:
            await self.network.publish(self.topic, data)
        except NetworkError as exc:
            log.warning("consensus message not sent", extra={"error": str(exc)})

    def _compact_proposal(self, message: ProposalMessage) -> bytes:
        """``[5, proposal, compact block]``."""
        block_id = message.proposal.block_id
        if self._pushed is None or self._pushed[0] != block_id:
            self._pushed = (block_id, CompactBlock.of(message.block).encode())
        return join_array([dumps(COMPACT_PROPOSAL), dumps(message.proposal.to_cbor()), self._pushed[1]])

    async def _push(self, proposal: Proposal, data: bytes) -> None:
        """Send ``data``, ``proposal`` compact, to up to ``PUSH_PEERS`` peers, unless
        its block was pushed already (peers have it, or fetch it by id)."""
        if self._pushed_block == proposal.block_id:
            return
        self._pushed_block = proposal.block_id
        for peer in self.network.peers()[:PUSH_PEERS]:
            if await self.network.send(peer, self.push_protocol, data):
                self.pushes_sent += 1

    async def request_block(self, block_id: bytes) -> None:
        block = self._recent.get(block_id)
        if block is not None:
            await self._hand_over(block, None)
        elif self._nursery is not None and block_id not in self._fetching \
                and len(self._fetching) < MAX_FETCHES:
            self._fetching.add(block_id)
            self._nursery.start_soon(self._fetch, block_id, None, None)

    async def run(self, deliver: Deliver, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Hand peers' messages to ``deliver`` until cancelled."""
        self._deliver = deliver
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._read_pushes)
            task_status.started()
            async for gossip in self._messages:
                message = decode_gossip(gossip.data)
                if isinstance(message, Proposal):
                    await self._on_proposal(message, gossip.sender)
                elif isinstance(message, CompactProposal):
                    await self._on_proposal(message.proposal, gossip.sender, message.compact)
                else:
                    await deliver(message)

    async def _read_pushes(self) -> None:
        """Take the compact proposals peers push, checked as their gossip is."""
        async for push in self._pushes_in:
            try:
                message = decode_gossip(push.data)
            except DecodeError as exc:
                self.network.penalize(push.sender, INVALID_MESSAGE_PENALTY, f"bad compact proposal: {exc}")
                continue
            if not isinstance(message, CompactProposal):
                self.network.penalize(push.sender, INVALID_MESSAGE_PENALTY,
                                      "a push that is not a compact proposal")
                continue
            problem = self.blocks.compact_problem(message.compact, message.proposal.block_id)
            verdict = Validation.REJECT if problem is not None else await self.screen(message.proposal)
            if verdict is Validation.REJECT:
                self.network.penalize(push.sender, INVALID_MESSAGE_PENALTY,
                                      f"a pushed compact proposal refused: {problem or 'its proposal'}")
            elif verdict is Validation.ACCEPT:
                self.pushes_used += message.proposal.block_id not in self._recent
                await self._on_proposal(message.proposal, push.sender, message.compact)

    async def _on_proposal(self, proposal: Proposal, sender: PeerId, compact: CompactBlock | None = None
                           ) -> None:
        block_id = proposal.block_id
        block = self._recent.get(block_id)
        if block is not None:
            await self._hand_over(block, proposal)
        elif block_id in self._fetching:
            if compact is not None and block_id not in self._pushed_here:
                self._pushed_here[block_id] = (sender, compact)
                self._push_came.setdefault(block_id, trio.Event()).set()
            waiting = self._waiting.setdefault(block_id, [])
            if proposal not in waiting:
                waiting.append(proposal)
        elif len(self._fetching) >= MAX_FETCHES:
            log.info("block fetch deferred: too many under way", extra={"block_id": block_id.hex()})
        else:
            assert self._nursery is not None
            self._fetching.add(block_id)
            self._nursery.start_soon(self._fetch, block_id, sender, proposal, compact)

    async def _fetch(self, block_id: bytes, first: PeerId | None, proposal: Proposal | None,
                     compact: CompactBlock | None = None) -> None:
        """Rebuild ``block_id`` from ``compact`` (its missing txs from ``first``), or fetch
        it (from ``first``, then others; the caller has put it in ``_fetching``), and
        deliver it: with ``proposal`` and any proposal of it that came meanwhile, else as a
        body."""
        try:
            pushed = None
            if compact is not None and first is not None:
                pushed = await self._rebuild(first, block_id, compact)
                if pushed is not None:
                    log.debug("block rebuilt", extra={"block_id": block_id.hex(), "txs": len(pushed.txs),
                                                      "pushed": True})
            peers = ([first] if first else []) + [p for p in self.network.peers() if p != first]
            wait_s = PUSH_WAIT_S if proposal is not None and compact is None else 0.0
            for peer in peers[:FETCH_PEERS]:
                try:
                    block = pushed if pushed is not None else await self._get(peer, block_id, wait_s)
                    wait_s = 0.0
                except NetworkError as exc:
                    log.info("block fetch failed", extra={"peer": peer, "error": str(exc)})
                    continue
                if block is not None:
                    self._recent[block_id] = block
                    while len(self._recent) > RECENT_BLOCKS:
                        self._recent.popitem(last=False)
                    self._fetching.discard(block_id)
                    for waiting in dict.fromkeys([proposal, *self._waiting.pop(block_id, [])]):
                        await self._hand_over(block, waiting)
                    return
        finally:
            self._fetching.discard(block_id)
            self._waiting.pop(block_id, None)
            self._pushed_here.pop(block_id, None)
            self._push_came.pop(block_id, None)

    async def _get(self, peer: PeerId, block_id: bytes, wait_s: float) -> Block | None:
        """Block ``block_id``: rebuilt from its compact form, pushed or else from
        ``peer`` (see :meth:`_compact`); else whole from ``peer``."""
        started = trio.current_time()
        pushed = await self._compact(peer, block_id, wait_s)
        if pushed is not None:
            source, compact = pushed
            fetched, found = trio.current_time(), self.txs_found
            block = await self._rebuild(source, block_id, compact)
            if block is not None:
                log.debug("block rebuilt", extra={"block_id": block_id.hex(), "txs": len(block.txs),
                                                  "missing": len(block.txs) - (self.txs_found - found),
                                                  "compact_s": round(fetched - started, 3),
                                                  "rebuild_s": round(trio.current_time() - fetched, 3),
                                                  "from": source})
                return block
        self.whole_fetches += 1
        return await self.blocks.fetch_block(peer, block_id)

    async def _compact(self, peer: PeerId, block_id: bytes, wait_s: float
                       ) -> tuple[PeerId, CompactBlock] | None:
        """Block ``block_id`` compact, with the peer that has it: the first of a push
        (waited for ``wait_s`` alone) and ``peer``'s answer; None if neither comes."""
        got: tuple[PeerId, CompactBlock] | None = None
        came = self._push_came.setdefault(block_id, trio.Event())

        async def pushed(done: trio.CancelScope) -> None:
            nonlocal got
            await came.wait()
            got = self._pushed_here.get(block_id)
            done.cancel()

        async def fetched(done: trio.CancelScope) -> None:
            nonlocal got
            await trio.sleep(wait_s)
            try:
                compact = await self.blocks.fetch_compact(peer, block_id)
            except NetworkError as exc:
                log.info("compact block fetch failed", extra={"peer": peer, "error": str(exc)})
                compact = None
            got = None if compact is None else (peer, compact)
            done.cancel()

        async with trio.open_nursery() as race:
            race.start_soon(pushed, race.cancel_scope)
            race.start_soon(fetched, race.cancel_scope)
        return got

    async def _rebuild(self, peer: PeerId, block_id: bytes, compact: CompactBlock) -> Block | None:
        """``compact``'s block, its txs from this node or, those it lacks, from ``peer``;
        None if ``peer`` does not serve them or they are not the block's."""
        ids = compact.tx_ids
        found = [self.lookup(i) for i in ids]
        missing = {i: ids[i] for i, entry in enumerate(found) if entry is None}
        self.txs_named += len(ids)
        self.txs_found += len(ids) - len(missing)
        if missing:
            try:
                fetched = await self.blocks.fetch_txs(peer, block_id, missing)
            except NetworkError as exc:
                log.info("block txs fetch failed", extra={"peer": peer, "error": str(exc)})
                return None
            if fetched is None:
                return None
            for i, tx in zip(sorted(missing), fetched, strict=True):
                found[i] = (tx_hash(tx), tx)
        entries = [entry for entry in found if entry is not None]
        txs, hashes = [tx for _, tx in entries], [h for h, _ in entries]
        block = await trio.to_thread.run_sync(compact.rebuilt, txs, hashes)
        if block is None:
            log.info("a rebuilt block is not the one proposed: fetching it whole",
                     extra={"block_id": block_id.hex()})
        return block

    async def _hand_over(self, block: Block, proposal: Proposal | None) -> None:
        assert self._deliver is not None  # set before any fetch starts
        await self._deliver(BlockMessage(block) if proposal is None else ProposalMessage(proposal, block))
