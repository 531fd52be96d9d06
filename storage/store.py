"""The node's store: blocks, state and tx index in one key/value store, committed a
block at a time in one atomic, synced batch.

A height is on disk wholly or not at all: its block, its seen commit (and the previous
height's canonical commit), its state changes and trie records, its tx index entries
and the ``LATEST`` record that points at it are one batch. The state root kept in memory
moves only as that batch is written; if the write fails the store refuses further use
and the node must restart, which rebuilds the root from the disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from chain.codec import dumps, expect_array, expect_bytes, expect_text, expect_uint, loads_canonical
from chain.errors import DecodeError, StorageError
from chain.genesis import Genesis
from chain.sizes import HASH_LEN
from chain.state import genesis_changes
from chain.transition import BlockOutcome
from chain.types import Block, Commit, tx_hash
from storage import schema
from storage.blockstore import BlockStore
from storage.kv import KeyValueStore, WriteBatch
from storage.leveldb import LevelDB
from storage.restore import StateRestore, discard_interrupted, restoring
from storage.statestore import StateStore
from storage.txindex import TxIndex, TxLocation

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StagedBlock:
    """A block :meth:`Store.stage_block` made ready: the state root after it, and the
    batch that stores it."""

    height: int
    app_hash: bytes
    batch: WriteBatch


class Store:
    """Blocks, state and tx index of one chain; see the module docstring.

    Open with :meth:`open` (a key/value store) or :meth:`open_leveldb` (a directory).
    Writes (:meth:`commit_block`, :meth:`prune`) come from one thread; reads from any.
    """

    __slots__ = ("_failed", "_kv", "blocks", "chain_id", "state", "txs")

    def __init__(self, kv: KeyValueStore, chain_id: str, height: int, base: int,
                 state_base: int) -> None:
        self._kv = kv
        self._failed: str | None = None
        self.chain_id = chain_id
        self.blocks = BlockStore(kv, base, height)
        self.state = StateStore(kv, height, state_base)
        self.txs = TxIndex(kv)

    @classmethod
    def open(cls, kv: KeyValueStore, genesis: Genesis, genesis_hash: bytes) -> Store:
        """The store in ``kv`` for the chain of ``genesis`` (whose file hashes to
        ``genesis_hash``), set up from genesis when ``kv`` is empty.

        Raises StorageError, having written nothing, when ``kv`` holds another schema
        version, another chain, or keys that are not a store's.
        """
        if restoring(kv) is not None:
            discard_interrupted(kv)
        info = kv.get(schema.STORE_INFO)
        if info is None:
            if next(kv.iterate(b"", b""), None) is not None:
                raise StorageError("the directory holds a database that is not a BIZRA store "
                                   "(it has no store-info record)")
            cls._create(kv, genesis, genesis_hash)
        else:
            _check_info(info, genesis, genesis_hash)
        height, app_hash = _read_latest(kv)
        raw_base = kv.get(schema.STATE_BASE)
        state_base = height if raw_base is None else schema.decode_height(raw_base)
        raw_block_base = kv.get(schema.BLOCK_BASE)
        base = genesis.initial_height if raw_block_base is None else schema.decode_height(raw_block_base)
        store = cls(kv, genesis.chain_id, height, base, state_base)
        store.state.load(app_hash)
        return store

    @classmethod
    def open_leveldb(cls, path: Path, genesis: Genesis, genesis_hash: bytes) -> Store:
        """:meth:`open` on the LevelDB in directory ``path`` (created when missing)."""
        kv = LevelDB(path)
        try:
            return cls.open(kv, genesis, genesis_hash)
        except BaseException:
            kv.close()
            raise

    @staticmethod
    def _create(kv: KeyValueStore, genesis: Genesis, genesis_hash: bytes) -> None:
        height = genesis.initial_height - 1
        state = StateStore(kv, height, height)
        state.advance(height, genesis_changes(genesis))
        batch = kv.write_batch(sync=True)
        app_hash = state.stage(batch, height)
        batch.put(schema.STATE_BASE, schema.encode_height(height))
        batch.put(schema.LATEST, dumps([height, app_hash]))
        batch.put(schema.STORE_INFO, dumps([schema.SCHEMA_VERSION, genesis.chain_id, genesis_hash]))
        batch.write()
        log.info("store created from genesis", extra={"chain_id": genesis.chain_id,
                                                      "app_hash": app_hash.hex()})

    @property
    def height(self) -> int:
        """The latest committed height (``initial_height - 1`` before the first block)."""
        return self.state.height

    @property
    def app_hash(self) -> bytes:
        """The state root after :attr:`height`."""
        return self.state.app_hash

    @property
    def at_genesis(self) -> bool:
        """Whether the store holds the genesis state only: no block, no restored state."""
        return self.blocks.block(self.height) is None

    def advance_state(self, height: int, changes: dict[bytes, bytes | None]) -> bytes:
        """The state root after block ``height`` (the next) makes ``changes``: computed in
        memory, ahead of :meth:`commit_block`, which stores it (and calls this itself
        when it was not called)."""
        self._check_usable()
        if height != self.height + 1:
            raise StorageError(f"cannot store block {height}: the latest stored height is {self.height}")
        try:
            return self.state.advance(height, changes)
        except BaseException as exc:
            self._failed = f"computing the state root of height {height}: {exc}"
            raise

    def commit_block(self, block: Block, seen_commit: Commit, outcome: BlockOutcome, *,
                     consensus_state: bytes | None = None, durable: bool = True) -> bytes:
        """Store ``block`` (the next height), the commit this node saw for it, its
        executed ``outcome`` and ``consensus_state`` (see :meth:`consensus_state`) in one
        atomic batch; return the new state root.

        With ``durable`` the batch is synced: it is on stable storage when this returns.
        Without, it is in the operating system's hands: a killed process loses nothing,
        but a power cut or kernel crash may take this height and those after it back to
        the last durable one (never a part of a height). Block sync writes so, with a
        durable write every few blocks and at its end (:meth:`make_durable`).

        If :meth:`advance_state` ran for this height, it must have been given
        ``outcome.changes``. After a failure here the store refuses all further writes.
        It is :meth:`stage_block`, then :meth:`write_staged`.
        """
        staged = self.stage_block(block, seen_commit, outcome, consensus_state=consensus_state,
                                  durable=durable)
        self.write_staged(staged)
        return staged.app_hash

    def stage_block(self, block: Block, seen_commit: Commit, outcome: BlockOutcome, *,
                    consensus_state: bytes | None = None, durable: bool = True) -> StagedBlock:
        """The first half of :meth:`commit_block` (same arguments): the state root moves
        to the block's and its batch is made, not written. Until :meth:`write_staged`
        writes it, :attr:`height` and the state's reads stay at the height before (but
        for :attr:`StateStore.ahead`'s, which count the block), and no other block can
        be staged.
        """
        self._check_usable()
        height = block.header.height
        if height != self.height + 1:
            raise StorageError(f"cannot store block {height}: the latest stored height is {self.height}")
        if seen_commit.height != height or seen_commit.block_id != block.block_id():
            raise StorageError(f"the commit given for block {height} is not that block's")
        if not self.state.advanced(height):
            self.advance_state(height, outcome.changes)
        try:
            batch = self._kv.write_batch(sync=durable)
            self.txs.stage(batch, height, block.txs, outcome.tx_hashes, outcome.results)
            self.blocks.stage(batch, block, seen_commit)
            app_hash = self.state.stage(batch, height)
            batch.put(schema.LATEST, dumps([height, app_hash]))
            if consensus_state is not None:
                batch.put(schema.CONSENSUS, consensus_state)
        except Exception as exc:
            self._failed = f"writing block {height}: {exc}"
            raise StorageError(f"cannot write block {height}: {exc}") from exc
        return StagedBlock(height, app_hash, batch)

    def write_staged(self, staged: StagedBlock) -> None:
        """Write the batch :meth:`stage_block` made (from any one thread: the key/value
        store's write releases the interpreter lock, so the next block can execute
        meanwhile); the block's height is then the latest."""
        try:
            staged.batch.write()
        except Exception as exc:
            self._failed = f"writing block {staged.height}: {exc}"
            raise StorageError(f"cannot write block {staged.height}: {exc}") from exc
        self.state.written(staged.height)

    def make_durable(self) -> None:
        """Put every height written so far on stable storage (one synced write; the
        key/value store's log is sequential, so it carries the writes before it)."""
        self._check_usable()
        batch = self._kv.write_batch(sync=True)
        batch.put(schema.LATEST, dumps([self.height, self.app_hash]))
        try:
            batch.write()
        except Exception as exc:
            self._failed = f"syncing height {self.height} to disk: {exc}"
            raise StorageError(f"cannot sync height {self.height} to disk: {exc}") from exc

    def consensus_state(self) -> bytes | None:
        """What :meth:`commit_block` was last given as ``consensus_state`` (written with
        the latest block, so never older or newer than it), or None."""
        return self._kv.get(schema.CONSENSUS)

    def txs_at(self, height: int) -> list[TxLocation] | None:
        """The txs of block ``height`` in block order, with their results (what
        ``block_results`` shows); ``None`` if this node does not have the block or it is
        below the block base (the anchor block of a restore, whose txs are not indexed)."""
        if height < self.blocks.base:
            return None
        block = self.blocks.block(height)
        if block is None:
            return None
        out = []
        for raw in block.txs:
            found = self.txs.get(tx_hash(raw))
            if found is None or found.height != height:
                raise StorageError(f"block {height} has a tx the index places elsewhere: "
                                   "the store is corrupt")
            out.append(found)
        return out

    def begin_restore(self, height: int, app_hash: bytes) -> StateRestore:
        """Start restoring the state after block ``height``, of root ``app_hash``, into
        this store, which must hold no block (see :mod:`storage.restore`); complete it
        with :meth:`finish_restore`. Until then the store's own view (height, state
        root) stays the genesis one, and a crash discards the restore."""
        self._check_usable()
        if not self.at_genesis:
            raise StorageError(f"cannot restore a snapshot into a store at height {self.height}")
        restore = StateRestore(self._kv, height, app_hash)
        restore.begin()
        return restore

    def finish_restore(self, restore: StateRestore, block: Block, commit: Commit,
                       consensus_state: bytes) -> None:
        """:meth:`StateRestore.finish`, then this store is at the restored height, with
        blocks from the next one on (and ``block`` as the anchor)."""
        try:
            tree = restore.finish(block, commit, consensus_state)
        except Exception as exc:
            self._failed = f"restoring height {restore.height}: {exc}"
            raise
        self.state.reset(restore.height, tree)
        self.blocks.reset(restore.height + 1, restore.height)

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise StorageError(f"the store failed earlier ({self._failed}); restart the node")

    def prune(self, keep: int) -> int:
        """Keep the state of the last ``keep`` heights only; see :meth:`StateStore.prune`."""
        return self.state.prune(keep)

    def close(self) -> None:
        self._kv.close()


