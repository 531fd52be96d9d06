"""Block sync: how a node that is behind (new, or back from downtime) catches up.

The target is the highest height its peers report (status, refreshed every few
seconds, and block announcements). Ranges of ``RANGE`` blocks are fetched from several
peers at once (``PARALLEL`` requests, each from a peer that has the range), and applied
in height order: each block must carry the commit that finalizes it, signed by more
than 2/3 of the validator set of its height (the set this node's state says), and pass
every rule of the state transition. A peer that sends a block that fails is penalized
and its range is asked of another peer.

Blocks are executed one at a time, and everything else happens beside them: ranges
are fetched ahead, the tx signatures of the ``PRECHECK_AHEAD`` fetched blocks that
come next are checked on other cores while a block executes (a block whose check is
still running waits for it rather than checking again), and each block's write runs
while the next one executes (:meth:`NodeChain.apply_synced`). Each height is committed
atomically but synced to disk only every ``DURABLE_EVERY`` blocks and when the sync
ends: a killed node loses nothing, and a power cut can cost only the heights after the
last synced one, which it fetches again.

A reported height is a claim, not a fact. A peer that does not serve a range it claims
to have (it answers with nothing, or its requests fail ``FAILURES_TO_DOUBT`` times in a
row: a request can fail on a healthy link, a stream refused or cut) loses score, and for
``DOUBT_S`` sync takes its height to be below that range: the target drops back, and a
peer that lies about its height can neither hold a node in sync nor keep it from
consensus. Before consensus gives way to sync, the claim is put to the test
(:meth:`BlockSync.confirm_behind`): a peer must serve the height being decided with a
commit that verifies, the proof that the network has moved on.

Progress (height, target, blocks/s, ETA) is shown as the node's :class:`SyncDisplay`
shows it (a log line every few seconds, :class:`ProgressLines`, unless the command line
chose a bar), and in ``status`` (``catching_up``) and the metrics.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from chain.commits import verify_commit
from chain.errors import InvalidBlock, NetworkError
from chain.types import Block, Commit
from node.chainstate import NodeChain
from p2p.blocks import BlockExchange
from p2p.network import INVALID_MESSAGE_PENALTY, Network
from p2p.peers import PeerId

log = logging.getLogger(__name__)

RANGE = 20
PARALLEL = 4
UNSERVED_PENALTY = 5.0
"""What not serving a range it claimed to have costs a peer (a slow node does it too,
and an older one restored from a snapshot, which does not say its base: so less than an
invalid message)."""
DOUBT_S = 60.0
"""How long sync caps the height of a peer that did not serve what it claimed."""
PROGRESS_EVERY_S = 3.0
IDLE_WAIT_S = 0.2
"""With nothing to apply, how long sync waits for a request to end before it looks again."""
PRECHECK_AHEAD = 4
"""Fetched blocks, from the next, whose tx signatures are checked ahead of execution."""
DURABLE_EVERY = 100
"""One synced block write in this many (and the sync's last)."""
FAILURES_TO_DOUBT = 3
"""Requests to a peer that fail in a row (no answer at all) before it is doubted."""
PROBES = 3
"""Peers asked, all at once, to prove that the node is behind."""


@dataclass
class Progress:
    start_height: int
    started: float
    height: int = 0
    target: int = 0

    def rate(self, now: float) -> float:
        """Blocks applied per second since the sync began."""
        elapsed = now - self.started
        return (self.height - self.start_height) / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float) -> float | None:
        """Seconds left at the current rate, or None before the first block."""
        rate = self.rate(now)
        return (self.target - self.height) / rate if rate > 0 else None


class SyncDisplay(Protocol):
    """How a sync shows its progress: ``show`` every ``every_s`` seconds while it runs
    (``progress`` as of ``now``, trio's clock), ``done`` once it ends."""

    @property
    def every_s(self) -> float: ...

    def show(self, progress: Progress, now: float) -> None: ...

    def done(self) -> None: ...


class ProgressLines:
    """Progress as an info line every ``PROGRESS_EVERY_S``: height, target, blocks/s, ETA."""

    every_s = PROGRESS_EVERY_S

    def show(self, progress: Progress, now: float) -> None:
        eta = progress.eta(now)
        log.info("syncing", extra={"height": progress.height, "target": progress.target,
                                   "blocks_per_s": round(progress.rate(now), 1),
                                   "eta_s": round(eta) if eta is not None else None})

    def done(self) -> None:
        pass


