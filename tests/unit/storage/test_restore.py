"""Restoring a snapshot into a new store: the state, proofs and next block as on the
source; a restore interrupted at any step discarded when the store opens again."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain import statekeys
from chain.crypto import address_of
from chain.errors import StorageError
from chain.snapshot import decode_chunk
from chain.statetree import verify_state_proof
from chain.transition import apply_block
from chain.types import Block, Commit
from storage.memory import MemoryKV
from storage.snapshots import SnapshotStore, build_snapshot
from storage.store import Store

from chainkit import LocalChain
from storekit import BACKENDS, GENESIS_HASH, Backend, commit_next, transfers


def source_chain(blocks: int) -> tuple[LocalChain, Store, list[Block], list[Commit]]:
    chain = LocalChain(users=30)
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    made, commits = [], []
    for _ in range(blocks):
        made.append(commit_next(chain, store, transfers(chain, 20)))
        assert chain.last_commit is not None
        commits.append(chain.last_commit)
    return chain, store, made, commits


def restore(store: Store, source: Store, block: Block, commit: Commit) -> None:
    height = source.height
    _manifest, chunks = build_snapshot(height, source.app_hash, source.state.entries())
    restoring = store.begin_restore(height, source.app_hash)
    for raw in chunks:
        restoring.apply_chunk(decode_chunk(raw))
    store.finish_restore(restoring, block, commit, b"priorities")


@pytest.mark.parametrize("kind", BACKENDS)
def test_restore_then_next_block(kind: str, tmp_path: Path) -> None:
    chain, source, blocks, commits = source_chain(12)
    backend = Backend(kind, tmp_path)
    store = Store.open(backend.open(), chain.genesis, GENESIS_HASH)
    restore(store, source, blocks[-1], commits[-1])
    h = source.height
    assert (store.height, store.app_hash) == (h, source.app_hash)
    assert (store.blocks.base, store.state.base) == (h + 1, h)
    assert store.blocks.seen_commit() == commits[-1]
    assert store.consensus_state() == b"priorities"
    assert not store.at_genesis
    with pytest.raises(StorageError, match="cannot restore"):
        store.begin_restore(h, source.app_hash)
    for user in chain.users[:5]:
        key = statekeys.account(address_of(user.public_key))
        value, proof, root = store.state.prove(key, h)
        assert root == source.app_hash
        verify_state_proof(root, key, value, proof)
        assert value is not None and value == source.state.get_at(key, h)
    # The next block applies on the restored state as on the source.
    block = chain.next_block(transfers(chain, 20))
    outcome = apply_block(store.state, store.app_hash, block, chain.config)
    chain.apply(block)
    assert chain.last_commit is not None
    store.commit_block(block, chain.last_commit, outcome)
    source.commit_block(block, chain.last_commit,
                        apply_block(source.state, source.app_hash, block, chain.config))
    assert store.app_hash == source.app_hash == chain.state.app_hash
    assert store.blocks.commit(h) == commits[-1]
    store.close()
    # And reopened, it is the same store.
    reopened = Store.open(backend.open(), chain.genesis, GENESIS_HASH)
    assert (reopened.height, reopened.blocks.base, reopened.app_hash) == (h + 1, h + 1, source.app_hash)
    reopened.close()


def test_restore_refuses_a_wrong_state() -> None:
    chain, source, blocks, commits = source_chain(3)
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    _manifest, chunks = build_snapshot(source.height, source.app_hash, source.state.entries())
    restoring = store.begin_restore(source.height, source.app_hash)
    restoring.apply_chunk(decode_chunk(chunks[0])[1:])
    with pytest.raises(StorageError, match="hashes to"):
        store.finish_restore(restoring, blocks[-1], commits[-1], b"")


def test_restore_only_into_an_empty_store() -> None:
    _chain, source, _, _ = source_chain(2)
    with pytest.raises(StorageError, match="cannot restore"):
        source.begin_restore(5, source.app_hash)


@pytest.mark.parametrize("chunks_written", [0, 1, -1])
def test_interrupted_restore_is_discarded(chunks_written: int, tmp_path: Path) -> None:
    chain, source, blocks, commits = source_chain(5)
    data: dict[bytes, bytes] = {}
    store = Store.open(MemoryKV(data), chain.genesis, GENESIS_HASH)
    genesis_root = store.app_hash
    _, chunks = build_snapshot(source.height, source.app_hash, source.state.entries())
    restoring = store.begin_restore(source.height, source.app_hash)
    for raw in chunks[:chunks_written] if chunks_written >= 0 else chunks:
        restoring.apply_chunk(decode_chunk(raw))
    store.close()  # the crash: the marker is on disk
    reopened = Store.open(MemoryKV(data), chain.genesis, GENESIS_HASH)
    assert (reopened.height, reopened.app_hash) == (chain.genesis.initial_height - 1, genesis_root)
    assert reopened.blocks.base == chain.genesis.initial_height
    # and the restore can start over
    restore(reopened, source, blocks[-1], commits[-1])
    assert reopened.app_hash == source.app_hash


def test_snapshot_store_keeps_the_recent(tmp_path: Path) -> None:
    _chain, source, _, _ = source_chain(2)
    snapshots = SnapshotStore(tmp_path / "snapshots", keep=2)
    for height in (10, 20, 30):
        manifest, chunks = build_snapshot(height, source.app_hash, source.state.entries())
        snapshots.write(manifest, chunks)
    assert [d.height for d in snapshots.descriptors()] == [30, 20]
    assert snapshots.manifest(10) is None and snapshots.chunk(30, 0) == chunks[0]
    assert snapshots.chunk(30, len(chunks)) is None
    (tmp_path / "snapshots" / "40.tmp").mkdir()
    again = SnapshotStore(tmp_path / "snapshots", keep=2)
    assert again.descriptors() == snapshots.descriptors()
    assert not (tmp_path / "snapshots" / "40.tmp").exists()
