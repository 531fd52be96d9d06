"""Four validators' drivers on the node's own chain (store, mempool, block building and
execution in threads), in one process over an in-memory network, on the real clock
with short block times: txs submitted to one node are committed on all, every node
has the same blocks and app hashes, a node that keeps 2 heights of state prunes the
rest, and a node restarted from its store picks the same proposers as the others."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest
import trio

import node.chainstate
from chain.crypto import SignedItem, VerifiedCache, address_of, verify_many_in_background
from chain.errors import InvalidBlock, StorageError
from chain.ledger import Ledger
from chain.params import Params
from chain.state import chain_config
from chain.transition import STOP_EVERY, BlockBuilder, BlockOutcome
from chain.types import Block, Commit, DuplicateVoteEvidence, Transfer, tx_hash
from consensus.driver import Driver
from consensus.equivocation import Equivocator
from consensus.signer import FileSigner
from consensus.wal import Wal
from node.chainstate import NodeChain, decode_priorities, encode_priorities
from node.config import MempoolConfig
from node.mempool import Mempool
from storage.memory import MemoryKV
from storage.store import Store

from chainkit import SEED, LocalChain
from consensuskit import Hub
from storekit import GENESIS_HASH, GatedKV

FAST = Params(epoch_length=5, block_time_ms=100, timeout_propose_ms=1_000, timeout_prevote_ms=300,
              timeout_precommit_ms=300)


def node_chain(local: LocalChain, kv: MemoryKV, keep_heights: int = 0) -> NodeChain:
    store = Store.open(kv, local.genesis, GENESIS_HASH)
    config = chain_config(local.genesis)
    cache = VerifiedCache()
    mempool = Mempool(config, store.state, MempoolConfig(), cache)
    chain = NodeChain(store, local.genesis, config, mempool, cache, keep_heights=keep_heights)

    def recheck(block: Block, outcome: BlockOutcome) -> None:
        mempool.update(outcome.tx_hashes)

    chain.listeners.append(recheck)
    return chain


def driver(local: LocalChain, chain: NodeChain, hub: Hub, index: int, home: Path) -> Driver:
    key = local.validator_keys[index]
    home.mkdir(parents=True, exist_ok=True)
    signer = FileSigner(key, home / "signer.json", local.genesis.chain_id)
    wal = Wal.open(home / "wal", start_height=chain.height)
    made = Driver(chain, hub.network_for(index), wal, signer, address_of(key.public_key),
                  local.genesis.chain_id, local.genesis.params,
                  lambda: local.genesis.genesis_time_ns + int(trio.current_time() * 1e9))
    if index < len(hub.drivers):
        hub.drivers[index] = made
    else:
        hub.drivers.append(made)
    return made


async def test_txs_are_committed_on_every_node_with_the_same_app_hashes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node.chainstate, "PRUNE_EVERY", 2)
    local = LocalChain(validators=4, params=FAST)
    hub = Hub()
    stores = [MemoryKV() for _ in range(4)]
    chains = [node_chain(local, kv, keep_heights=2 if i == 3 else 0) for i, kv in enumerate(stores)]
    drivers = [driver(local, chain, hub, i, tmp_path / f"node{i}") for i, chain in enumerate(chains)]
    users = local.users
    txs = [local.tx(users[i % 4], Transfer(address_of(users[4].public_key), 1 + i)) for i in range(40)]
    await chains[0].mempool.add_many(txs)
    assert len(chains[0].mempool) == 40
    async with trio.open_nursery() as nursery:
        for d in drivers:
            await nursery.start(d.run)
        with trio.fail_after(60):
            while len(chains[0].mempool) or min(c.height for c in chains) < 6:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    height = min(c.height for c in chains)
    for h in range(1, height + 1):
        blocks = [c.store.blocks.block(h) for c in chains]
        assert all(b == blocks[0] for b in blocks), f"nodes differ at height {h}"
    assert len({c.store.app_hash for c in chains if c.height == height}) == 1
    for tx in txs:
        assert all(c.store.txs.get(tx_hash(tx)) is not None for c in chains)
    assert chains[3].store.state.base >= chains[3].height - 3 > chains[0].store.state.base  # pruned

    # A node restarted from its store continues with the same proposer priorities.
    restarted = node_chain(local, stores[1])
    next_height = restarted.height + 1
    assert restarted.priorities(next_height) == chains[1].priorities(next_height)
    stored = chains[1].store.consensus_state()
    assert stored is not None and encode_priorities(decode_priorities(stored)) == stored


def test_priorities_round_trip() -> None:
    local = LocalChain(validators=3)
    chain = node_chain(local, MemoryKV())
    first = chain.priorities(1)
    assert decode_priorities(encode_priorities(first)) == first


async def test_proposals_halve_each_round_and_grow_while_round_0_proposals_are_decided(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load, a proposal too large to reach the others in time makes its round fail;
    the next round's is half as large, and the budget follows what gets decided: a
    quarter less after a height decided in round 0 but late."""
    monkeypatch.setattr(node.chainstate, "MIN_PROPOSAL_BYTES", 1_000)
    local = LocalChain(validators=1)
    chain = node_chain(local, MemoryKV())
    assert chain.proposal_bytes == node.chainstate.FIRST_PROPOSAL_BYTES
    chain.proposal_bytes = 8_000
    users = local.users
    txs = [local.tx(users[i % 4], Transfer(address_of(users[4].public_key), 1)) for i in range(1_000)]
    await chain.mempool.add_many(txs)
    me = address_of(local.validator_keys[0].public_key)

    sizes = [sum(map(len, (await chain.build_block(r, me, [])).txs)) for r in range(5)]
    largest_tx = max(map(len, txs))
    for round_, size in enumerate(sizes):
        limit = max(1_000, 8_000 >> round_)
        assert limit - largest_tx < size <= limit, (round_, sizes)

    propose_s = local.genesis.params.timeout_propose_ms / 1000
    block = await chain.build_block(0, me, [])
    await chain.commit(block, local.sign_commit(block), 0.6 * propose_s)  # round 0, not quick enough
    assert chain.proposal_bytes == 8_000
    block = await chain.build_block(0, me, [])
    await chain.commit(block, local.sign_commit(block), 0.4 * propose_s)  # round 0, quick, half full
    assert chain.proposal_bytes == 16_000
    block = await chain.build_block(0, me, [])
    await chain.commit(block, local.sign_commit(block), 1.1 * propose_s)  # round 0, but slow
    assert chain.proposal_bytes == 12_000
    sizes = []
    for _ in range(2):  # quick again: past half the budget that was slow, a quarter more each time
        block = await chain.build_block(0, me, [])
        await chain.commit(block, local.sign_commit(block), 0.4 * propose_s)
        sizes.append(chain.proposal_bytes)
    assert sizes == [15_000, 18_750]
    block = await chain.build_block(2, me, [])
    await chain.commit(block, dataclasses.replace(local.sign_commit(block), round=2))
    assert chain.proposal_bytes == 4_687  # what was decided


