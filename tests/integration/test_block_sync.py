"""Block sync over the in-memory network: a node behind catches up from an honest peer,
a peer that claims heights it does not serve can neither hold it in sync nor keep its
own claim believed, and no claim stops consensus until a commit proves it."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future

import pytest
import trio

import node.sync
import p2p.blocks
from chain.codec import loads_canonical
from chain.crypto import BatchVerifier, SignedItem, VerifiedCache, verify_many, verify_many_in_background
from chain.errors import BizraError
from chain.types import Block, Commit, encode
from node.chainstate import NodeChain
from node.config import MempoolConfig
from node.mempool import Mempool
from node.sync import UNSERVED_PENALTY, BlockSync, Progress
from p2p.blocks import Announcement, BlockExchange
from p2p.memory import MemoryHub
from p2p.network import INVALID_MESSAGE_PENALTY, Validation
from p2p.peers import PeerId
from storage.memory import MemoryBatch, MemoryKV
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH, GatedKV, commit_next, transfers

HEIGHTS = 6
FLAKY_FAILURES = node.sync.FAILURES_TO_DOUBT - 1


class Blocks:
    """What a peer serves: the blocks of ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def encoded_block(self, height: int) -> bytes | None:
        return self.store.blocks.encoded_block(height)

    def encoded_commit(self, height: int) -> bytes | None:
        return self.store.blocks.encoded_commit(height)

    def block_by_id(self, block_id: bytes) -> Block | None:
        return self.store.blocks.block_by_id(block_id)


async def ignore(_: PeerId, __: Announcement) -> Validation:
    return Validation.IGNORE


async def never(_: PeerId, __: bytes) -> bytes:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


class ForgedCommits(Blocks):
    """What a forger serves: the right blocks, their commits' signatures forged."""

    def encoded_commit(self, height: int) -> bytes | None:
        commit = self.store.blocks.commit(height)
        if commit is None:
            return None
        forged = tuple(dataclasses.replace(s, signature=bytes(64)) for s in commit.signatures)
        return encode(dataclasses.replace(commit, signatures=forged))


class WritesKV(GatedKV):
    """A memory store that notes, of each batch written, whether it was synced."""

    def __init__(self) -> None:
        super().__init__()
        self.synced: list[bool] = []

    def write_batch(self, *, sync: bool) -> MemoryBatch:
        self.synced.append(sync)
        return super().write_batch(sync=sync)


