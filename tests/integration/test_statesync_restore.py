"""State sync over the in-memory network: a node at genesis restores a peer's snapshot,
verified from the genesis validator set across a set change (or from a trusted height
and hash), bans a peer that serves a corrupted chunk or a header of another set, and
then applies the next blocks to the source's state roots and proposer priorities."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

import storage.snapshots
from chain import snapshot as snapshot_rules
from chain.codec import dumps, loads_canonical
from chain.commits import validators_hash
from chain.crypto import VerifiedCache
from chain.ledger import Ledger
from chain.lightblock import LightBlock
from chain.params import Params
from chain.snapshot import Descriptor
from chain.types import Block, Bond, Commit, SetMember, ValidatorRegister
from chain.validatorsets import validator_set_at
from node.chainstate import NodeChain
from node.config import ConfigError, MempoolConfig, StateSyncConfig
from node.mempool import Mempool
from node.statesync import StateSync, StateSyncError, priorities_at
from p2p.blocks import Announcement, BlockExchange
from p2p.memory import MemoryHub
from p2p.network import Validation
from p2p.peers import PeerId
from p2p.snapshots import SnapshotExchange
from storage.memory import MemoryKV
from storage.snapshots import SnapshotStore, build_snapshot
from storage.store import Store

from chainkit import SEED, LocalChain, key, sign_commit
from storekit import GENESIS_HASH, transfers

SNAPSHOT_HEIGHT = 24
HEIGHTS = 30
EPOCH = 5


def node_chain(store: Store, local: LocalChain) -> NodeChain:
    verified = VerifiedCache()
    return NodeChain(store, local.genesis, local.config,
                     Mempool(local.config, store.state, MempoolConfig(), verified), verified)


@dataclasses.dataclass
class Source:
    """What a peer serves: its blocks, light blocks and snapshots; ``lie`` says how it
    lies ("chunk": a value changed in every chunk; "header": light blocks signed by a set
    of its own; "list": a snapshot of its own listed first, at a height below the tip;
    "repeat": each snapshot listed three times)."""

    store: Store
    config: object
    snapshots: SnapshotStore
    lie: str = ""

    def encoded_block(self, height: int) -> bytes | None:
        return self.store.blocks.encoded_block(height)

    def encoded_commit(self, height: int) -> bytes | None:
        return self.store.blocks.encoded_commit(height)

    def block_by_id(self, block_id: bytes) -> Block | None:
        return self.store.blocks.block_by_id(block_id)

    def descriptors(self) -> list[Descriptor]:
        made_up = [Descriptor(HEIGHTS - 2, snapshot_rules.FORMAT, 1, bytes(32))] if self.lie == "list" else []
        repeated = 3 if self.lie == "repeat" else 1
        return made_up + self.snapshots.descriptors() * repeated

    def manifest(self, height: int) -> bytes | None:
        return self.snapshots.manifest(height)

    def chunk(self, height: int, index: int) -> bytes | None:
        raw = self.snapshots.chunk(height, index)
        if raw is None or self.lie != "chunk":
            return raw
        pairs = loads_canonical(raw, "chunk")
        pairs[len(pairs) // 2][1] += b"\x00"
        return dumps(pairs)

    def light_block(self, height: int) -> LightBlock | None:
        block, commit = self.store.blocks.block(height), self.store.blocks.commit(height)
        if block is None or commit is None:
            return None
        members = validator_set_at(Ledger(self.store.state), height, self.config)  # type: ignore[arg-type]
        if self.lie != "header":
            return LightBlock(block.header, commit, tuple(members))
        forger = key(777)
        fake = (SetMember(forger.public_key, 10),)
        forged = dataclasses.replace(block, header=dataclasses.replace(block.header,
                                                                       validators_hash=validators_hash(fake)))
        forged_commit = sign_commit(block.header.chain_id, {forger.public_key: forger}, fake, forged)
        return LightBlock(forged.header, forged_commit, fake)


async def ignore(_: PeerId, __: Announcement) -> Validation:
    return Validation.IGNORE


class Scene:
    """A chain of ``HEIGHTS`` blocks whose validator set changes (a newcomer bonds in
    block 1 and joins at the first epoch end), a snapshot of ``SNAPSHOT_HEIGHT``, and a
    new node at genesis connected to one peer per ``lie`` ("" for an honest one)."""

    def __init__(self, tmp_path: Path, local: LocalChain, store: Store, blocks: list[tuple[Block, Commit]],
                 priorities: dict[int, bytes], lies: dict[str, str]) -> None:
        self.local, self.source, self.blocks, self.priorities = local, store, blocks, priorities
        self.hub = MemoryHub()
        self.me = self.hub.join("me")
        self.peers: dict[str, PeerId] = {}
        snapshots = SnapshotStore(tmp_path / "snapshots", keep=2)
        chain_id = local.config.chain_id
        for name, lie in lies.items():
            peer = self.hub.join(name)
            self.hub.connect(self.me.local_id, peer.local_id)
            served = Source(store, local.config, snapshots, lie)
            SnapshotExchange(peer, chain_id, served)
            BlockExchange(peer, chain_id, served, ignore, max_block_bytes=1 << 22)
            self.peers[name] = peer.local_id
        self.heights = {peer: HEIGHTS for peer in self.peers.values()}
        """The peers' heights, as their status would say."""
        self.store = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
        self.chain = node_chain(self.store, local)
        empty = Source(self.store, local.config, SnapshotStore(tmp_path / "mine", keep=1))
        self.exchange = SnapshotExchange(self.me, chain_id, empty)
        self.block_exchange = BlockExchange(self.me, chain_id, empty, ignore, max_block_bytes=1 << 22)

    def statesync(self, *, after_s: float = 3600, **settings: object) -> StateSync:
        """A StateSync whose clock reads ``after_s`` after the genesis time (``self.after_s``
        once made: a test moves it on)."""
        self.after_s = after_s
        return StateSync(self.chain, self.exchange, self.block_exchange, self.me, lambda: dict(self.heights),
                         StateSyncConfig(enable=True, **settings),  # type: ignore[arg-type]
                         clock_ns=lambda: self.local.genesis.genesis_time_ns + int(self.after_s * 10**9))

    def banned(self, name: str) -> bool:
        return self.me.book.is_banned(self.peers[name], self.hub.clock())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalChain, Store, list[tuple[Block, Commit]],
                                                            dict[int, bytes], Path]:
    local = LocalChain(users=40, params=Params(epoch_length=EPOCH))
    newcomer, consensus = local.users[0], key(4242)
    local.add_signer(consensus)
    store = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
    chain = node_chain(store, local)
    blocks: list[tuple[Block, Commit]] = []
    priorities: dict[int, bytes] = {}
    directory = tmp_path_factory.mktemp("source")

    async def build() -> None:
        for height in range(1, HEIGHTS + 1):
            txs = transfers(local, 10, ) if height > 1 else [
                local.tx(newcomer, ValidatorRegister(consensus.public_key, "newcomer")),
                local.tx(newcomer, Bond(4_000 * SEED))]
            block = local.next_block(txs)
            local.apply(block)
            assert local.last_commit is not None
            await chain.apply_synced(block, local.last_commit)
            await chain.settle()
            blocks.append((block, local.last_commit))
            stored = store.consensus_state()
            assert stored is not None
            priorities[height] = stored
            if height == SNAPSHOT_HEIGHT:
                with pytest.MonkeyPatch.context() as patch:  # small chunks: every peer is asked for some
                    patch.setattr(storage.snapshots, "CHUNK_TARGET_BYTES", 512)
                    patch.setattr(snapshot_rules, "PREFIX_TARGET_BYTES", 256)
                    manifest, chunks = build_snapshot(height, store.app_hash, store.state.entries())
                assert len(chunks) >= 8
                SnapshotStore(directory / "snapshots", keep=2).write(manifest, chunks)

    trio.run(build)
    assert local.members(EPOCH + 2) != local.members(1)  # the set changed
    return local, store, blocks, priorities, directory