async def test_after_a_round_that_failed_for_its_block_the_budget_grows_slowly_past_half_of_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node.chainstate, "MIN_PROPOSAL_BYTES", 1_000)
    local = LocalChain(validators=1)
    chain = node_chain(local, MemoryKV())
    chain.proposal_bytes = 8_000
    users = local.users
    await chain.mempool.add_many([local.tx(users[i % 4], Transfer(address_of(users[4].public_key), 1))
                                  for i in range(1_000)])
    me = address_of(local.validator_keys[0].public_key)
    propose_s = local.genesis.params.timeout_propose_ms / 1000
    block = await chain.build_block(2, me, [])  # round 0 and 1 failed with 8,000 bytes
    await chain.commit(block, local.sign_commit(block, round_=2))
    sizes = [chain.proposal_bytes]
    for _ in range(3):
        block = await chain.build_block(0, me, [])
        await chain.commit(block, local.sign_commit(block), 0.4 * propose_s)
        sizes.append(chain.proposal_bytes)
    assert sizes == [2_000, 4_000, 8_000, 10_000]


async def test_an_equivocating_validator_is_caught_slashed_and_jailed_while_the_others_agree(
        tmp_path: Path) -> None:
    """Validator 3 signs a twin of every vote and proposal: the others commit the same
    blocks, the next proposers commit its duplicate votes as evidence (never of their
    own height, never twice), and the chain slashes and jails it."""
    local = LocalChain(validators=4, params=dataclasses.replace(FAST, epoch_length=1_000))
    hub = Hub()
    chains = [node_chain(local, MemoryKV()) for _ in range(4)]
    drivers = [driver(local, chain, hub, i, tmp_path / f"node{i}") for i, chain in enumerate(chains)]
    byzantine = local.validator_keys[3]
    drivers[3].network = Equivocator(drivers[3].network, byzantine, local.genesis.chain_id)
    async with trio.open_nursery() as nursery:
        for d in drivers:
            await nursery.start(d.run)
        with trio.fail_after(60):
            while min(c.height for c in chains) < 6:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    height = min(c.height for c in chains)
    evidence: list[DuplicateVoteEvidence] = []
    for h in range(1, height + 1):
        blocks = [c.store.blocks.block(h) for c in chains]
        assert all(b == blocks[0] for b in blocks), f"nodes differ at height {h}"
        block = blocks[0]
        assert block is not None
        assert all(e.vote_a.height < h for e in block.evidence)
        evidence += block.evidence
    culprit = address_of(byzantine.public_key)
    assert evidence and all(e.vote_a.validator_address == culprit for e in evidence)
    marks = {(e.vote_a.height, e.vote_a.round, e.vote_a.type) for e in evidence}
    assert len(marks) == len(evidence), "a double sign punished twice"
    ledger = Ledger(chains[0].store.state)
    operator = ledger.operator_of(culprit)
    assert operator is not None
    validator = ledger.validator(operator)
    assert validator is not None and validator.jailed_until_epoch > 0
    assert validator.bond < 2_000 * SEED  # LocalChain's bond


