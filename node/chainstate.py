"""The chain consensus decides on, over the node's store: what the driver builds,
validates and commits (:class:`consensus.driver.Chain`).

Blocks are built from the mempool's txs (only those the block can carry), validated
and executed in a worker thread (the event loop keeps serving peers and RPC meanwhile);
a block built here is executed as it is built, and committed with that outcome. The
next height's round-0 proposer builds its block while the txs arrive
(:meth:`NodeChain.build_meanwhile`), so that making its proposal is only sealing it. Blocks
are committed in one write together with the proposer priorities of their height, so
a restarted node picks the same proposers as its peers. That write is synced, except
for block sync's, which syncs one in ``DURABLE_EVERY`` (node/sync.py) and runs beside the
next synced block's execution (:meth:`NodeChain.apply_synced`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from chain.blocks import make_block
from chain.codec import dumps, expect_array, expect_bytes, expect_list, loads_canonical
from chain.commits import median_time, verify_commit
from chain.crypto import BatchVerifier, VerifiedCache, address_of, verify_many_in_background
from chain.errors import DecodeError, InvalidBlock, StorageError
from chain.genesis import Genesis
from chain.ledger import Ledger
from chain.params import ChainConfig
from chain.sizes import ADDRESS_LEN
from chain.transition import (
    BlockBuilder,
    BlockOutcome,
    apply_block,
    tx_sign_prefix,
    tx_signature,
)
from chain.types import Block, Commit, DuplicateVoteEvidence, SetMember
from chain.validatorsets import validator_set_at
from consensus.proposer import Priorities, initial, next_height, voters
from node.mempool import Mempool
from storage.store import StagedBlock, Store

log = logging.getLogger(__name__)

MIN_PROPOSAL_BYTES = 256 << 10
"""The smallest tx budget of a proposal (about 2,000 transfers)."""
FIRST_PROPOSAL_BYTES = 1 << 20
"""The first tx budget (about 8,000 transfers, executed in well under a propose timeout)."""
SLOW_HEIGHT = 1.0
"""A height decided more than this many propose timeouts after it started was slowed
by its block: the budget shrinks by a quarter."""
QUICK_HEIGHT = 0.5
"""The budget grows only after a height decided within this many propose timeouts."""

PRUNE_EVERY = 100
KEEP_OUTCOMES = 4
"""Outcomes of blocks built or validated at the deciding height kept for its commit
(one per round's proposal; an outcome holds a block's state changes)."""
TAKE_ARRIVALS_S = 0.05
"""How often a block built meanwhile takes the txs admitted since it last did."""
TAKE_AT_ONCE = 2_048
"""Txs a block built meanwhile executes in one trip to a worker thread: the build that
takes it waits for one such trip at most, not for all that was pending."""
CommitListener = Callable[[Block, BlockOutcome], None]


@dataclass(slots=True)
class _Meanwhile:
    """The round-0 block of ``height`` by ``proposer``, built as txs arrive: ``builder``
    was offered the mempool's ``arrivals`` up to ``taken``."""

    height: int
    proposer: bytes
    builder: BlockBuilder
    arrivals: list[bytes]
    taken: int = 0