class BlockSync:
    """See the module docstring. ``peer_heights`` gives each peer's known height, and
    ``peer_bases`` the lowest height each serves blocks from, where it said (a peer is
    not asked for blocks below it); ``display`` shows the progress of each catch-up
    (:class:`ProgressLines` if None)."""

    def __init__(self, chain: NodeChain, blocks: BlockExchange, network: Network,
                 peer_heights: Callable[[], dict[PeerId, int]], display: SyncDisplay | None = None,
                 peer_bases: Callable[[], dict[PeerId, int]] = dict) -> None:
        self.chain = chain
        self.blocks = blocks
        self.network = network
        self.peer_heights = peer_heights
        self.peer_bases = peer_bases
        self._unheld_logged = -math.inf
        self.display: SyncDisplay = display if display is not None else ProgressLines()
        self.progress: Progress | None = None
        self._fetched: dict[int, tuple[PeerId, Block, Commit]] = {}
        self._pending: set[int] = set()
        """Heights requested and not yet answered."""
        self._requests = 0
        self._answered = trio.Event()
        """Set when a request ends: its blocks may be the next to apply."""
        self._prechecks: dict[bytes, trio.Event] = {}
        """Fetched blocks (by id) whose signatures are being, or were, checked ahead: set
        when done."""
        self._failures: dict[PeerId, int] = {}
        """Each peer's requests that failed since its last answer."""
        self._doubted: dict[PeerId, tuple[int, float]] = {}
        """Peers that did not serve a height they claimed: the height trusted of each, and
        until when."""
        self.blocks_applied = 0

    def heights(self) -> dict[PeerId, int]:
        """Each peer's height as sync trusts it: what it reports, capped below the first
        height it failed to serve, for ``DOUBT_S``."""
        if self._doubted:
            now = trio.current_time()
            self._doubted = {p: d for p, d in self._doubted.items() if d[1] > now}
        return {peer: min(height, self._doubted[peer][0]) if peer in self._doubted else height
                for peer, height in self.peer_heights().items()}

    def target(self) -> int:
        return max(self.heights().values(), default=0)

    def behind(self) -> bool:
        return self.target() > self.chain.tip + 1

    async def confirm_behind(self) -> bool:
        """Whether a peer that reports a height above the next one proves it: it serves
        the next block with a commit that verifies against that height's validator set
        (so the height this node decides is decided already). The ``PROBES`` highest
        claimers are asked at once and the first proof ends the asking, so a slow or
        mute peer delays nothing; one that does not serve is doubted, one that sends a
        commit that does not verify is penalized as for an invalid block."""
        start = self.chain.tip + 1
        heights = self.heights()
        claimers = sorted(self._holders(heights, start, least=start + 1), key=heights.__getitem__,
                          reverse=True)
        proved = False

        async def probe(peer: PeerId) -> None:
            nonlocal proved
            if await self._proves(peer, start):
                proved = True
                probes.cancel_scope.cancel()

        async with trio.open_nursery() as probes:
            for peer in claimers[:PROBES]:
                probes.start_soon(probe, peer)
        return proved

    async def _proves(self, peer: PeerId, start: int) -> bool:
        """Whether ``peer`` serves block ``start`` with a commit that verifies."""
        try:
            pairs = await self.blocks.fetch_blocks(peer, start, 1)
        except NetworkError:
            pairs = []
        if not pairs:
            self._doubt(peer, start)
            return False
        block, commit = pairs[0]
        members = self.chain.members(start)
        try:
            await trio.to_thread.run_sync(verify_commit, self.chain.config.chain_id, commit, members,
                                          start, block.block_id())
        except InvalidBlock as exc:
            self._doubt(peer, start)
            self.network.penalize(peer, INVALID_MESSAGE_PENALTY, f"a commit that does not verify: {exc}")
            return False
        return True

    async def catch_up(self) -> None:
        """Fetch and apply blocks until this node is at most one block behind its
        highest peer (returns at once if it is)."""
        if not self.behind():
            return
        now = trio.current_time()
        self.progress = Progress(self.chain.tip, now, self.chain.tip, self.target())
        log.info("catching up", extra={"height": self.chain.tip, "target": self.target()})
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._report)
                while self.behind():
                    self._request_more(nursery)
                    if not await self._apply_ready(nursery):
                        with trio.move_on_after(IDLE_WAIT_S):
                            await self._answered.wait()
                    self._answered = trio.Event()
                nursery.cancel_scope.cancel()
            await self.chain.make_durable()
        finally:
            with trio.CancelScope(shield=True):  # no write may outlive the sync: the store closes after
                await self.chain.settle()
            self._fetched.clear()
            self._prechecks.clear()
            self._failures.clear()
            self.progress = None
            self.display.done()
        log.info("caught up", extra={"height": self.chain.tip})

    def _request_more(self, nursery: trio.Nursery) -> None:
        """Ask for the next ranges not asked yet, up to ``PARALLEL`` requests at once and
        ``2 × PARALLEL`` ranges ahead; a range is ``RANGE`` blocks, shorter only when it
        ends at the highest peer's height (a window that moved by a block or two waits
        until a whole range fits: peers limit their requests per second)."""
        heights = self.heights()
        start = self.chain.tip + 1
        top = max(heights.values(), default=0)
        limit = min(top, start + RANGE * PARALLEL * 2 - 1)
        while self._requests < PARALLEL:
            while start <= limit and (start in self._pending or start in self._fetched):
                start += 1
            end = min(start + RANGE, limit + 1)
            if start > limit or (end - start < RANGE and end <= top):
                return
            holders = self._holders(heights, start)
            if not holders:
                return
            span = range(start, end)
            self._pending.update(span)
            self._requests += 1
            nursery.start_soon(self._fetch, random.choice(holders), span)

    def _holders(self, heights: dict[PeerId, int], start: int, least: int | None = None) -> list[PeerId]:
        """The peers that hold block ``start`` by what they said: at a height of at least
        ``least`` (default ``start``), from a base at or below ``start``. If the only peers
        that high serve blocks from a later base (restored from snapshots, they hold no
        older blocks), a warning says so, once a minute."""
        bases = self.peer_bases()
        least = start if least is None else least
        high = [p for p, h in heights.items() if h >= least]
        holders = [p for p in high if bases.get(p, 0) <= start]
        now = trio.current_time()
        if high and not holders and now - self._unheld_logged >= DOUBT_S:
            self._unheld_logged = now
            log.warning("no peer holds the next block: the peers ahead serve blocks from a later height only "
                        "(they were restored from snapshots); this node needs a peer with older blocks, or "
                        "to start with --state-sync",
                        extra={"height": start, "lowest_served": min(bases[p] for p in high)})
        return holders

    def _precheck_more(self, nursery: trio.Nursery) -> None:
        """Check, in worker threads, the tx signatures of the ``PRECHECK_AHEAD`` fetched
        blocks from the next one on: while a block executes, the signatures of those
        that follow are checked, and each comes to execution with its own done."""
        following = self.chain.tip + 1
        wanted = {}
        for height in range(following, following + PRECHECK_AHEAD):
            entry = self._fetched.get(height)
            if entry is not None:
                block = entry[1]
                block_id = block.block_id()
                done = self._prechecks.get(block_id)
                if done is None:
                    done = trio.Event()
                    nursery.start_soon(self._precheck, block, done)
                wanted[block_id] = done
        self._prechecks = wanted

    async def _precheck(self, block: Block, done: trio.Event) -> None:
        try:
            await trio.to_thread.run_sync(self.chain.precheck, block)
        finally:
            done.set()

    async def _fetch(self, peer: PeerId, span: range) -> None:
        try:
            pairs = await self.blocks.fetch_blocks(peer, span.start, len(span))
            self._failures.pop(peer, None)
            if not pairs:
                self._doubt(peer, span.start)
            for block, commit in pairs:
                self._fetched.setdefault(block.header.height, (peer, block, commit))
        except NetworkError as exc:
            failures = self._failures[peer] = self._failures.get(peer, 0) + 1
            log.info("sync request failed", extra={"peer": peer, "start": span.start, "error": str(exc),
                                                   "failures": failures})
            if failures >= FAILURES_TO_DOUBT:
                self._failures.pop(peer)
                self._doubt(peer, span.start)
            await trio.sleep(IDLE_WAIT_S)
        finally:
            self._pending.difference_update(span)
            self._requests -= 1
            self._answered.set()

    def _doubt(self, peer: PeerId, unserved: int) -> None:
        """``peer`` claimed height ``unserved`` or more and did not serve it. A doubt in
        force keeps the lower cap: of requests answered out of order, the one for a
        higher range must not lift the cap the lower one set."""
        now = trio.current_time()
        cap = unserved - 1
        doubted = self._doubted.get(peer)
        if doubted is not None and doubted[1] > now:
            cap = min(cap, doubted[0])
        self._doubted[peer] = (cap, now + DOUBT_S)
        self.network.penalize(peer, UNSERVED_PENALTY, f"claimed height {unserved} and did not serve it")
        log.info("peer did not serve a height it claimed", extra={"peer": peer, "height": unserved})

    async def _apply_ready(self, nursery: trio.Nursery) -> bool:
        """Apply the fetched blocks that come next (asking for more, and checking ahead
        the signatures of those that follow, as each goes); whether any was."""
        applied = False
        while (entry := self._fetched.get(self.chain.tip + 1)) is not None:
            self._request_more(nursery)
            self._precheck_more(nursery)
            del self._fetched[self.chain.tip + 1]
            peer, block, commit = entry
            checking = self._prechecks.get(block.block_id())
            if checking is not None:
                await checking.wait()
            height = block.header.height
            try:
                await self.chain.apply_synced(block, commit, durable=height % DURABLE_EVERY == 0)
            except InvalidBlock as exc:
                self.network.penalize(peer, INVALID_MESSAGE_PENALTY, f"sent an invalid block: {exc}")
                log.warning("synced block refused", extra={"peer": peer, "height": block.header.height,
                                                           "error": str(exc)})
                return applied
            applied = True
            self.blocks_applied += 1
            if self.progress is not None:
                self.progress.height = self.chain.tip
        self._fetched = {h: e for h, e in self._fetched.items() if h > self.chain.tip}
        return applied

    async def _report(self) -> None:
        while True:
            await trio.sleep(self.display.every_s)
            progress = self.progress
            if progress is None:
                return
            progress.target = self.target()
            self.display.show(progress, trio.current_time())