class SlowChecks:
    """A signature checker that answers after ``delay_s`` (so that checks overlap) and
    counts the signatures it was given."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.checked = 0

    def __call__(self, items: Sequence[SignedItem]) -> Future[list[bool]]:
        self.checked += len(items)
        answer: Future[list[bool]] = Future()
        threading.Timer(self.delay_s, lambda: answer.set_result(verify_many(items))).start()
        return answer


class FailsFirst:
    """A request handler whose first ``failures`` requests fail (a stream refused, say)."""

    def __init__(self, handler: Callable[[PeerId, bytes], Awaitable[bytes]], failures: int) -> None:
        self.handler = handler
        self.failures = failures

    async def __call__(self, peer: PeerId, request: bytes) -> bytes:
        if self.failures:
            self.failures -= 1
            raise BizraError("stream refused")
        return await self.handler(peer, request)


class Scene:
    """A node at genesis (``me``, its ``sync``) on an in-memory network with one peer per
    keyword, serving: ``"chain"`` the ``HEIGHTS`` blocks of ``honest`` (``"flaky"``: after
    failing its first ``FLAKY_FAILURES`` requests), ``"forged"`` the
    same with forged commit signatures, ``"nothing"`` no block, ``"stalls"`` never an
    answer, ``None`` no protocol at all (its requests fail); and ``claims``, the heights
    the peers report."""

    def __init__(self, verifier: BatchVerifier = verify_many_in_background, **serves: str | None) -> None:
        local = LocalChain()
        self.honest = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
        for _ in range(HEIGHTS):
            commit_next(local, self.honest, transfers(local, 3))
        self.kv = WritesKV()
        self.behind = Store.open(self.kv, local.genesis, GENESIS_HASH)
        self.kv.synced.clear()  # the genesis state's
        verified = VerifiedCache()
        chain = NodeChain(self.behind, local.genesis, local.config,
                          Mempool(local.config, self.behind.state, MempoolConfig(), verified), verified,
                          verifier)
        empty = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
        self.hub = hub = MemoryHub()
        self.me = hub.join("me")
        chain_id = local.config.chain_id
        self.peers: dict[str, PeerId] = {}
        sources = {"chain": Blocks(self.honest), "forged": ForgedCommits(self.honest),
                   "nothing": Blocks(empty), "stalls": Blocks(self.honest), "flaky": Blocks(self.honest)}
        for name, what in serves.items():
            peer = hub.join(name)
            hub.connect(self.me.local_id, peer.local_id)
            if what is not None:
                exchange = BlockExchange(peer, chain_id, sources[what], ignore, max_block_bytes=1 << 22)
                if what == "stalls":
                    peer.set_handler(exchange.blocks_protocol, never, max_request_bytes=64)
                if what == "flaky":
                    handler, limit = peer._handlers[exchange.blocks_protocol]
                    peer.set_handler(exchange.blocks_protocol, FailsFirst(handler, FLAKY_FAILURES),
                                     max_request_bytes=limit)
            self.peers[name] = peer.local_id
        mine = BlockExchange(self.me, chain_id, Blocks(self.behind), ignore, max_block_bytes=1 << 22)
        self.blocks_protocol = mine.blocks_protocol
        self.claims: dict[PeerId, int] = {}
        self.bases: dict[PeerId, int] = {}
        """The lowest heights the peers say they serve blocks from."""
        self.sync = BlockSync(chain, mine, self.me, lambda: dict(self.claims),
                              peer_bases=lambda: dict(self.bases))

    def score(self, name: str) -> float:
        return self.me.score(self.peers[name])


async def test_a_peer_claiming_heights_it_does_not_serve_is_doubted_and_sync_ends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A real clock: blocks are applied in worker threads, which a mock clock would jump past.
    monkeypatch.setattr(node.sync, "DOUBT_S", 1.0)
    scene = Scene(honest="chain", liar="nothing", mute=None)
    sync, peers = scene.sync, scene.peers
    scene.claims.update({peers["honest"]: HEIGHTS, peers["liar"]: 1_000_000, peers["mute"]: 2**63 - 1})

    with trio.fail_after(30):
        await sync.catch_up()

    assert scene.behind.height == HEIGHTS  # everything the honest peer has
    assert sync.heights()[peers["liar"]] < HEIGHTS + 1 and sync.heights()[peers["mute"]] < HEIGHTS + 1
    assert not sync.behind() and scene.score("honest") == 0
    assert scene.score("liar") <= -UNSERVED_PENALTY and scene.score("mute") <= -UNSERVED_PENALTY

    # A liar on its own: the sync it starts ends as soon as it fails to serve.
    del scene.claims[peers["honest"]], scene.claims[peers["mute"]]
    await trio.sleep(node.sync.DOUBT_S)
    assert sync.behind()  # its claim is believed again, until it is tested
    with trio.fail_after(30):
        await sync.catch_up()
    assert not sync.behind() and scene.score("liar") <= -2 * UNSERVED_PENALTY


async def test_consensus_gives_way_only_to_a_height_proved_by_a_commit() -> None:
    """A claim of a height far ahead does not make the node stop deciding its own: a peer
    must serve the height being decided with a commit that verifies. A liar, a mute
    peer and one whose commit signatures are forged fail, are doubted and cost score."""
    scene = Scene(honest="chain", liar="nothing", mute=None, forger="forged")
    sync, peers = scene.sync, scene.peers
    scene.claims.update({peers["liar"]: 10**9, peers["mute"]: 10**8, peers["forger"]: 10**7})

    with trio.fail_after(30):
        assert not await sync.confirm_behind()
    assert not sync.behind()  # every claim tested failed, and is doubted
    assert scene.score("liar") <= -UNSERVED_PENALTY and scene.score("mute") <= -UNSERVED_PENALTY
    assert scene.score("forger") <= -UNSERVED_PENALTY - INVALID_MESSAGE_PENALTY

    scene.claims[peers["honest"]] = HEIGHTS
    with trio.fail_after(30):
        assert await sync.confirm_behind()
    assert scene.score("honest") == 0


async def test_a_peer_that_never_answers_does_not_hold_back_the_proof_of_another() -> None:
    """Claimers are asked at once: the honest peer's proof ends the asking while the
    stalled peer, which claims more and so comes first, has yet to answer (asked one
    after the other, the node would wait out its request timeout, falling behind)."""
    scene = Scene(honest="chain", stalled="stalls")
    sync, peers = scene.sync, scene.peers
    scene.claims.update({peers["stalled"]: HEIGHTS + 5, peers["honest"]: HEIGHTS})
    with trio.fail_after(p2p.blocks.REQUEST_TIMEOUT_S / 2):
        assert await sync.confirm_behind()
    assert sync.heights()[peers["stalled"]] == HEIGHTS + 5  # not doubted: only slower
    assert scene.score("honest") == 0 and scene.score("stalled") == 0


async def test_a_peer_that_serves_blocks_only_from_a_later_height_is_not_asked_below_it(
        caplog: pytest.LogCaptureFixture) -> None:
    """A peer restored from a snapshot (state sync) says from which height it serves
    blocks: it is not asked for lower ones, nor doubted, nor does it lose score. While no
    peer holds the next block, the node waits and says why."""
    scene = Scene(restored="nothing", honest="chain")
    sync, peers = scene.sync, scene.peers
    scene.claims[peers["restored"]] = HEIGHTS
    scene.bases[peers["restored"]] = 4
    asked: list[PeerId] = []
    fetch = scene.sync.blocks.fetch_blocks

    async def counted(peer: PeerId, start: int, count: int) -> list[tuple[Block, Commit]]:
        asked.append(peer)
        return await fetch(peer, start, count)

    sync.blocks.fetch_blocks = counted  # type: ignore[method-assign]
    with trio.move_on_after(1):
        await sync.catch_up()
    assert scene.behind.height == 0 and asked == []
    assert sync.heights()[peers["restored"]] == HEIGHTS and scene.score("restored") == 0
    assert "no peer holds the next block" in caplog.text
    assert not await sync.confirm_behind() and asked == []  # not a claim it can prove

    scene.claims[peers["honest"]] = HEIGHTS
    with trio.fail_after(30):
        await sync.catch_up()
    assert scene.behind.height == HEIGHTS and set(asked) == {peers["honest"]}
    assert scene.score("restored") == 0 and scene.score("honest") == 0


async def test_a_range_not_served_after_a_lower_one_keeps_the_lower_cap() -> None:
    """Requests for several ranges go out at once and come back in any order: a peer
    that served neither ranges 7.. nor 27.. is believed below 7, whichever answer came
    last (the higher one had lifted its height back above the node's, and sync went on)."""
    scene = Scene(liar="nothing")
    sync, liar = scene.sync, scene.peers["liar"]
    scene.claims[liar] = 1_000_000
    sync._doubt(liar, 7)
    sync._doubt(liar, 27)
    assert sync.heights()[liar] == 6



class Shown:
    """A sync display that records (height, target) at each ``show``, and how many shows
    there had been at each ``done``."""

    every_s = 0.001

    def __init__(self) -> None:
        self.shows: list[tuple[int, int]] = []
        self.dones: list[int] = []

    def show(self, progress: Progress, now: float) -> None:
        self.shows.append((progress.height, progress.target))

    def done(self) -> None:
        self.dones.append(len(self.shows))


async def test_a_catch_up_shows_its_progress_on_its_display_and_ends_it() -> None:
    scene = Scene(honest="chain")
    shown = Shown()
    scene.sync.display = shown
    scene.claims[scene.peers["honest"]] = HEIGHTS
    with trio.fail_after(30):
        await scene.sync.catch_up()
    assert shown.shows and shown.dones == [len(shown.shows)]  # shown as it went, then ended once
    assert {target for _, target in shown.shows} == {HEIGHTS}
    heights = [h for h, _ in shown.shows]
    assert heights == sorted(heights) and heights[-1] <= HEIGHTS


async def test_each_synced_tx_signature_is_checked_once() -> None:
    """A block whose signatures are being checked ahead waits for that check: it is not
    checked again as the block executes."""
    checks = SlowChecks(0.2)
    scene = Scene(checks, honest="chain")
    scene.claims[scene.peers["honest"]] = HEIGHTS
    with trio.fail_after(30):
        await scene.sync.catch_up()
    assert scene.behind.height == HEIGHTS
    blocks = [scene.honest.blocks.block(h) for h in range(1, HEIGHTS + 1)]
    assert checks.checked == sum(len(b.txs) for b in blocks if b is not None)


async def test_sync_syncs_one_block_write_in_durable_every_and_its_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node.sync, "DURABLE_EVERY", 2)
    scene = Scene(honest="chain")
    scene.claims[scene.peers["honest"]] = HEIGHTS
    with trio.fail_after(30):
        await scene.sync.catch_up()
    assert scene.behind.height == HEIGHTS
    # Heights 1 to 6, durable at 2, 4 and 6; then the end's.
    assert scene.kv.synced == [False, True, False, True, False, True, True]