class _Writing:
    """A synced block whose store write (``write(staged)``) runs on a thread of its own,
    and what the chain's listeners are told of it once written."""

    __slots__ = ("_error", "_thread", "block", "commit", "outcome")

    def __init__(self, block: Block, commit: Commit, outcome: BlockOutcome, staged: StagedBlock,
                 write: Callable[[StagedBlock], None]) -> None:
        self.block = block
        self.commit = commit
        self.outcome = outcome
        self._error: BaseException | None = None

        def run() -> None:
            try:
                write(staged)
            except BaseException as exc:  # handed to wait(), on the event loop
                self._error = exc

        # Not a daemon: an interpreter that exits lets the write finish.
        self._thread = threading.Thread(target=run, name=f"block-write-{staged.height}")
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self) -> None:
        """Block until written; raises what the write raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error


def encode_priorities(p: Priorities) -> bytes:
    return dumps([list(p.addresses), list(p.powers), list(p.priorities), p.proposer])


def decode_priorities(data: bytes) -> Priorities:
    """Raises DecodeError unless ``data`` is what :func:`encode_priorities` makes."""
    fields = expect_array(loads_canonical(data, "priorities"), 4, "priorities")
    addresses = tuple(expect_bytes(a, "priorities.address", ADDRESS_LEN)
                      for a in expect_list(fields[0], "priorities.addresses"))
    powers = tuple(expect_list(fields[1], "priorities.powers"))
    priorities = tuple(expect_list(fields[2], "priorities.priorities"))
    proposer = fields[3]
    if not all(type(i) is int for i in (*powers, *priorities, proposer)):
        raise DecodeError("priorities: expected integers")
    if not len(addresses) == len(powers) == len(priorities) or not -1 <= proposer < len(addresses):
        raise DecodeError("priorities: lists of different lengths, or no such proposer")
    return Priorities(addresses, powers, priorities, proposer)


class NodeChain:
    """See the module docstring. ``listeners`` hear of each committed block (the
    mempool's recheck, RPC subscriptions, metrics) after it is stored."""

    def __init__(self, store: Store, genesis: Genesis, config: ChainConfig, mempool: Mempool,
                 verified: VerifiedCache, verifier: BatchVerifier = verify_many_in_background, *,
                 keep_heights: int = 0, address: bytes | None = None) -> None:
        """``address``: this node's validator's, if it is one."""
        self.store = store
        self.address = address
        self.keep_heights = keep_heights
        """Prune the state older than this many heights (0: keep all), every PRUNE_EVERY blocks."""
        self.genesis = genesis
        self.config = config
        self.mempool = mempool
        self.verified = verified
        self.verifier = verifier
        self.listeners: list[CommitListener] = []
        self._priorities: dict[int, Priorities] = {}
        self._outcomes: dict[bytes, BlockOutcome] = {}
        self.proposal_bytes = FIRST_PROPOSAL_BYTES
        """How many bytes of txs this node's round-0 proposals carry at most (see
        :meth:`proposal_limit`)."""
        self._last_build = (0.0, 0)
        """How long the last build from scratch took (seconds) and how many txs it took."""
        self._last_seal_s = 0.0
        """How long the last build of a block built meanwhile took (its sealing)."""
        self._meanwhile: _Meanwhile | None = None
        self._writing: _Writing | None = None
        """The synced block being written, if one is (:meth:`apply_synced`)."""
        self._builder_lock = trio.Lock()
        """Held while a block built meanwhile executes txs in a worker thread."""
        self._too_big = config.params.max_block_bytes
        """The last budget whose height was slow or took more than one round: the budget
        grows by a quarter, not twice, past half of it."""
        self._alone: tuple[int, bool] = (-1, False)
        """A height, and whether this node's validator holds more than 2/3 of its power."""

    @property
    def height(self) -> int:
        return self.store.height

    def members(self, height: int) -> list[SetMember]:
        return validator_set_at(Ledger(self.store.state.ahead), height, self.config)

    def priorities(self, height: int) -> Priorities:
        """Those of ``height``, the next one to decide (or the one deciding)."""
        cached = self._priorities.get(height)
        if cached is not None:
            return cached
        if height != self.height + 1:
            raise ValueError(f"priorities of height {height} asked at height {self.height}")
        current = voters(self.members(height))
        stored = self.store.consensus_state()
        if height == self.config.initial_height or stored is None:
            if height != self.config.initial_height:
                raise StorageError("the store has blocks but no proposer priorities")
            result = initial(current)
        else:
            result = next_height(decode_priorities(stored), current)
        self._priorities = {height: result}
        return result

    def next_block_time(self) -> int:
        commit = self.store.blocks.seen_commit()
        if commit is None:
            return self.genesis.genesis_time_ns
        return median_time(commit, self.members(commit.height))

    def proposal_limit(self, round_: int) -> int:
        """The tx bytes a proposal of ``round_`` carries at most: half as many each round.

        A proposal must reach the other validators, and be executed by them, before
        their propose timeout; under load its block is what takes the time, and a round
        that failed for it would fail again with a larger block (the mempool only
        grows meanwhile), each round. So the budget halves with each round and, from
        height to height, starts at :data:`FIRST_PROPOSAL_BYTES`, doubles while round-0
        proposals that fill half of it are decided within ``QUICK_HEIGHT`` propose
        timeouts of their height's start, shrinks by a quarter after one decided in
        round 0 but more than ``SLOW_HEIGHT`` propose timeouts after the start (its
        block did reach the others in time: halving it would overshoot), and falls to
        what was decided in a later round; past half the last budget that was slow or
        took more than one round, it grows by a quarter, not twice. It never goes below
        :data:`MIN_PROPOSAL_BYTES` nor above the params' block limit. A validator holding
        more than 2/3 of the next height's power decides it on its own votes, which no
        other validator's execution can hold up: its budget is the block limit.
        """
        if self.decides_alone():
            return self.config.params.max_block_bytes
        return max(MIN_PROPOSAL_BYTES, self.proposal_bytes >> round_)

    def decides_alone(self) -> bool:
        """Whether this node's validator holds more than 2/3 of the next height's power."""
        height = self.height + 1
        if self._alone[0] != height:
            alone = False
            if self.address is not None:
                members = self.members(height)
                mine = sum(m.power for m in members if address_of(m.pubkey) == self.address)
                alone = 3 * mine > 2 * sum(m.power for m in members)
            self._alone = (height, alone)
        return self._alone[1]

    def _adapt_proposal_limit(self, block: Block, decided_round: int, decided_in_s: float | None) -> None:
        propose_s = self.config.params.timeout_propose_ms / 1000
        if decided_round > 0:
            self._too_big = self.proposal_bytes
            self.proposal_bytes = self.proposal_limit(decided_round)
        elif decided_in_s is None:
            return
        elif decided_in_s > SLOW_HEIGHT * propose_s:
            self._too_big = self.proposal_bytes
            self.proposal_bytes = max(MIN_PROPOSAL_BYTES, self.proposal_bytes * 3 // 4)
        elif decided_in_s <= QUICK_HEIGHT * propose_s and \
                2 * sum(map(len, block.txs)) >= self.proposal_bytes:
            grown = 2 * self.proposal_bytes
            if grown > self._too_big:
                grown = self.proposal_bytes * 5 // 4
            self.proposal_bytes = min(grown, self.config.params.max_block_bytes)

    async def build_meanwhile(self, proposer: bytes, evidence: list[DuplicateVoteEvidence]) -> None:
        """Build the next height's round-0 block of ``proposer`` with ``evidence`` while
        txs arrive, until cancelled: the pending txs, then those admitted since, every
        ``TAKE_ARRIVALS_S``, each executed once (in a worker thread, ``TAKE_AT_ONCE`` at
        a time). A :meth:`build_block`
        of round 0 for the same proposer and evidence then only executes what came since
        and seals it; the next commit drops it. Stops offering once the block is full."""
        params = self.config.params
        builder = BlockBuilder(self.store.state.ahead, self.config, evidence, max_txs=params.max_block_txs,
                               max_bytes=min(params.max_block_bytes, self.proposal_limit(0)),
                               decoded=self.mempool.decoded)
        arrivals = self.mempool.reap()
        self.mempool.arrivals = arrivals
        self._meanwhile = meanwhile = _Meanwhile(self.height + 1, proposer, builder, arrivals)
        while not builder.full:
            end = min(len(arrivals), meanwhile.taken + TAKE_AT_ONCE)
            if end > meanwhile.taken:
                async with self._builder_lock:
                    if self._meanwhile is not meanwhile:
                        return  # taken by a build, or dropped by a commit
                    await trio.to_thread.run_sync(builder.offer, arrivals[meanwhile.taken:end])
                    meanwhile.taken = end
                if end < len(arrivals):
                    continue
            await trio.sleep(TAKE_ARRIVALS_S)
        if self.mempool.arrivals is arrivals:
            self.mempool.arrivals = None

    def _take_meanwhile(self, round_: int, proposer: bytes,
                        evidence: list[DuplicateVoteEvidence]) -> _Meanwhile | None:
        """The block built meanwhile, if it is the one asked for; it is dropped either way."""
        meanwhile, self._meanwhile = self._meanwhile, None
        self.mempool.arrivals = None
        if meanwhile is None or round_ != 0 or meanwhile.height != self.height + 1 or \
                meanwhile.proposer != proposer or meanwhile.builder.offered_evidence != tuple(evidence):
            return None
        return meanwhile

    async def build_block(self, round_: int, proposer: bytes, evidence: list[DuplicateVoteEvidence], *,
                          within_s: float | None = None) -> Block:
        params = self.config.params
        state, app_hash = self.store.state.ahead, self.store.app_hash
        last_commit = self.store.blocks.seen_commit()
        time_ns = self.next_block_time()
        deadline = None if within_s is None else time.monotonic() + within_s

        def out_of_time() -> bool:
            return deadline is not None and time.monotonic() > deadline

        def seal(txs: list[bytes], hashes: list[bytes], chosen: list[DuplicateVoteEvidence]) -> Block:
            return make_block(state, app_hash, self.config, txs=txs, tx_hashes=hashes,
                              proposer_address=proposer, time_ns=time_ns, last_commit=last_commit,
                              evidence=chosen)

        started = time.monotonic()
        async with self._builder_lock:
            meanwhile = self._take_meanwhile(round_, proposer, evidence)
            if meanwhile is not None:
                builder, candidates = meanwhile.builder, meanwhile.arrivals[meanwhile.taken:]
            else:
                builder = BlockBuilder(state, self.config, evidence, max_txs=params.max_block_txs,
                                       max_bytes=min(params.max_block_bytes, self.proposal_limit(round_)),
                                       decoded=self.mempool.decoded)
                candidates = self.mempool.reap()  # here: the mempool changes while the thread runs

            def build() -> tuple[Block, BlockOutcome]:
                builder.offer(candidates, out_of_time)
                return builder.seal(app_hash, seal)

            block, outcome = await trio.to_thread.run_sync(build)
        self._keep_outcome(block, outcome)
        seconds = time.monotonic() - started
        if meanwhile is not None:
            self._last_seal_s = seconds
        else:
            self._last_build = (seconds, len(block.txs))
        log.debug("block built", extra={"height": block.header.height, "round": round_, "txs": len(block.txs),
                                        "candidates": len(candidates), "max_bytes": builder.max_bytes,
                                        "built_meanwhile": meanwhile is not None,
                                        "seconds": round(seconds, 3)})
        return block

    def build_estimate_s(self) -> float:
        """How long the last sealing of a block built meanwhile took, while one is built;
        else the last build's time, scaled by the txs a round-0 build would carry now
        (those pending, within the budget and ``max_block_txs``) against those it took."""
        if self._meanwhile is not None:
            return self._last_seal_s
        seconds, built = self._last_build
        pending = len(self.mempool)
        if not built or not pending:
            return seconds
        carried = min(pending, self.config.params.max_block_txs,
                      pending * self.proposal_limit(0) // max(1, self.mempool.bytes))
        return seconds * carried / built

    async def validate(self, block: Block) -> bool:
        started = time.monotonic()
        try:
            outcome = await trio.to_thread.run_sync(self._execute, block)
        except InvalidBlock as exc:
            log.warning("invalid block", extra={"height": block.header.height, "error": str(exc)})
            return False
        log.debug("block checked", extra={"height": block.header.height, "txs": len(block.txs),
                                          "seconds": round(time.monotonic() - started, 3)})
        self._keep_outcome(block, outcome)
        return True

    def _keep_outcome(self, block: Block, outcome: BlockOutcome) -> None:
        """Keep what ``block`` does, for its commit: the last ``KEEP_OUTCOMES`` kept."""
        self._outcomes[block.block_id()] = outcome
        while len(self._outcomes) > KEEP_OUTCOMES:
            del self._outcomes[next(iter(self._outcomes))]

    def _execute(self, block: Block) -> BlockOutcome:
        return apply_block(self.store.state.ahead, self.store.app_hash, block, self.config, self.verified,
                           self.verifier, self.mempool.decoded, self.store.state.prepare_root)

    def precheck(self, block: Block) -> None:
        """Check the signatures of ``block``'s txs that are not known to be valid, and
        remember those that are (in ``verified``): executing the block later checks none
        of them again. Blocks until done (call it in a worker thread), and decides
        nothing: a tx whose signature fails is just not remembered, and the block's
        execution refuses it."""
        prefix = tx_sign_prefix(self.config.chain_id)
        hashes = block.tx_hashes()
        unchecked = self.verified.unknown(hashes)
        if not unchecked:
            return
        checks = self.verifier([tx_signature(prefix, block.txs[i]) for i in unchecked]).result()
        self.verified.add_all([hashes[i] for i, valid in zip(unchecked, checks, strict=True) if valid])

    async def apply_synced(self, block: Block, commit: Commit, *, durable: bool = True) -> None:
        """Check that ``commit`` finalizes ``block`` (the block after :attr:`tip`) with
        the validator set of its height, execute it and commit it (``durable``: as
        :meth:`Store.commit_block` takes it). InvalidBlock if either fails.

        Block sync's path. The block executes while the one before it is written, and
        returns once its own write has started, on a thread of its own
        (:meth:`settle` waits for it and tells the listeners): meanwhile :attr:`tip`
        is its height, :attr:`height` the one before, and this chain's state reads
        (:attr:`StateStore.ahead`) count its changes, while the store's own (the RPC's,
        the mempool's) do not yet. A kill loses nothing written; a crash leaves whole
        heights."""
        height = block.header.height
        if height != self.tip + 1:
            raise InvalidBlock(f"block {height} does not follow height {self.tip}")
        members = self.members(height)

        def check_execute() -> BlockOutcome:
            verify_commit(self.config.chain_id, commit, members, height, block.block_id())
            return self._execute(block)

        await self._drop_meanwhile()
        outcome = await trio.to_thread.run_sync(check_execute)
        await self.settle()
        priorities = encode_priorities(self.priorities(height))
        staged = await trio.to_thread.run_sync(functools.partial(
            self.store.stage_block, block, commit, outcome, consensus_state=priorities, durable=durable))
        self._writing = _Writing(block, commit, outcome, staged, self._write_staged)

    @property
    def tip(self) -> int:
        """The height of the last block applied: :attr:`height`, or the synced block
        still being written after it."""
        return self._writing.block.header.height if self._writing is not None else self.height

    async def settle(self) -> None:
        """Wait for the synced block being written, if one is, and tell the listeners of
        it (raises StorageError if its write failed)."""
        writing = self._writing
        if writing is None:
            return
        try:
            if writing.running():
                await trio.to_thread.run_sync(writing.wait)
            else:
                writing.wait()
        except BaseException:
            if self._writing is writing:
                self._writing = None
            raise
        if self._writing is writing:  # told once, by the first of concurrent settles
            self._writing = None
            self._committed(writing.block, writing.commit, writing.outcome, None)

    async def make_durable(self) -> None:
        """Put the heights committed without ``durable`` on stable storage (the block
        being written first)."""
        await self.settle()
        await trio.to_thread.run_sync(self.store.make_durable)

    async def _drop_meanwhile(self) -> None:
        """Drop the block built meanwhile, once no txs execute into it: the state it
        reads is about to change."""
        async with self._builder_lock:
            self._meanwhile, self.mempool.arrivals = None, None

    async def commit(self, block: Block, commit: Commit, decided_in_s: float | None = None) -> None:
        height = block.header.height
        await self.settle()
        await self._drop_meanwhile()
        outcome = self._outcomes.pop(block.block_id(), None)
        if outcome is None:
            outcome = await trio.to_thread.run_sync(self._execute, block)
        priorities = encode_priorities(self.priorities(height))
        started = time.monotonic()
        await trio.to_thread.run_sync(self._write, block, commit, outcome, priorities, True)
        stored = time.monotonic()
        self._committed(block, commit, outcome, decided_in_s)
        log.debug("block stored", extra={"height": height, "txs": len(block.txs),
                                         "write_seconds": round(stored - started, 3),
                                         "listeners_seconds": round(time.monotonic() - stored, 3)})

    def _write(self, block: Block, commit: Commit, outcome: BlockOutcome, priorities: bytes,
               durable: bool) -> None:
        """The store's writes of a block (in a worker thread, one at a time)."""
        self._write_staged(self.store.stage_block(block, commit, outcome, consensus_state=priorities,
                                                  durable=durable))

    def _write_staged(self, staged: StagedBlock) -> None:
        height = staged.height
        self.store.write_staged(staged)
        if self.keep_heights and height % PRUNE_EVERY == 0:
            pruned = self.store.prune(self.keep_heights)
            log.info("state pruned", extra={"height": height, "heights_pruned": pruned})

    def _committed(self, block: Block, commit: Commit, outcome: BlockOutcome,
                   decided_in_s: float | None) -> None:
        height = block.header.height
        self._adapt_proposal_limit(block, commit.round, decided_in_s)
        self._outcomes.clear()
        self._priorities = {h: p for h, p in self._priorities.items() if h > height}
        for listener in self.listeners:
            listener(block, outcome)
