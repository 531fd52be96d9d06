"""State sync (§11.4): how a node with no block joins a long-running chain in seconds,
from a peer's snapshot, verified, without executing the blocks before it.

1. **Trust.** With ``trust_height`` and ``trust_hash``, the light block of
   ``trust_height`` from a peer whose header hashes to ``trust_hash`` is the anchor;
   without them, the genesis validator set is. Either is used only while younger than
   ``trust_period`` (its signers may have unbonded since): an older genesis refuses
   state sync at once (``trust_height`` and ``trust_hash`` are then required), an older
   trusted header stops it when found, and an anchor that ages past it while in use
   stops it then.
2. **Snapshots.** Every connected peer whose height is known (its status) is asked for
   its snapshots; one listed at or above that height is ignored (its next header is not
   made yet), and one above it costs the peer ``LISTED_ABOVE_HEIGHT_PENALTY``. The most
   recent one above the trusted height (most holders first among equals) is tried
   first; one whose header or manifest could not be verified is not tried again.
3. **The header.** The header of ``h + 1`` (its ``app_hash`` is the root of the state
   after ``h``, §4.5) is verified light-client style from the anchor: one light block
   per validator-set span between them (:func:`chain.lightblock.span_ends`), each signed
   by the set the previous one named. Each span end is verified once and kept for every
   later candidate and round. A peer that serves a light block whose header names
   another set is banned, before any of its signatures is checked.
4. **The state.** The manifest is fetched from a holder and must hash to the snapshot's
   descriptor and to that ``app_hash``; the chunks are fetched from the holders,
   ``CHUNK_FETCHERS`` at a time, each verified against the manifest before it is
   written (``storage/restore.py``). A holder that serves a chunk that fails is banned
   and the chunk is asked of another.
5. **The anchor.** Block ``h`` (whose id header ``h + 1`` names) with a commit that
   finalizes it for the restored set of ``h``, and the proposer priorities of ``h``,
   recomputed from the restored state's validator sets (every set since genesis is
   kept in the state, §6.5, and the priorities of a height are a function of the sets
   of the heights up to it, §7.4), go into the store's last restore batch. The node then
   block-syncs from ``h + 1``.

A node whose store has blocks skips all of this and block-syncs as usual.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from chain.commits import validators_hash, verify_commit
from chain.errors import BizraError, InvalidBlock, NetworkError
from chain.ledger import Ledger, StateReader
from chain.lightblock import LightBlock, span_ends
from chain.params import ChainConfig
from chain.snapshot import FORMAT, Descriptor, Manifest
from chain.types import Block, Commit
from chain.validatorsets import set_start_height, validator_set_at
from consensus.proposer import Priorities, Voter, initial, next_height, voters
from node.chainstate import NodeChain, encode_priorities
from node.config import ConfigError, StateSyncConfig
from p2p.blocks import BlockExchange
from p2p.network import INVALID_MESSAGE_PENALTY, Network
from p2p.peers import PeerId
from p2p.snapshots import SnapshotExchange
from storage.restore import StateRestore

log = logging.getLogger(__name__)

CHUNK_FETCHERS = 4
"""Chunk requests under way at once (each to a holder chosen in turn)."""
CHUNK_REQUESTS_PER_PEER_S = 40
"""Chunk requests a holder is sent a second at most: below the 50 a node takes from a
peer (``REQUESTS_PER_S``, ``p2p/host.py``), beyond which it resets the streams."""
MAX_FAILURES = 3
"""Failed chunk requests (refused, reset, late) after which a holder is dropped."""
RETRY_S = 2.0
"""How long state sync waits before looking for snapshots again, when none would do."""
PEER_WAIT_S = 0.1
"""How often state sync looks for a first peer whose height it knows (one it can ask)."""
LIST_TIMEOUT_S = 5.0
"""How long a peer has to list its snapshots."""
LISTED_ABOVE_HEIGHT_PENALTY = 5.0
"""What a peer's list costs it when it holds snapshots above the height the peer reports
(a quarter of ``INVALID_MESSAGE_PENALTY``: its status may have been a little late)."""


class StateSyncError(BizraError):
    """State sync cannot go on as configured (the trusted header or the genesis is older
    than the trust period); the message names the settings to change."""


class _Failed(Exception):
    """This snapshot could not be restored (no peer served what it needed); another may."""


@dataclass
class Candidate:
    """A snapshot and the peers that listed it (each once, however often it did)."""

    descriptor: Descriptor
    holders: set[PeerId] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Anchor:
    """What state sync trusts: the validator set (by hash) of ``height``'s span, as of
    ``time_ns`` (the trusted header's time, or the genesis time)."""

    height: int
    set_hash: bytes
    time_ns: int


class StateSync:
    """See the module docstring. ``peer_heights`` gives the connected peers' heights as
    their status says; ``clock_ns`` is the wall clock (trust period).
    StateSyncError at once if it would trust a genesis older than the trust period;
    ConfigError if ``trust_height`` is below the chain's initial height."""

    def __init__(self, chain: NodeChain, exchange: SnapshotExchange, blocks: BlockExchange, network: Network,
                 peer_heights: Callable[[], dict[PeerId, int]], settings: StateSyncConfig,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.chain = chain
        self.exchange = exchange
        self.blocks = blocks
        self.network = network
        self.peer_heights = peer_heights
        self.settings = settings
        self.clock_ns = clock_ns
        self.restored_height: int | None = None
        self._anchor: Anchor | None = None
        self._next_sets: dict[int, bytes] = {}
        """Verified span ends from the anchor: the set hash each names for the next span."""
        self._failed: set[Descriptor] = set()
        """Snapshots whose header or manifest could not be verified: not tried again."""
        if not settings.trust_height:
            self._check_age(chain.genesis.genesis_time_ns, None)
        elif settings.trust_height < chain.config.initial_height:
            raise ConfigError(f"statesync.trust_height: {settings.trust_height} is below the chain's initial "
                              f"height {chain.config.initial_height}: take a height of this chain")

    @property
    def config(self) -> ChainConfig:
        return self.chain.config

    async def run(self) -> None:
        """Restore the state from a peer's snapshot, unless the store has blocks
        already; returns once restored (the store is then at the snapshot's height)."""
        store = self.chain.store
        if not store.at_genesis:
            log.info("state sync skipped: the store has blocks, block sync goes on from them",
                     extra={"height": store.height})
            return
        log.info("state sync: looking for snapshots")
        while True:
            # Peers are asked once their status says their height (see discover).
            while not self.peer_heights().keys() & set(self.network.peers()):
                await trio.sleep(PEER_WAIT_S)
            candidates = await self.discover()
            for candidate in candidates:
                try:
                    await self.restore(candidate)
                    return
                except _Failed as exc:
                    log.warning("state sync: snapshot not restored",
                                extra={"height": candidate.descriptor.height, "error": str(exc)})
            if not candidates:
                log.info("state sync: no usable snapshot yet", extra={"peers": len(self.network.peers())})
            await trio.sleep(RETRY_S)

    async def discover(self) -> list[Candidate]:
        """The snapshots connected peers list that this node could use, the most recent
        first (and, among equals, the most widely held): each below its lister's height,
        and not one that failed verification before. A peer whose height is not known yet
        is not asked; one that lists snapshots above its height is penalized."""
        found: dict[Descriptor, Candidate] = {}
        anchor_height = self.settings.trust_height or self.config.initial_height
        heights = self.peer_heights()

        async def ask(peer: PeerId, peer_height: int) -> None:
            with trio.move_on_after(LIST_TIMEOUT_S):
                try:
                    listed = await self.exchange.list_snapshots(peer)
                except NetworkError:
                    return
                above = [d.height for d in listed if d.height > peer_height]
                if above:
                    self.network.penalize(peer, LISTED_ABOVE_HEIGHT_PENALTY,
                                          f"snapshots listed at {above}, above its height {peer_height}")
                for descriptor in listed:
                    if descriptor.format == FORMAT and descriptor.height + 1 >= anchor_height \
                            and self.config.initial_height <= descriptor.height < peer_height \
                            and descriptor not in self._failed:
                        found.setdefault(descriptor, Candidate(descriptor)).holders.add(peer)

        async with trio.open_nursery() as nursery:
            for peer in self.network.peers():
                if peer in heights:
                    nursery.start_soon(ask, peer, heights[peer])
        return sorted(found.values(), key=lambda c: (-c.descriptor.height, -len(c.holders)))

    # --- trust ---------------------------------------------------------------------

    async def anchor(self) -> Anchor:
        """The trusted starting point (see the module docstring), checked against the
        trust period at every use; _Failed if no peer serves the trusted header,
        StateSyncError if the anchor is older than the trust period."""
        if self._anchor is None:
            self._anchor = await self._find_anchor()
        self._check_age(self._anchor.time_ns, self.settings.trust_height or None)
        return self._anchor

    async def _find_anchor(self) -> Anchor:
        settings = self.settings
        if not settings.trust_height:
            height = self.config.initial_height
            genesis_time_ns = self.chain.genesis.genesis_time_ns
            return Anchor(height, validators_hash(self.chain.members(height)), genesis_time_ns)
        trust_hash = bytes.fromhex(settings.trust_hash)
        for peer in self._peers():
            block = await self._light_block_from(peer, settings.trust_height)
            if block is None:
                continue
            if block.header.block_id() != trust_hash:
                log.error("state sync: a peer's block at the trust height is not the trusted one",
                          extra={"peer": peer, "trust_height": settings.trust_height,
                                 "block_id": block.header.block_id().hex(),
                                 "trust_hash": settings.trust_hash})
                continue
            return Anchor(settings.trust_height, block.header.validators_hash, block.header.time_ns)
        raise _Failed(f"no peer serves the block of height {settings.trust_height} with the trusted hash "
                      f"{settings.trust_hash}")

    def _check_age(self, time_ns: int, trust_height: int | None) -> None:
        """StateSyncError unless ``time_ns`` (of the trusted header at ``trust_height``,
        or of the genesis for None) is within the trust period of now."""
        settings = self.settings
        age_s = (self.clock_ns() - time_ns) / 1e9
        if age_s <= settings.trust_period_s:
            return
        if trust_height is None:
            raise StateSyncError(
                f"state sync: the genesis is {age_s / 3600:.1f} h old, more than statesync.trust_period "
                f"({settings.trust_period}), and its validators may have unbonded since: set "
                "statesync.trust_height and statesync.trust_hash (a recent height and its block id, "
                "from a node one trusts)")
        raise StateSyncError(
            f"the trusted header (height {trust_height}) is {age_s / 3600:.1f} h old, "
            f"more than statesync.trust_period ({settings.trust_period}): take a recent trust "
            "height and hash")

    async def verified_header(self, height: int) -> LightBlock:
        """The light block of ``height``, verified from the anchor (module docstring);
        the span ends on the way are fetched and verified only the first time."""
        anchor = await self.anchor()
        set_hash = anchor.set_hash
        for end in span_ends(anchor.height, height, self.config):
            if end not in self._next_sets:
                span_end = await self._trusted_light_block(end, set_hash)
                self._next_sets[end] = span_end.header.next_validators_hash
            set_hash = self._next_sets[end]
        return await self._trusted_light_block(height, set_hash)

    async def _trusted_light_block(self, height: int, set_hash: bytes) -> LightBlock:
        """The light block of ``height`` from the first peer that serves one signed by the
        set of ``set_hash``; a peer that serves one whose header names another set is
        banned, before any of its signatures is checked."""
        for peer in self._peers():
            block = await self._light_block_from(peer, height, set_hash)
            if block is not None:
                return block
        raise _Failed(f"no peer serves a verifiable header of height {height}")

    async def _light_block_from(self, peer: PeerId, height: int,
                                set_hash: bytes | None = None) -> LightBlock | None:
        try:
            return await self.exchange.fetch_light_block(peer, height, set_hash)
        except NetworkError as exc:
            log.info("state sync: light block request failed", extra={"peer": peer, "height": height,
                                                                       "error": str(exc)})
            return None

    def _peers(self) -> list[PeerId]:
        peers = self.network.peers()
        random.shuffle(peers)
        return peers

    # --- restoring -----------------------------------------------------------------

    async def restore(self, candidate: Candidate) -> None:
        """Restore the snapshot of ``candidate`` into the store; _Failed if its peers do
        not serve what it takes (and the snapshot is not tried again if its header or
        manifest could not be verified)."""
        descriptor = candidate.descriptor
        height = descriptor.height
        await self.anchor()
        holders = list(candidate.holders)
        try:
            header = (await self.verified_header(height + 1)).header
            log.info("state sync: snapshot chosen", extra={
                "height": height, "chunks": descriptor.chunks, "holders": len(candidate.holders),
                "app_hash": header.app_hash.hex()})
            manifest = await self._manifest(descriptor, header.app_hash, holders)
        except _Failed:
            self._failed.add(descriptor)
            raise
        store = self.chain.store
        restore = await trio.to_thread.run_sync(store.begin_restore, height, header.app_hash)
        await self._chunks(manifest, restore, holders)
        block, commit = await self._anchor_block(height, header.last_block_id, restore.reader)
        priorities = await trio.to_thread.run_sync(priorities_at, restore.reader, height, self.config)
        await trio.to_thread.run_sync(store.finish_restore, restore, block, commit,
                                      encode_priorities(priorities))
        self.restored_height = height
        log.info("state sync done", extra={"height": height, "app_hash": store.app_hash.hex()})

    async def _manifest(self, descriptor: Descriptor, app_hash: bytes, holders: list[PeerId]) -> Manifest:
        for peer in list(holders):
            try:
                manifest = await self.exchange.fetch_manifest(peer, descriptor, app_hash)
            except NetworkError as exc:
                log.warning("state sync: manifest refused", extra={"peer": peer, "error": str(exc)})
                manifest = None
            if manifest is not None:
                return manifest
            holders.remove(peer)
        raise _Failed(f"no peer served the manifest of height {descriptor.height}")

    async def _chunks(self, manifest: Manifest, restore: StateRestore, holders: list[PeerId]) -> None:
        """Fetch, verify and write every chunk, from ``holders`` in turn, each asked at
        most ``CHUNK_REQUESTS_PER_PEER_S`` times a second. A holder is dropped when it
        does not have a chunk, fails ``MAX_FAILURES`` requests, or is banned (the
        exchange bans one that serves a chunk that is not the state's)."""
        waiting = list(range(manifest.chunks))
        done = 0
        turn = 0
        failures: dict[PeerId, int] = {}
        next_slot: dict[PeerId, float] = {}
        write = trio.Lock()

        def drop(peer: PeerId) -> None:
            if peer in holders:
                holders.remove(peer)

        async def fetcher() -> None:
            nonlocal done, turn
            while waiting and holders:
                index = waiting.pop(0)
                peer = holders[turn % len(holders)]
                turn += 1
                now = trio.current_time()
                slot = max(now, next_slot.get(peer, now))
                next_slot[peer] = slot + 1 / CHUNK_REQUESTS_PER_PEER_S
                await trio.sleep_until(slot)
                try:
                    pairs = await self.exchange.fetch_chunk(peer, manifest, index)
                except NetworkError as exc:
                    log.warning("state sync: chunk refused", extra={"peer": peer, "chunk": index,
                                                                    "error": str(exc)})
                    waiting.append(index)
                    failures[peer] = failures.get(peer, 0) + 1
                    if failures[peer] >= MAX_FAILURES or peer not in self.network.peers():
                        drop(peer)
                    continue
                if pairs is None:
                    waiting.append(index)
                    drop(peer)
                    continue
                async with write:
                    await trio.to_thread.run_sync(restore.apply_chunk, pairs)
                done += 1
                log.info("state sync: chunk applied", extra={"chunk": index, "done": done,
                                                             "chunks": manifest.chunks, "peer": peer})

        async with trio.open_nursery() as nursery:
            for _ in range(min(CHUNK_FETCHERS, manifest.chunks)):
                nursery.start_soon(fetcher)
        if done < manifest.chunks:
            raise _Failed(f"no peer left that serves the chunks of height {manifest.height} "
                          f"({done} of {manifest.chunks} written)")

    async def _anchor_block(self, height: int, block_id: bytes,
                            restored: StateReader) -> tuple[Block, Commit]:
        """Block ``height``, the one of ``block_id``, with a commit that finalizes it for
        the restored validator set of ``height``."""
        members = validator_set_at(Ledger(restored), height, self.config)
        for peer in self._peers():
            try:
                fetched = await self.blocks.fetch_blocks(peer, height, 1)
            except NetworkError:
                continue
            if not fetched:
                continue
            block, commit = fetched[0]
            if block.block_id() != block_id:
                self.network.penalize(peer, INVALID_MESSAGE_PENALTY, f"block {height} is not the chain's")
                continue
            try:
                await trio.to_thread.run_sync(verify_commit, self.config.chain_id, commit, members, height,
                                              block_id)
            except InvalidBlock as exc:
                self.network.penalize(peer, INVALID_MESSAGE_PENALTY, f"a commit that does not verify: {exc}")
                continue
            return block, commit
        raise _Failed(f"no peer served block {height} with a commit that verifies")


def priorities_at(state: StateReader, height: int, config: ChainConfig) -> Priorities:
    """The proposer priorities of ``height`` (§7.4) from the validator sets in ``state``:
    those of the first height, moved to each next height's set and stepped once, up to
    ``height``. Costs a proposer step per height, and no signature."""
    ledger = Ledger(state)
    sets: dict[int, list[Voter]] = {}

    def voters_of(h: int) -> list[Voter]:
        start = set_start_height(h, config)
        if start not in sets:
            sets[start] = voters(validator_set_at(ledger, h, config))
        return sets[start]

    priorities = initial(voters_of(config.initial_height))
    for h in range(config.initial_height + 1, height + 1):
        priorities = next_height(priorities, voters_of(h))
    return priorities