async def test_a_sync_stopped_while_a_block_is_written_ends_once_it_is_written(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The store closes after the sync: a write must not outlive it, and the block
    written is told to the listeners."""
    scene = Scene(honest="chain")
    scene.claims[scene.peers["honest"]] = HEIGHTS
    chain = scene.sync.chain
    told: list[int] = []
    chain.listeners.append(lambda block, outcome: told.append(block.header.height))
    apply_synced = chain.apply_synced

    async def apply_then_stop(block: Block, commit: Commit, *, durable: bool = True) -> None:
        await apply_synced(block, commit, durable=durable)  # returns as its write starts
        nursery.cancel_scope.cancel()
        threading.Timer(0.3, scene.kv.gate.set).start()

    monkeypatch.setattr(chain, "apply_synced", apply_then_stop)
    scene.kv.gate.clear()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scene.sync.catch_up)
    assert (chain.tip, chain.height, scene.behind.height, told) == (1, 1, 1, [1])


async def test_a_peer_whose_requests_fail_a_few_times_is_not_doubted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed request is asked again: only ``FAILURES_TO_DOUBT`` failures in a row cost
    the peer its claimed height (a long doubt would leave a node with one peer stuck)."""
    monkeypatch.setattr(node.sync, "DOUBT_S", 3_600.0)
    scene = Scene(peer="flaky")
    scene.claims[scene.peers["peer"]] = HEIGHTS
    with trio.fail_after(30):
        await scene.sync.catch_up()
    assert scene.behind.height == HEIGHTS
    assert scene.sync.heights()[scene.peers["peer"]] == HEIGHTS


async def test_ranges_are_asked_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """As blocks are applied, the window of ranges ahead moves a block at a time: sync
    asks for a range only once a whole one fits (or it ends at the peer's height), not
    for each block the window moved (requests that a peer's rate limit would refuse)."""
    monkeypatch.setattr(node.sync, "RANGE", 2)
    monkeypatch.setattr(node.sync, "PARALLEL", 1)
    scene = Scene(honest="chain")
    asked: list[int] = []
    peer = scene.hub.nodes[scene.peers["honest"]]
    handler, limit = peer._handlers[scene.blocks_protocol]

    async def counting(sender: PeerId, request: bytes) -> bytes:
        asked.append(loads_canonical(request, "range")[1])
        return await handler(sender, request)

    peer.set_handler(scene.blocks_protocol, counting, max_request_bytes=limit)
    scene.claims[scene.peers["honest"]] = HEIGHTS
    with trio.fail_after(30):
        await scene.sync.catch_up()
    assert scene.behind.height == HEIGHTS
    assert asked == [2] * (HEIGHTS // 2)