async def test_a_proposer_out_of_time_proposes_the_txs_it_could_check() -> None:
    """A block built under a time limit that runs out takes the txs executed until then
    (a few hundred at least), not all the budget allows: late, the whole proposal would
    fail its round."""
    local = LocalChain(validators=1)
    chain = node_chain(local, MemoryKV())
    users = local.users
    txs = [local.tx(users[i % 4], Transfer(address_of(users[4].public_key), 1)) for i in range(2_000)]
    await chain.mempool.add_many(txs)
    me = address_of(local.validator_keys[0].public_key)
    hurried = await chain.build_block(0, me, [], within_s=0.0)
    assert len(hurried.txs) == STOP_EVERY
    assert len((await chain.build_block(0, me, [], within_s=60.0)).txs) == 2_000
    assert await chain.validate(hurried)


async def test_a_block_whose_signatures_were_checked_ahead_executes_without_checking_them_again() -> None:
    """Sync checks the tx signatures of the blocks that follow while one executes
    (``NodeChain.precheck``): those that verify are remembered, and the block then
    executes without a signature check; a forged signature is not remembered."""
    local = LocalChain(validators=1)
    users = local.users
    checked: list[int] = []

    def counting(items: Sequence[SignedItem]) -> Future[list[bool]]:
        checked.append(len(items))
        return verify_many_in_background(items)

    store = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
    config = chain_config(local.genesis)
    cache = VerifiedCache()
    chain = NodeChain(store, local.genesis, config, Mempool(config, store.state, MempoolConfig(), cache),
                      cache, counting)
    txs = [local.tx(users[i % 4], Transfer(address_of(users[4].public_key), 1)) for i in range(40)]
    block = local.next_block(txs)
    local.apply(block)
    assert local.last_commit is not None

    forged = txs[0][:-1] + bytes([txs[0][-1] ^ 1])
    await trio.to_thread.run_sync(chain.precheck, dataclasses.replace(block, txs=(forged, *block.txs[1:])))
    assert checked == [40]
    assert tx_hash(forged) not in cache and tx_hash(txs[0]) not in cache
    assert all(tx_hash(raw) in cache for raw in txs[1:])

    await trio.to_thread.run_sync(chain.precheck, block)
    assert checked == [40, 1]  # only the one not remembered yet
    await chain.apply_synced(block, local.last_commit)
    await chain.settle()
    assert sum(checked) == 41 and chain.height == 1  # executed: no signature checked again


def synced_blocks(local: LocalChain, count: int) -> list[tuple[Block, Commit]]:
    """``count`` blocks of ``local``'s, each of transfers from four users, with their commits."""
    users = local.users
    blocks = []
    for i in range(count):
        block = local.next_block([local.tx(users[j], Transfer(address_of(users[4].public_key), 1 + i))
                                  for j in range(4)])
        local.apply(block)
        assert local.last_commit is not None
        blocks.append((block, local.last_commit))
    return blocks