def _read_latest(kv: KeyValueStore) -> tuple[int, bytes]:
    raw = kv.get(schema.LATEST)
    if raw is None:
        raise StorageError("the store has no latest-height record: it is corrupt")
    try:
        height, app_hash = expect_array(loads_canonical(raw, "latest"), 2, "latest")
        return expect_uint(height, "latest.height"), expect_bytes(app_hash, "latest.app_hash", HASH_LEN)
    except DecodeError as exc:
        raise StorageError(f"the latest-height record does not decode ({exc}): the store is corrupt") \
            from None


def _check_info(raw: bytes, genesis: Genesis, genesis_hash: bytes) -> None:
    try:
        version, chain_id, stored_hash = expect_array(loads_canonical(raw, "store info"), 3, "store info")
        version = expect_uint(version, "store info.version")
        chain_id = expect_text(chain_id, "store info.chain_id")
        stored_hash = expect_bytes(stored_hash, "store info.genesis_hash")
    except DecodeError as exc:
        raise StorageError(f"the store-info record does not decode ({exc})") from None
    if version != schema.SCHEMA_VERSION:
        raise StorageError(f"the store was written with storage schema version {version}; this node "
                           f"reads version {schema.SCHEMA_VERSION}: run the node version that wrote "
                           "it, or sync a new home")
    if chain_id != genesis.chain_id or stored_hash != genesis_hash:
        raise StorageError(f"the store belongs to chain {chain_id} (genesis {stored_hash.hex()[:16]}…), "
                           f"not {genesis.chain_id} (genesis {genesis_hash.hex()[:16]}…): use the "
                           "matching genesis, or another home directory")