def scene(built, **lies: str) -> Scene:  # type: ignore[no-untyped-def]
    local, store, blocks, priorities, directory = built
    return Scene(directory, local, store, blocks, priorities, lies)


async def test_restore_from_genesis_trust_then_follow(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, evil="chunk", honest="")
    statesync = s.statesync()
    with trio.fail_after(30):
        await statesync.run()
    h = SNAPSHOT_HEIGHT
    assert (s.store.height, s.store.blocks.base) == (h, h + 1)
    assert s.store.app_hash == s.blocks[h][0].header.app_hash  # header h + 1 commits to it
    assert s.store.consensus_state() == s.priorities[h]  # recomputed from the state's sets
    assert s.banned("evil") and not s.banned("honest")
    await s.statesync().run()  # restored: a second run (a restart) leaves it as it is
    assert s.store.height == h
    # The next blocks apply as on the source: roots and priorities alike.
    for block, commit in s.blocks[h:]:
        await s.chain.apply_synced(block, commit)
        await s.chain.settle()
        assert s.store.consensus_state() == s.priorities[block.header.height]
    assert s.store.app_hash == s.source.app_hash


async def test_restore_from_a_trusted_height(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, honest="")
    trusted = s.blocks[19][0]  # height 20, after the set change
    statesync = s.statesync(trust_height=20, trust_hash=trusted.block_id().hex())
    with trio.fail_after(30):
        await statesync.run()
    assert s.store.height == SNAPSHOT_HEIGHT