async def test_a_synced_block_executes_while_the_one_before_is_written(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Block 2 executes over block 1's state while block 1 is still being written (its
    txs' nonces follow block 1's); each block's listeners are told once it is written,
    in order, and the state is the one the blocks make."""
    local = LocalChain(validators=1)
    kv = GatedKV()
    chain = node_chain(local, kv)
    told: list[int] = []
    chain.listeners.append(lambda block, outcome: told.append(block.header.height))
    executed: list[int] = []
    execute = chain._execute

    def recorded(block: Block) -> BlockOutcome:
        outcome = execute(block)
        executed.append(block.header.height)
        return outcome

    monkeypatch.setattr(chain, "_execute", recorded)
    blocks = synced_blocks(local, 3)
    kv.gate.clear()
    await chain.apply_synced(*blocks[0])
    assert (chain.tip, chain.height, told) == (1, 0, [])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(chain.apply_synced, *blocks[1]))
        with trio.fail_after(30):
            while executed != [1, 2]:
                await trio.sleep(0.01)
        assert (chain.tip, chain.height, told) == (1, 0, [])  # block 1 not written yet
        kv.gate.set()
    assert (chain.tip, told) == (2, [1])
    await chain.apply_synced(*blocks[2])
    await chain.settle()
    assert (chain.tip, chain.height, told) == (3, 3, [1, 2, 3])
    assert chain.store.app_hash == local.state.app_hash
    with pytest.raises(InvalidBlock, match="block 3 does not follow height 3"):
        await chain.apply_synced(*blocks[2])


async def test_a_synced_block_whose_write_fails_is_not_told_and_stops_the_store() -> None:
    local = LocalChain(validators=1)
    kv = GatedKV()
    chain = node_chain(local, kv)
    told: list[int] = []
    chain.listeners.append(lambda block, outcome: told.append(block.header.height))
    blocks = synced_blocks(local, 1)
    kv.failing = True
    await chain.apply_synced(*blocks[0])
    with pytest.raises(StorageError, match="cannot write block 1: disk full"):
        await chain.settle()
    assert (chain.tip, chain.height, told) == (0, 0, [])
    with pytest.raises(StorageError, match=r"the store failed earlier .* restart the node"):
        await chain.make_durable()


async def test_a_block_built_here_is_committed_with_the_outcome_of_its_build(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The proposer executes its block's txs as it chooses them; committing that block
    executes nothing again, and leaves the state that applying the block gives."""
    local = LocalChain(validators=1)
    chain = node_chain(local, MemoryKV())
    users = local.users
    txs = [local.tx(users[i % 4], Transfer(address_of(users[4].public_key), 1 + i)) for i in range(300)]
    await chain.mempool.add_many(txs)
    me = address_of(local.validator_keys[0].public_key)
    built = await chain.build_block(0, me, [])
    executed: list[int] = []
    monkeypatch.setattr(chain, "_execute", lambda block: executed.append(block.header.height))
    local.apply(built)
    assert local.last_commit is not None
    await chain.commit(built, local.last_commit)
    assert executed == [] and chain.height == 1 and len(built.txs) == 300
    assert chain.store.app_hash == local.state.app_hash
    assert len(chain.mempool) == 0


