"""The state-sync protocols between two in-memory nodes: each answer checked before use,
a malformed request refused and its sender penalized, a wrong answer penalized, a lie
about the state banned."""

from __future__ import annotations

import dataclasses
from hashlib import sha256
from pathlib import Path

import pytest

from chain.codec import dumps
from chain.errors import NetworkError
from chain.lightblock import LightBlock
from chain.snapshot import Descriptor
from p2p.memory import MemoryHub, MemoryNetwork
from p2p.network import INVALID_MESSAGE_PENALTY
from p2p.snapshots import MAX_LISTED, SnapshotExchange
from storage.memory import MemoryKV
from storage.snapshots import SnapshotStore, build_snapshot
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH, commit_next, transfers


class Served:
    def __init__(self, snapshots: SnapshotStore, store: Store, chain: LocalChain) -> None:
        self.snapshots, self.store, self.chain = snapshots, store, chain
        self.manifest_bytes: bytes | None = None

    def descriptors(self) -> list[Descriptor]:
        return self.snapshots.descriptors()

    def manifest(self, height: int) -> bytes | None:
        return self.manifest_bytes or self.snapshots.manifest(height)

    def chunk(self, height: int, index: int) -> bytes | None:
        return self.snapshots.chunk(height, index)

    def light_block(self, height: int) -> LightBlock | None:
        block, commit = self.store.blocks.block(height), self.store.blocks.commit(height)
        if block is None or commit is None:
            return None
        return LightBlock(block.header, commit, tuple(self.chain.members(height)))


@pytest.fixture
async def scene(tmp_path: Path) -> tuple[SnapshotExchange, MemoryNetwork, MemoryNetwork, Served, bytes]:
    chain = LocalChain(users=20)
    store = Store.open(MemoryKV(), chain.genesis, GENESIS_HASH)
    for _ in range(4):
        commit_next(chain, store, transfers(chain, 5))
    snapshots = SnapshotStore(tmp_path / "snapshots", keep=2)
    snapshots.write(*build_snapshot(store.height, store.app_hash, store.state.entries()))
    hub = MemoryHub()
    client, server = hub.join("client"), hub.join("server")
    hub.connect(client.local_id, server.local_id)
    served = Served(snapshots, store, chain)
    SnapshotExchange(server, chain.config.chain_id, served)
    own = Served(SnapshotStore(tmp_path / "mine", 1), store, chain)
    mine = SnapshotExchange(client, chain.config.chain_id, own)
    return mine, client, server, served, store.app_hash


async def test_round_trip(scene) -> None:  # type: ignore[no-untyped-def]
    exchange, client, server, _, root = scene
    (descriptor,) = await exchange.list_snapshots(server.local_id)
    manifest = await exchange.fetch_manifest(server.local_id, descriptor, root)
    assert manifest is not None and manifest.descriptor() == descriptor
    pairs = await exchange.fetch_chunk(server.local_id, manifest, 0)
    assert pairs
    assert await exchange.fetch_chunk(server.local_id, manifest, manifest.chunks) is None
    light = await exchange.fetch_light_block(server.local_id, 3)
    assert light is not None and light.header.height == 3
    assert await exchange.fetch_light_block(server.local_id, 99) is None
    assert client.score(server.local_id) == 0


async def test_a_manifest_of_another_state_bans(scene) -> None:  # type: ignore[no-untyped-def]
    exchange, client, server, _, _ = scene
    (descriptor,) = await exchange.list_snapshots(server.local_id)
    with pytest.raises(NetworkError, match="banned"):
        await exchange.fetch_manifest(server.local_id, descriptor, bytes(32))
    assert client.book.is_banned(server.local_id, client.hub.clock())


async def test_wrong_answers_penalized(scene) -> None:  # type: ignore[no-untyped-def]
    exchange, client, server, served, root = scene
    (descriptor,) = await exchange.list_snapshots(server.local_id)
    served.manifest_bytes = dumps([1, 2, 3])
    with pytest.raises(NetworkError, match="not the one it listed"):
        await exchange.fetch_manifest(server.local_id, descriptor, root)
    forged = dataclasses.replace(descriptor, manifest_hash=sha256(served.manifest_bytes).digest())
    with pytest.raises(NetworkError, match="unreadable manifest"):
        await exchange.fetch_manifest(server.local_id, forged, root)
    async def too_many(_: object, __: bytes) -> bytes:
        return dumps([descriptor.to_cbor()] * (MAX_LISTED + 1))

    server.set_handler(exchange.list_protocol, too_many, max_request_bytes=64)
    with pytest.raises(NetworkError, match="unreadable snapshot list"):
        await exchange.list_snapshots(server.local_id)
    assert client.score(server.local_id) == -3 * INVALID_MESSAGE_PENALTY


@pytest.mark.parametrize(("protocol", "request_"), [
    ("snapshots", dumps(0)), ("snapshot-manifest", dumps([1])), ("snapshot-chunk", dumps([1, 1, -1])),
    ("light-blocks", dumps(b"x")), ("light-blocks", b"\xff"),
])
async def test_malformed_requests_refused(scene, protocol: str, request_: bytes) -> None:  # type: ignore[no-untyped-def]
    exchange, client, server, _, _ = scene
    with pytest.raises(NetworkError, match="refused"):
        await client.request(server.local_id, f"/bizra/{exchange.chain_id}/{protocol}/1", request_,
                             max_response_bytes=1 << 20, timeout=5)
    assert server.score(client.local_id) == -INVALID_MESSAGE_PENALTY