async def test_trust_hash_mismatch_refused(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, honest="")
    statesync = s.statesync(trust_height=20, trust_hash=s.blocks[18][0].block_id().hex())
    with pytest.raises(Exception, match="trusted hash"):
        await statesync.anchor()
    with trio.move_on_after(1):
        await statesync.run()  # keeps looking, restores nothing
    assert s.store.height == 0 and statesync.restored_height is None


async def test_trust_period_expired_refused(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, honest="")
    statesync = s.statesync(trust_height=20, trust_hash=s.blocks[19][0].block_id().hex(), trust_period="30m")
    with pytest.raises(StateSyncError, match="trust_period"):
        await statesync.anchor()


async def test_genesis_older_than_the_trust_period_refused_at_start(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, honest="")
    with pytest.raises(StateSyncError, match=r"statesync\.trust_height and statesync\.trust_hash"):
        s.statesync(after_s=2 * 3600, trust_period="1h")
    s.statesync(after_s=2 * 3600, trust_period="3h")  # younger than the trust period: used


async def test_trust_height_below_the_initial_height_refused_at_start(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, honest="")
    s.chain.config = dataclasses.replace(s.chain.config, initial_height=10)
    with pytest.raises(ConfigError, match=r"statesync\.trust_height: 9 is below the chain's initial height"):
        s.statesync(trust_height=9, trust_hash=s.blocks[8][0].block_id().hex())


async def test_anchor_rechecked_against_the_trust_period_at_each_use(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, honest="")
    statesync = s.statesync(after_s=3600, trust_period="2h")
    await statesync.anchor()
    s.after_s = 3 * 3600  # the genesis anchor aged while in use
    with pytest.raises(StateSyncError, match=r"genesis is 3\.0 h old"):
        await statesync.verified_header(SNAPSHOT_HEIGHT + 1)
    trusted = s.statesync(trust_height=20, trust_hash=s.blocks[19][0].block_id().hex(), trust_period="2h")
    await trusted.anchor()
    s.after_s = 4 * 3600
    with pytest.raises(StateSyncError, match="trusted header"):
        await trusted.anchor()