async def test_outcomes_kept_for_commits_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proposer building a block in each of many rounds keeps the outcomes of the last
    ``KEEP_OUTCOMES`` only: committing the last block built executes nothing, committing
    the first executes it."""
    local = LocalChain(validators=1)
    users = local.users
    me = address_of(local.validator_keys[0].public_key)
    chains = [node_chain(local, MemoryKV()) for _ in range(2)]
    executed: list[int] = []
    for chain in chains:
        def counting(block: Block, real: Callable[[Block], BlockOutcome] = chain._execute) -> BlockOutcome:
            executed.append(block.header.height)
            return real(block)
        monkeypatch.setattr(chain, "_execute", counting)
    built: list[list[Block]] = [[], []]
    for round_ in range(node.chainstate.KEEP_OUTCOMES + 1):  # a tx more each round: another block
        tx = local.tx(users[0], Transfer(address_of(users[4].public_key), 1))
        for chain, blocks in zip(chains, built, strict=True):
            await chain.mempool.add_many([tx])
            blocks.append(await chain.build_block(round_, me, []))
    last, first = built[0][-1], built[1][0]
    commit = local.sign_commit(last)
    await chains[0].commit(last, commit)
    assert executed == []
    await chains[1].commit(first, local.sign_commit(first))
    assert executed == [1]


async def test_the_expected_build_time_scales_the_last_build_by_the_txs_pending() -> None:
    """What the driver's build ahead waits on: the last build's time, times the txs a
    build would carry now over those the last one took (the mempool only, within the
    budget); the last build's time alone when it took none or nothing is pending."""
    local = LocalChain(validators=1)
    chain = node_chain(local, MemoryKV())
    users = local.users
    me = address_of(local.validator_keys[0].public_key)
    assert chain.build_estimate_s() == 0.0
    to = address_of(users[4].public_key)
    await chain.mempool.add_many([local.tx(users[i % 4], Transfer(to, 1)) for i in range(200)])
    built = await chain.build_block(0, me, [])
    seconds, took = chain._last_build
    assert took == len(built.txs) == 200 and seconds > 0
    assert chain.build_estimate_s() == pytest.approx(seconds)  # the same 200 still pending
    await chain.mempool.add_many([local.tx(users[i % 4], Transfer(to, 1)) for i in range(200)])
    assert chain.build_estimate_s() == pytest.approx(2 * seconds)

    capped = LocalChain(validators=1, params=Params(max_block_txs=100))
    chain = node_chain(capped, MemoryKV())
    await chain.mempool.add_many([capped.tx(capped.users[i % 4], Transfer(to, 1)) for i in range(300)])
    assert len((await chain.build_block(0, me, [])).txs) == 100
    assert chain.build_estimate_s() == pytest.approx(chain._last_build[0])  # 300 pending, 100 carried


async def with_transfers_pending(local: LocalChain, count: int) -> tuple[NodeChain, bytes]:
    """A node chain of ``local`` whose mempool holds ``count`` transfers, and the address
    of ``local``'s first validator."""
    chain = node_chain(local, MemoryKV())
    to = address_of(local.users[4].public_key)
    await chain.mempool.add_many([local.tx(local.users[i % 4], Transfer(to, 1)) for i in range(count)])
    return chain, address_of(local.validator_keys[0].public_key)


def record_offers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of candidates of each :meth:`BlockBuilder.offer` from now on."""
    offers: list[int] = []
    real = BlockBuilder.offer

    def recording(self: BlockBuilder, candidates: Sequence[bytes],
                  stop: Callable[[], bool] | None = None) -> None:
        offers.append(len(candidates))
        real(self, candidates, stop)

    monkeypatch.setattr(BlockBuilder, "offer", recording)
    return offers


async def test_a_block_built_meanwhile_executes_the_txs_as_they_arrive(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The next height's round-0 proposer executes the pending txs, then those admitted
    after, while it waits for its height; its build then executes only those admitted
    since and seals the block: the block a build from scratch makes (first come, first
    served), committed without executing it again, with the state applying it gives."""
    local = LocalChain(validators=1)
    chain, scratch = node_chain(local, MemoryKV()), node_chain(local, MemoryKV())
    users, me = local.users, address_of(local.validator_keys[0].public_key)
    to = address_of(users[4].public_key)
    batches = [[local.tx(users[i % 4], Transfer(to, 1 + i)) for i in range(n)] for n in (100, 60, 30)]
    offers = record_offers(monkeypatch)
    await chain.mempool.add_many(batches[0])
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(chain.build_meanwhile, me, [])
            while offers != [100]:
                await trio.sleep(0.01)
            await chain.mempool.add_many(batches[1])
            while offers != [100, 60]:
                await trio.sleep(0.01)
            await chain.mempool.add_many(batches[2])  # not taken before the build
            nursery.cancel_scope.cancel()
    built = await chain.build_block(0, me, [])
    assert offers == [100, 60, 30]
    everything = [tx for batch in batches for tx in batch]
    await scratch.mempool.add_many(everything)
    assert built.txs == tuple(everything)
    assert built.block_id() == (await scratch.build_block(0, me, [])).block_id()
    monkeypatch.setattr(chain, "_execute", lambda block: pytest.fail("executed again"))
    local.apply(built)
    assert local.last_commit is not None
    await chain.commit(built, local.last_commit)
    assert chain.store.app_hash == local.state.app_hash and len(chain.mempool) == 0


