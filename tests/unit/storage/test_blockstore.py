"""The block store's sizes: a stored block's size is the length of its canonical
encoding, read without decoding the block; on memory and LevelDB alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.types import encode
from storage.store import Store

from chainkit import LocalChain
from storekit import BACKENDS, GENESIS_HASH, Backend, commit_next, transfers


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path)


@pytest.fixture
def chain() -> LocalChain:
    return LocalChain(users=4)


@pytest.fixture
def store(backend: Backend, chain: LocalChain) -> Iterator[Store]:
    s = Store.open(backend.open(), chain.genesis, GENESIS_HASH)
    yield s
    s.close()


def test_a_blocks_size_is_the_length_of_its_encoding(store: Store, chain: LocalChain) -> None:
    blocks = [commit_next(chain, store, transfers(chain, n)) for n in (0, 5, 1)]
    for block in blocks:
        assert store.blocks.block_size(block.header.height) == len(encode(block))
    assert len({store.blocks.block_size(b.header.height) for b in blocks}) == 3  # the txs show


def test_a_block_this_node_does_not_have_has_no_size(store: Store, chain: LocalChain) -> None:
    assert store.blocks.block_size(1) is None
    commit_next(chain, store)
    assert store.blocks.block_size(1) is not None
    assert store.blocks.block_size(0) is None and store.blocks.block_size(2) is None
