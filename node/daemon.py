"""The node: its services started in order, each ready before the next, and stopped
together (docs/architecture.md, lifecycle): storage → chain state → p2p → mempool →
consensus → RPC.

On start the store is opened as it was left (every block whole or absent) and the
consensus driver replays its WAL for the height it was deciding, so a node killed at
any instant starts again where it was, without signing anything twice.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from hashlib import sha256

import trio

from chain.commits import commit_checks, require_valid
from chain.crypto import VerifiedCache, address_of
from chain.errors import BizraError, InvalidBlock, InvalidTx
from chain.genesis import Genesis
from chain.lightblock import LightBlock
from chain.params import ChainConfig
from chain.service import TaskStatus
from chain.snapshot import Descriptor
from chain.state import chain_config
from chain.transition import BlockOutcome
from chain.types import Block, CommitFlag, Proposal
from consensus.driver import ConsensusNetwork, Driver, Screened
from consensus.equivocation import Equivocator
from consensus.messages import PeerMessage, VoteMessage
from consensus.signer import FileSigner
from consensus.wal import Wal
from node.batch_verifier import BatchVerifier
from node.chainstate import NodeChain
from node.config import Config
from node.consensus_gossip import ConsensusGossip
from node.gcpauses import GcPauses
from node.home import Home
from node.looplag import LoopLag
from node.mempool import Mempool, MempoolFull
from node.metrics import Metrics
from node.networks import network
from node.rpc.events import EventBus
from node.rpc.methods import Methods
from node.rpc.server import RpcApp, run_server
from node.snapshotter import Snapshotter
from node.statesync import StateSync
from node.sync import BlockSync, SyncDisplay
from node.txintake import TxIntake
from node.verifier import ProcessVerifier
from node.view import Counters, Job
from p2p.blocks import Announcement, BlockExchange
from p2p.host import Libp2pNetwork
from p2p.network import Validation
from p2p.nodekey import load_or_create
from p2p.peering import PeerManager
from p2p.peers import PeerId
from p2p.snapshots import SnapshotExchange
from p2p.status import StatusService
from p2p.txgossip import TxGossip
from storage.snapshots import SnapshotStore
from storage.store import Store

log = logging.getLogger(__name__)

FALLEN_BEHIND = 1
BEHIND_CHECKS = 2
"""Consensus gives way to sync when peers are more than ``FALLEN_BEHIND`` blocks ahead
for this many checks a second apart. One block behind, consensus catches up by itself
(the commit a peer announces for the height being decided decides it); two behind, it
cannot: peers drop consensus messages more than a height away from theirs, so the node
would wait for votes that never come."""
ANNOUNCE_AGAIN_S = 2.0
"""The last block is announced again after this long without a new one."""
PENDING_BLOCKS = 2
"""Clients' txs are refused while the mempool holds more than this many blocks' worth."""
SCREENED = {Screened.VALID: Validation.ACCEPT, Screened.IRRELEVANT: Validation.IGNORE,
            Screened.FORGED: Validation.REJECT}
"""Gossip validation by the driver's verdict: a forged message costs its sender score."""
VERIFIED_ANNOUNCEMENTS = 64
"""Announcements whose commit verified, remembered so that announcing one again costs
no signature checks."""
BACKGROUND_JOBS = 1_024
"""Background jobs for clients (``broadcast_tx_async`` submissions, operators' dials)
waiting at most; past that they are refused."""
JOB_SLOTS = 64
"""Background jobs running at once at most."""


@dataclass(frozen=True, slots=True)
class InjectedFaults:
    """Faults a node can be started with, for fault tests only (hidden ``start`` flags):
    its clock off by ``clock_offset_ms``; as a validator, equivocating
    (:mod:`consensus.equivocation`)."""

    clock_offset_ms: int = 0
    equivocate: bool = False

    def clock_ns(self) -> int:
        return time.time_ns() + self.clock_offset_ms * 1_000_000