@pytest.mark.parametrize("other", ["round 1", "another proposer", "new evidence", "a commit"])
async def test_a_block_built_meanwhile_is_not_the_one_asked_for(
        monkeypatch: pytest.MonkeyPatch, other: str) -> None:
    """A build for another round, proposer or evidence than the block built meanwhile's,
    or after a commit, builds from scratch; and the mempool stops handing on its txs."""
    local = LocalChain(validators=2)
    chain, me = await with_transfers_pending(local, 20)
    offers = record_offers(monkeypatch)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(chain.build_meanwhile, me, [])
            while offers != [20]:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    round_, proposer, evidence = 0, me, []
    if other == "round 1":
        round_ = 1
    elif other == "another proposer":
        proposer = address_of(local.validator_keys[1].public_key)
    elif other == "new evidence":
        evidence = [local.double_sign(0, 1)]
    else:
        block = local.next_block([])
        local.apply(block)
        assert local.last_commit is not None
        await chain.commit(block, local.last_commit)
        assert chain.mempool.arrivals is None
    await chain.build_block(round_, proposer, evidence)
    assert offers == [20, 20] and chain.mempool.arrivals is None


async def test_a_block_built_meanwhile_executes_a_few_txs_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """What was pending is executed ``TAKE_AT_ONCE`` txs at a time: a build that takes
    the block waits for one such trip at most, and the rest is executed by the build."""
    monkeypatch.setattr(node.chainstate, "TAKE_AT_ONCE", 40)
    chain, me = await with_transfers_pending(LocalChain(validators=1), 100)
    offers = record_offers(monkeypatch)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(chain.build_meanwhile, me, [])
            while not offers:
                await trio.sleep(0)
            nursery.cancel_scope.cancel()
    assert offers[0] == 40
    built = await chain.build_block(0, me, [])
    assert len(built.txs) == 100 and sum(offers) == 100 and max(offers) <= 100 - 40


async def test_a_block_built_meanwhile_stops_once_full(monkeypatch: pytest.MonkeyPatch) -> None:
    chain, me = await with_transfers_pending(LocalChain(validators=1, params=Params(max_block_txs=100)), 150)
    offers = record_offers(monkeypatch)
    with trio.fail_after(10):
        await chain.build_meanwhile(me, [])  # returns by itself
    assert offers == [150] and chain.mempool.arrivals is None
    assert len((await chain.build_block(0, me, [])).txs) == 100
    assert offers == [150, 0]


@pytest.mark.parametrize(("bonds", "alone"), [((1,), True), ((1, 1, 1, 1), False), ((50, 1), True)])
async def test_a_validator_that_decides_alone_proposes_up_to_the_block_limit(
        bonds: tuple[int, ...], alone: bool) -> None:
    """No other validator's execution can hold up a height whose proposer holds more
    than 2/3 of the power: its budget is the block limit from the first height (and its
    clients are refused only past twice that), where the others' budget starts small."""
    local = LocalChain(validators=len(bonds))
    genesis = dataclasses.replace(local.genesis, validators=tuple(
        dataclasses.replace(v, bond=v.bond * times) for v, times in zip(local.genesis.validators, bonds,
                                                                        strict=True)))
    store = Store.open(MemoryKV(), genesis, GENESIS_HASH)
    config = chain_config(genesis)
    cache = VerifiedCache()
    mempool = Mempool(config, store.state, MempoolConfig(), cache)
    chains = [NodeChain(store, genesis, config, mempool, cache, address=address_of(k.public_key))
              for k in local.validator_keys]
    powers = [m.power for m in chains[0].members(1)]
    assert (3 * max(powers) > 2 * sum(powers)) is alone
    first, limit = node.chainstate.FIRST_PROPOSAL_BYTES, genesis.params.max_block_bytes
    assert chains[0].decides_alone() is alone
    assert chains[0].proposal_limit(0) == (limit if alone else first)
    assert chains[0].proposal_limit(1) == (limit if alone else first >> 1)
    assert not any(chain.decides_alone() for chain in chains[1:])
    assert all(chain.proposal_limit(1) == first >> 1 for chain in chains[1:])
