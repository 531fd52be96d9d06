"""The RPC of a node that joined by state sync: the heights below the lowest it holds
are refused with an error naming that height, the ones above answered as usual."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from chain.crypto import VerifiedCache
from chain.snapshot import decode_chunk
from chain.transition import apply_block
from chain.types import tx_hash
from node.chainstate import NodeChain
from node.config import MempoolConfig
from node.mempool import Mempool
from node.rpc.methods import Methods, RpcError
from storage.memory import MemoryKV
from storage.snapshots import build_snapshot
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH, commit_next, transfers

SNAPSHOT = 6


def restored(blocks_after: int) -> tuple[Methods, list[bytes], int]:
    """The RPC of a store restored from a snapshot of height ``SNAPSHOT`` that then
    applied ``blocks_after`` blocks; the txs before the snapshot; the lowest height held."""
    local = LocalChain(users=10)
    source = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
    old_txs = []
    for _ in range(SNAPSHOT):
        txs = transfers(local, 3)
        old_txs += txs
        commit_next(local, source, txs)
    anchor = source.blocks.block(SNAPSHOT)
    seen = source.blocks.seen_commit()
    assert anchor is not None and seen is not None
    store = Store.open(MemoryKV(), local.genesis, GENESIS_HASH)
    _, chunks = build_snapshot(SNAPSHOT, source.app_hash, source.state.entries())
    restore = store.begin_restore(SNAPSHOT, source.app_hash)
    for raw in chunks:
        restore.apply_chunk(decode_chunk(raw))
    store.finish_restore(restore, anchor, seen, b"")
    for _ in range(blocks_after):
        block = local.next_block(transfers(local, 3))
        outcome = apply_block(store.state, store.app_hash, block, local.config)
        local.apply(block)
        assert local.last_commit is not None
        store.commit_block(block, local.last_commit, outcome)
    verified = VerifiedCache()
    chain = NodeChain(store, local.genesis, local.config,
                      Mempool(local.config, store.state, MempoolConfig(), verified), verified)
    network = SimpleNamespace(local_id="me", node_id=lambda peer: peer)
    node: Any = SimpleNamespace(store=store, genesis=local.genesis, chain=chain, chain_config=local.config,
                                network=network, advertised_addresses=lambda: [], genesis_hash=GENESIS_HASH,
                                config=SimpleNamespace(moniker="m", rpc=SimpleNamespace(host="h", port=1)),
                                chain_id=local.config.chain_id, validator_key=None, catching_up=lambda: True,
                                sync=SimpleNamespace(progress=None))
    return Methods(node), old_txs, SNAPSHOT + 1


@pytest.fixture
def methods() -> tuple[Methods, list[bytes], int]:
    return restored(2)


@pytest.mark.parametrize("method", ["m_block", "m_header", "m_commit", "m_block_results",
                                    "m_consensus_params"])
async def test_latest_height_right_after_a_restore_refused(method: str) -> None:
    rpc, _, lowest = restored(0)
    for height in (None, "0"):
        with pytest.raises(RpcError) as refused:
            await getattr(rpc, method)(height=height)
        assert f"lowest height is {lowest}" in refused.value.data
    assert rpc.node.store.txs_at(SNAPSHOT) is None  # the anchor block: stored, not indexed


async def test_the_anchor_block_not_served_by_hash() -> None:
    rpc, _, _ = restored(0)
    anchor = rpc.node.store.blocks.block(SNAPSHOT)
    assert anchor is not None  # kept in the store
    assert (await rpc.m_block_by_hash(hash=anchor.block_id().hex()))["block"] is None
    assert (await rpc.m_header_by_hash(hash=anchor.block_id().hex()))["header"] is None


async def test_status_right_after_a_restore_and_after_a_block() -> None:
    rpc, _, lowest = restored(0)
    info = (await rpc.m_status())["sync_info"]
    assert (info["latest_block_height"], info["earliest_block_height"]) == (str(SNAPSHOT), "0")
    assert info["earliest_block_hash"] == info["earliest_app_hash"] == ""
    rpc, _, lowest = restored(1)
    info = (await rpc.m_status())["sync_info"]
    block = rpc.node.store.blocks.block(lowest)
    assert block is not None
    assert (info["latest_block_height"], info["earliest_block_height"]) == (str(lowest), str(lowest))
    assert info["earliest_block_hash"] == block.block_id().hex().upper() == info["latest_block_hash"]
    assert (await rpc.m_block_results())["height"] == str(lowest)


@pytest.mark.parametrize("method", ["m_block", "m_header", "m_commit", "m_block_results", "m_validators",
                                    "m_consensus_params"])
async def test_below_the_lowest_height_refused(methods, method: str) -> None:  # type: ignore[no-untyped-def]
    rpc, _, lowest = methods
    for height in (1, lowest - 1):
        with pytest.raises(RpcError) as refused:
            await getattr(rpc, method)(height=str(height))
        assert f"lowest height is {lowest}" in refused.value.data
    assert (await getattr(rpc, method)(height=str(lowest))) is not None


async def test_txs_below_the_lowest_height(methods) -> None:  # type: ignore[no-untyped-def]
    rpc, old_txs, lowest = methods
    with pytest.raises(RpcError) as refused:
        await rpc.m_tx(hash=tx_hash(old_txs[0]).hex())
    assert f"lowest height is {lowest}" in refused.value.data
    with pytest.raises(RpcError) as refused:
        await rpc.m_tx_search(query=f"tx.height={lowest - 1}")
    assert f"lowest height is {lowest}" in refused.value.data
    found = await rpc.m_tx_search(query=f"tx.height={lowest}")
    assert found["total_count"] == "3"