class Node:
    """One node, from its home and configuration, complete once constructed: its store
    open (as it was left: every block whole or absent), every service built. Run it once
    with ``await nursery.start(node.run)``; the store closes when ``run`` ends. It is the
    :class:`~node.view.NodeView` its RPC methods and metrics read."""

    def __init__(self, home: Home, config: Config, faults: InjectedFaults = InjectedFaults(),
                 sync_display: SyncDisplay | None = None) -> None:
        self.home = home
        self.config = config
        self.faults = faults
        self.genesis: Genesis
        self.genesis, self.genesis_hash = home.genesis()
        self.bootnodes = list(config.p2p.bootnodes)
        if config.network:
            public = network(config.network)
            public.check(home.genesis_file.read_bytes(), str(home.genesis_file))
            self.bootnodes += [b for b in public.bootnodes if b not in self.bootnodes]
        self.chain_id = self.genesis.chain_id
        self.chain_config: ChainConfig = chain_config(self.genesis)
        self.validator_key = home.validator_key()
        node_key = load_or_create(home.node_key_file)
        self.counters = Counters()
        self.loop_lag = LoopLag()
        self.gc_pauses = GcPauses()
        self.driver: Driver | None = None
        """Consensus, while it runs (not while the node syncs)."""
        self._announced: dict[PeerId, int] = {}
        """The highest height each peer announced."""
        self._verified_announcements: OrderedDict[bytes, None] = OrderedDict()
        """Hashes of announcements whose commit verified (the latest few)."""
        self.signatures = BatchVerifier()
        """Gossip validation's signature checks: batched, off the event loop."""
        self._tx_watchers: dict[bytes, trio.Event] = {}
        self._committed_send, self._committed = trio.open_memory_channel[tuple[Block, BlockOutcome]](64)
        self._jobs_send, self._jobs = trio.open_memory_channel[Job](BACKGROUND_JOBS)

        self.store = store = Store.open_leveldb(home.store_dir, self.genesis, self.genesis_hash)
        try:
            self.verified = VerifiedCache()
            self.tx_signatures = ProcessVerifier()
            """Txs' signature checks (blocks, sync, client batches): worker processes."""
            self.mempool = Mempool(self.chain_config, store.state, config.mempool, self.verified,
                                   self.tx_signatures)
            self.chain = NodeChain(store, self.genesis, self.chain_config, self.mempool, self.verified,
                                   self.tx_signatures, keep_heights=config.storage.keep_heights,
                                   address=None if self.validator_key is None
                                   else address_of(self.validator_key.public_key))
            self.chain.listeners.append(self._on_commit)
            self.events = EventBus(self.chain.members)
            self.network = Libp2pNetwork(node_key.seed, host=config.p2p.host, port=config.p2p.port)
            self.status = StatusService(self.network, self.chain_id, self.genesis_hash, lambda: store.height,
                                        self.advertised_addresses, lambda: store.blocks.base)
            self.peers = PeerManager(self.network, self.status, self.bootnodes,
                                     target=config.p2p.target_peers, maximum=config.p2p.max_peers)
            self.intake = TxIntake(self.mempool, self.chain_config.params, self.network.penalize,
                                   self.counters)
            self.txs = TxGossip(self.network, self.chain_id, self.intake.check, room=self.mempool.has_room,
                                keep=self.mempool.keep)
            source = _BlockSource(self)
            self.blocks = BlockExchange(self.network, self.chain_id, source, self._check_announcement,
                                        max_block_bytes=self.chain_config.params.max_block_bytes,
                                        known=source.known_block)
            self.consensus_net = ConsensusGossip(self.network, self.chain_id, self.blocks,
                                                 self._screen_consensus, self.mempool.by_short_id)
            self._signer: FileSigner | None = None
            self._address: bytes | None = None
            if self.validator_key is not None:
                self._signer = FileSigner(self.validator_key, home.signer_state_file, self.chain_id)
                self._address = address_of(self.validator_key.public_key)
            home.wal_dir.parent.mkdir(parents=True, exist_ok=True)
            self.wal = Wal.open(home.wal_dir, start_height=store.height)
            self.sync = BlockSync(self.chain, self.blocks, self.network, self.peer_heights, sync_display,
                                  peer_bases=self.peer_bases)
            statesync = config.statesync
            self.snapshots = SnapshotStore(home.snapshots_dir, statesync.snapshot_keep_recent)
            self.snapshot_exchange = SnapshotExchange(self.network, self.chain_id, _SnapshotSource(self))
            self.snapshotter: Snapshotter | None = None
            if statesync.snapshot_interval:
                self.snapshotter = Snapshotter(store, self.snapshots, statesync.snapshot_interval,
                                               self.genesis.initial_height)
                self.chain.listeners.append(self.snapshotter.on_commit)
            self.statesync = (StateSync(self.chain, self.snapshot_exchange, self.blocks, self.network,
                                        self.peer_heights, statesync) if statesync.enable else None)
            self.metrics = Metrics(self)
            self.rpc = RpcApp(Methods(self), config.rpc, self.metrics, self.not_ready, self.events,
                              home.rpc_token())
        except BaseException:
            store.close()
            raise

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Start the services in order, each ready before the next (docs/architecture.md,
        lifecycle): the event-loop probe, p2p, tx gossip, block exchange, consensus (or
        sync while behind), RPC. Ready once RPC listens; runs until cancelled, then closes
        the store."""
        config, store = self.config, self.store
        self.gc_pauses.start()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.loop_lag.run)
                await nursery.start(self.signatures.run)
                await nursery.start(self.network.run)
                await nursery.start(self.status.run)
                await nursery.start(self.peers.run)
                await nursery.start(self.txs.run)
                await nursery.start(self.blocks.run)
                nursery.start_soon(self.intake.run, self.txs.received)
                nursery.start_soon(self._announce_blocks)
                nursery.start_soon(self._note_announcements)
                nursery.start_soon(self._run_jobs)
                if self.snapshotter is not None:
                    await nursery.start(self.snapshotter.run)
                await nursery.start(self.consensus_net.run, self._to_driver)
                await nursery.start(self._consensus)
                await nursery.start(run_server, self.rpc, config.rpc.host, config.rpc.port)
                log.info("node started", extra={
                    "chain_id": self.chain_id, "height": store.height, "peer_id": self.network.local_id,
                    "validator": self._address.hex() if self._address else None,
                    "p2p": self.network.listen_addrs()})
                self.gc_pauses.freeze()
                task_status.started()
        finally:
            self.gc_pauses.stop()
            self.close()

    def close(self) -> None:
        """Release what the constructor opened (the store): for a node that is not run,
        as ``run`` does it when it ends."""
        self.tx_signatures.close()
        self.store.close()

    def advertised_addresses(self) -> list[str]:
        """Where peers can reach this node: the configured external addresses, or the
        listening ones (not the unspecified 0.0.0.0)."""
        suffix = f"/p2p/{self.network.local_id}"
        external = [a if a.endswith(suffix) else a + suffix for a in self.config.p2p.external_addresses]
        return external or [a for a in self.network.listen_addrs() if "/ip4/0.0.0.0/" not in a]

    # --- txs -----------------------------------------------------------------------

    async def submit_tx(self, raw: bytes) -> bytes:
        """Admit a client's tx and gossip it; its hash. InvalidTx or MempoolFull (also
        while the node is too busy: see :meth:`busy`)."""
        (result,) = await self.submit_txs([raw])
        if isinstance(result, BizraError):
            raise result
        return result

    async def submit_txs(self, raws: list[bytes]) -> list[bytes | InvalidTx | MempoolFull]:
        """Admit a client's txs together (one signature batch) and gossip those admitted;
        for each, its hash or why it was refused (all MempoolFull while the node is busy)."""
        busy = self.busy()
        if busy is not None:
            self.counters.txs_shed += len(raws)
            return [MempoolFull(busy) for _ in raws]
        results = await self.mempool.add_many(raws)
        for raw, result in zip(raws, results, strict=True):
            if isinstance(result, bytes):
                await self.txs.submit(raw)
        return results

    def busy(self) -> str | None:
        """Why clients' txs are refused now, or None. The node takes no new txs from
        clients while its mempool holds more than the next ``PENDING_BLOCKS`` blocks
        can carry (at the size blocks get decided at now: see
        :meth:`~node.chainstate.NodeChain.proposal_limit`), or while its event loop
        runs later than ``mempool.max_loop_lag_ms``: so that the work it has (its
        peers' txs, votes, blocks) gets done, blocks keep coming, and a client learns
        at once that its tx was not taken rather than waiting for one that never comes."""
        carried = PENDING_BLOCKS * self.chain.proposal_limit(0)
        if self.mempool.bytes > carried:
            return (f"the node is busy: its mempool holds {self.mempool.bytes:,} bytes of txs, more than "
                    f"the next {PENDING_BLOCKS} blocks carry; retry later")
        limit = self.config.mempool.max_loop_lag_ms
        lag = self.loop_lag.seconds * 1000
        if limit and lag > limit:
            return (f"the node is busy (its event loop runs {lag:.0f} ms late, over "
                    f"mempool.max_loop_lag_ms = {limit}); retry later")
        return None

    def start_soon(self, job: Job) -> None:
        """Run ``job`` in the background (see :meth:`node.view.NodeView.start_soon`): at
        most ``BACKGROUND_JOBS`` wait, and ``JOB_SLOTS`` run at once."""
        try:
            self._jobs_send.send_nowait(job)
        except trio.WouldBlock:
            raise MempoolFull(f"the node is busy: {BACKGROUND_JOBS} background jobs wait already; "
                              "retry later") from None

    async def _run_jobs(self) -> None:
        slots = trio.Semaphore(JOB_SLOTS)

        async def run(job: Job) -> None:
            try:
                await job()
            finally:
                slots.release()

        async with trio.open_nursery() as nursery:
            async for job in self._jobs:
                await slots.acquire()
                nursery.start_soon(run, job)

    def watch_tx(self, h: bytes) -> trio.Event:
        """An event set when the tx of hash ``h`` is committed (``unwatch_tx`` after)."""
        return self._tx_watchers.setdefault(h, trio.Event())

    def unwatch_tx(self, h: bytes) -> None:
        self._tx_watchers.pop(h, None)

    def is_validator(self) -> bool:
        """Whether this node's key is in the validator set of the next height."""
        key = self.validator_key
        members = self.chain.members(self.store.height + 1)
        return key is not None and any(m.pubkey == key.public_key for m in members)

    def not_ready(self) -> str | None:
        """Why the node should not get traffic yet (``/ready``), or None."""
        if self.catching_up():
            return f"catching up: at height {self.store.height}, peers are ahead"
        if not self.network.peers() and len(self.chain.members(self.store.height + 1)) > 1:
            return "no peers"
        return None

    def catching_up(self) -> bool:
        """Whether the node is syncing, or peers are more than one block ahead of it."""
        return self.sync.progress is not None or self.sync.behind()

    def peer_heights(self) -> dict[PeerId, int]:
        """Each connected peer's height, as its status or its last announcement says."""
        connected = set(self.network.peers())
        heights = {p: s.height for p, s in self.status.peers.items() if p in connected}
        for peer, height in self._announced.items():
            if peer in connected:
                heights[peer] = max(height, heights.get(peer, 0))
        return heights

    def peer_bases(self) -> dict[PeerId, int]:
        """The lowest height each peer serves blocks from, as its status says (a peer of
        the first version of the handshake says nothing: 0, from the chain's first)."""
        return {p: s.base for p, s in self.status.peers.items()}

    # --- consensus and sync ----------------------------------------------------------

    async def _consensus(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Sync while behind, consensus otherwise; back to syncing whenever the node
        falls behind (peers more than ``FALLEN_BEHIND`` blocks ahead for a while)."""
        started = False
        if self.statesync is not None:
            await self.statesync.run()
            self.mempool.update([])  # what was admitted meanwhile, checked against the restored state
            # The heights peers told before the restore are old now: block sync aims at theirs.
            async with trio.open_nursery() as nursery:
                for peer in self.network.peers():
                    nursery.start_soon(self.status.check, peer)
        while True:
            await self.sync.catch_up()
            outbound: ConsensusNetwork = self.consensus_net
            if self.faults.equivocate and self.validator_key is not None:
                outbound = Equivocator(outbound, self.validator_key, self.chain_id)
            self.driver = Driver(self.chain, outbound, self.wal, self._signer, self._address,
                                 self.chain_id, self.genesis.params, self.faults.clock_ns)
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.driver.run)
                    if not started:
                        started = True
                        task_status.started()
                    await self._until_behind()
                    nursery.cancel_scope.cancel()
            finally:
                self.driver = None
            # at debug: sync's "catching up" line, next, says as much to the operator
            log.debug("behind the network: syncing", extra={"height": self.store.height,
                                                            "target": self.sync.target()})

    async def _until_behind(self) -> None:
        """Return once peers have reported heights more than ``FALLEN_BEHIND`` above
        this node's for ``BEHIND_CHECKS`` seconds, and one of them proved it (a claim
        alone does not stop consensus: :meth:`~node.sync.BlockSync.confirm_behind`)."""
        checks = 0
        while True:
            await trio.sleep(1)
            checks = checks + 1 if self.sync.target() > self.store.height + FALLEN_BEHIND else 0
            if checks >= BEHIND_CHECKS:
                if await self.sync.confirm_behind():
                    return
                checks = 0

    async def _screen_consensus(self, message: PeerMessage | Proposal) -> Validation:
        """Gossip validation of a consensus message: the driver's screening, then the
        signature it leaves to check, in a batch off the loop (ignored, not forwarded,
        while the verifier is busy); while the node syncs there is no driver, and
        nothing to check the message against."""
        driver = self.driver
        screened = driver.screen(message) if driver is not None else Screened.IRRELEVANT
        if isinstance(screened, Screened):
            return SCREENED[screened]
        assert driver is not None
        verdicts = await self.signatures.verify([screened])
        if verdicts is None:
            return Validation.IGNORE
        if not verdicts[0]:
            return Validation.REJECT
        driver.vouch(screened)
        return Validation.ACCEPT

    async def _to_driver(self, message: PeerMessage) -> None:
        driver = self.driver
        if driver is not None:
            await driver.deliver(message)

    # --- blocks --------------------------------------------------------------------

    def _on_commit(self, block: Block, outcome: BlockOutcome) -> None:
        self.mempool.update(outcome.tx_hashes)
        self.events.publish(block, outcome, self.store.app_hash)
        for h in outcome.tx_hashes:
            watcher = self._tx_watchers.get(h)
            if watcher is not None:
                watcher.set()
        now = time.monotonic()
        if self.counters.last_block_time:
            self.counters.block_intervals = [*self.counters.block_intervals[-99:],
                                             now - self.counters.last_block_time]
        self.counters.last_block_time = now
        self.counters.blocks_committed += 1
        self.counters.txs_committed += len(block.txs)
        try:
            self._committed_send.send_nowait((block, outcome))
        except trio.WouldBlock:
            log.warning("block announcement skipped: the announcer is behind",
                        extra={"height": block.header.height})

    async def _announce_blocks(self) -> None:
        """Announce each block this node commits; and the last one again while no new
        one comes, every ``ANNOUNCE_AGAIN_S``: a node that missed the announcements (cut
        off, paused) learns it is behind and syncs, instead of waiting for the next
        block, which may need its vote. Blocks applied by block sync are not announced:
        the peers they came from are ahead, and the last one is announced again once the
        sync ends."""
        last: Block | None = None
        while True:
            with trio.move_on_after(ANNOUNCE_AGAIN_S):
                last, _ = await self._committed.receive()
            if last is None or self.sync.progress is not None:
                continue
            height = last.header.height
            commit = self.store.blocks.commit(height)
            if commit is None:
                continue
            try:
                await self.blocks.announce(last.header, commit)
            except BizraError as exc:
                log.warning("block not announced", extra={"height": height, "error": str(exc)})

    async def _check_announcement(self, peer: PeerId, announcement: Announcement) -> Validation:
        """Gossip validation of a block announcement: above this node's height, it is
        forwarded and believed only once its commit verifies against the validator set
        of its height (REJECT: its sender loses score; the signatures are checked in a
        batch off the loop, and while the verifier is busy the announcement is ignored).
        One whose set this node does not know yet (far ahead) is ignored: peers' status
        tells it how far they are, and block sync trusts only the heights a peer serves."""
        header = announcement.header
        if header.height <= self.store.height:
            return Validation.IGNORE
        seen = sha256(announcement.encode()).digest()
        if seen in self._verified_announcements:
            return Validation.ACCEPT
        block_id = header.block_id()
        try:
            members = self.chain.members(header.height)
        except InvalidBlock:
            return Validation.IGNORE
        try:
            checks = commit_checks(self.chain_id, announcement.commit, members, header.height, block_id)
            verdicts = await self.signatures.verify(checks)
            if verdicts is None:
                return Validation.IGNORE
            require_valid(checks, verdicts)
        except InvalidBlock as exc:
            log.info("block announcement refused", extra={"peer": peer, "height": header.height,
                                                          "error": str(exc)})
            return Validation.REJECT
        self._verified_announcements[seen] = None
        while len(self._verified_announcements) > VERIFIED_ANNOUNCEMENTS:
            self._verified_announcements.popitem(last=False)
        return Validation.ACCEPT

    async def _note_announcements(self) -> None:
        """Peers' heights from their announcements; and when a peer announces the block
        this node is still deciding, its commit's precommits go to consensus (as
        CometBFT's consensus reactor gossips a commit to a peer that lags): a node that
        missed the votes, a full node above all, which never sends any and so is never
        helped by its peers, decides the height at once instead of falling behind."""
        async for peer, announcement in self.blocks.announced:
            height = announcement.header.height
            self._announced[peer] = max(self._announced.get(peer, 0), height)
            driver = self.driver
            if driver is None or height != self.store.height + 1:
                continue
            commit = announcement.commit
            members = self.chain.members(height)
            if len(members) != len(commit.signatures):
                continue  # not this height's set: the driver would refuse the votes anyway
            for index, entry in enumerate(commit.signatures):
                if entry.flag != CommitFlag.ABSENT:
                    vote = commit.vote_for(index, address_of(members[index].pubkey))
                    await driver.deliver(VoteMessage(vote))


@dataclass
class _BlockSource:
    """What peers may fetch: committed blocks from the lowest held, and the block
    consensus is deciding."""

    node: Node

    def encoded_block(self, height: int) -> bytes | None:
        """None below the lowest height held (after state sync, the anchor block below
        it is not served: peers ask others for the heights below)."""
        blocks = self.node.store.blocks
        return blocks.encoded_block(height) if height >= blocks.base else None

    def encoded_commit(self, height: int) -> bytes | None:
        blocks = self.node.store.blocks
        return blocks.encoded_commit(height) if height >= blocks.base else None

    def block_by_id(self, block_id: bytes) -> Block | None:
        return self.node.store.blocks.block_by_id(block_id)

    def known_block(self, block_id: bytes) -> Block | None:
        """The block ``block_id`` if consensus holds it (on the event loop only)."""
        driver = self.node.driver
        return driver.known_block(block_id) if driver is not None else None


@dataclass
class _SnapshotSource:
    """What peers may fetch for state sync: this node's snapshots, and light blocks of
    the heights it holds."""

    node: Node

    def descriptors(self) -> list[Descriptor]:
        return self.node.snapshots.descriptors()

    def manifest(self, height: int) -> bytes | None:
        return self.node.snapshots.manifest(height)

    def chunk(self, height: int, index: int) -> bytes | None:
        return self.node.snapshots.chunk(height, index)

    def light_block(self, height: int) -> LightBlock | None:
        store = self.node.store
        if height < store.blocks.base:
            return None
        block, commit = store.blocks.block(height), store.blocks.commit(height)
        if block is None or commit is None:
            return None
        try:
            members = self.node.chain.members(height)
        except InvalidBlock:
            return None
        return LightBlock(block.header, commit, tuple(members))
