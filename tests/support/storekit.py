"""Storage backends for tests: the same suite runs on memory and on LevelDB."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from chain.crypto import address_of
from chain.transition import BlockOutcome, apply_block
from chain.types import Block, Transfer
from storage.kv import KeyValueStore
from storage.leveldb import LevelDB
from storage.memory import MemoryBatch, MemoryKV
from storage.store import Store

from chainkit import LocalChain

BACKENDS = ["memory", "leveldb"]
GENESIS_HASH = bytes(range(32))
"""What the tests' stores record as their genesis hash (the file's hash in a node)."""


class Backend:
    """Opens (and after a close, reopens) one key/value store of kind ``kind``."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.path = directory / "store"
        self._data: dict[bytes, bytes] = {}

    def open(self) -> KeyValueStore:
        if self.kind == "memory":
            return MemoryKV(self._data)
        return LevelDB(self.path)


def commit_next(chain: LocalChain, store: Store, txs: Sequence[bytes] = ()) -> Block:
    """Make ``chain``'s next block, execute it on ``store``'s state and commit it there
    (the chain applies it to its own memory state too: the reference)."""
    return commit_next_outcome(chain, store, txs)[0]


def commit_next_outcome(chain: LocalChain, store: Store,
                        txs: Sequence[bytes] = ()) -> tuple[Block, BlockOutcome]:
    """:func:`commit_next`, with the block's outcome (what the RPC's events carry)."""
    block = chain.next_block(txs)
    outcome = apply_block(store.state, store.app_hash, block, chain.config)
    chain.apply(block)
    assert chain.last_commit is not None
    store.commit_block(block, chain.last_commit, outcome)
    return block, outcome


def transfers(chain: LocalChain, count: int, amount: int = 1) -> list[bytes]:
    """``count`` transfers between the chain's users, round robin."""
    users = chain.users
    return [chain.tx(users[i % len(users)],
                     Transfer(address_of(users[(i + 1) % len(users)].public_key), amount))
            for i in range(count)]


class GatedKV(MemoryKV):
    """A memory store whose batch writes wait until ``gate`` is set (it is, at first),
    and fail while ``failing`` is true."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.failing = False

    def write_batch(self, *, sync: bool) -> MemoryBatch:
        return GatedBatch(self)


class GatedBatch(MemoryBatch):
    def __init__(self, store: GatedKV) -> None:
        super().__init__(store)
        self.kv = store

    def write(self) -> None:
        assert self.kv.gate.wait(30)
        if self.kv.failing:
            raise OSError("disk full")
        super().write()