async def test_light_client_across_a_set_change_bans_a_header_of_another_set(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, forger="header")
    statesync = s.statesync()
    with pytest.raises(Exception, match="no peer serves a verifiable header"):
        await statesync.verified_header(SNAPSHOT_HEIGHT + 1)
    assert s.banned("forger")
    honest = scene(built, honest="")
    light = await honest.statesync().verified_header(SNAPSHOT_HEIGHT + 1)
    assert light.header == honest.blocks[SNAPSHOT_HEIGHT][0].header


async def test_snapshots_at_or_above_the_listers_height_ignored_above_penalized(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, honest="")
    honest = s.peers["honest"]
    statesync = s.statesync()
    s.heights[honest] = SNAPSHOT_HEIGHT  # its header SNAPSHOT_HEIGHT + 1 is not made yet
    assert await statesync.discover() == [] and s.me.score(honest) == 0
    s.heights[honest] = SNAPSHOT_HEIGHT - 1  # listed above the height it reports
    assert await statesync.discover() == [] and s.me.score(honest) < 0
    del s.heights[honest]  # its status not known yet: not asked
    assert await statesync.discover() == []
    s.heights[honest] = SNAPSHOT_HEIGHT + 1
    assert [c.descriptor.height for c in await statesync.discover()] == [SNAPSHOT_HEIGHT]


async def test_span_ends_verified_once_for_every_candidate(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, honest="")
    statesync = s.statesync()
    asked: list[int] = []
    fetch = s.exchange.fetch_light_block

    async def counted(peer: PeerId, height: int, set_hash: bytes | None = None) -> LightBlock | None:
        asked.append(height)
        return await fetch(peer, height, set_hash)

    s.exchange.fetch_light_block = counted  # type: ignore[method-assign]
    await statesync.verified_header(SNAPSHOT_HEIGHT + 1)
    assert len(asked) > 2  # the span ends, then the header
    asked.clear()
    await statesync.verified_header(SNAPSHOT_HEIGHT + 2)
    await statesync.verified_header(SNAPSHOT_HEIGHT - 3)
    assert asked == [SNAPSHOT_HEIGHT + 2, SNAPSHOT_HEIGHT - 3]  # no span end again


async def test_a_snapshot_that_failed_verification_is_not_tried_again(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, liar="list")
    statesync = s.statesync()
    made_up = await statesync.discover()
    assert [c.descriptor.height for c in made_up] == [HEIGHTS - 2, SNAPSHOT_HEIGHT]
    with pytest.raises(Exception, match="no peer served the manifest"):
        await statesync.restore(made_up[0])
    assert [c.descriptor.height for c in await statesync.discover()] == [SNAPSHOT_HEIGHT]


async def test_a_peer_listing_a_snapshot_again_is_one_holder(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, repeater="repeat", honest="")
    candidates = await s.statesync().discover()
    assert [len(c.holders) for c in candidates] == [2]


async def test_a_header_of_another_set_costs_no_signature_check(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, forger="header")
    checked: list[int] = []
    check = LightBlock.check

    def counted(self: LightBlock, chain_id: str, height: int) -> None:
        checked.append(height)
        check(self, chain_id, height)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LightBlock, "check", counted)
        with pytest.raises(Exception, match="no peer serves a verifiable header"):
            await s.statesync().verified_header(SNAPSHOT_HEIGHT + 1)
    assert s.banned("forger") and checked == []


def test_priorities_from_state_match_the_chain(built) -> None:  # type: ignore[no-untyped-def]
    local, store, _, priorities, _ = built
    from node.chainstate import encode_priorities
    for height in (1, 2, EPOCH + 1, EPOCH + 2, HEIGHTS):
        assert encode_priorities(priorities_at(store.state, height, local.config)) == priorities[height]


async def test_node_with_blocks_skips_state_sync(built) -> None:  # type: ignore[no-untyped-def]
    s = scene(built, honest="")
    block, commit = s.blocks[0]
    await s.chain.apply_synced(block, commit)
    await s.chain.settle()
    await s.statesync().run()  # returns at once
    assert s.store.height == 1
