"""The store: blocks, commits, tx index and state, committed a block at a time; the same
suite on memory and LevelDB."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import plyvel
import pytest

from chain.crypto import address_of
from chain.errors import StorageError
from chain.ledger import Ledger, StateReader
from chain.statekeys import ACCOUNT, account
from chain.statetree import verify_state_proof
from chain.transition import apply_block
from chain.types import Account, Transfer, TxResult, encode, sha256, tx_hash
from storage import schema
from storage.kv import KeyValueStore
from storage.leveldb import LevelDB
from storage.memory import MemoryKV
from storage.statestore import StateStore
from storage.store import Store
from storage.txindex import TxIndex, TxLocation

from chainkit import LocalChain, key
from storekit import BACKENDS, GENESIS_HASH, Backend, commit_next, transfers


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path)


@pytest.fixture
def chain() -> LocalChain:
    return LocalChain(users=6)


@pytest.fixture
def store(backend: Backend, chain: LocalChain) -> Iterator[Store]:
    s = Store.open(backend.open(), chain.genesis, GENESIS_HASH)
    yield s
    s.close()


def everything(kv: KeyValueStore) -> list[tuple[bytes, bytes]]:
    return list(kv.iterate(b"", b""))


def test_a_new_store_holds_the_genesis_state(store: Store, chain: LocalChain) -> None:
    assert store.height == chain.genesis.initial_height - 1
    assert store.app_hash == chain.state.app_hash
    assert store.blocks.block(1) is None
    assert store.blocks.seen_commit() is None


def test_blocks_commits_txs_and_state_are_stored(store: Store, chain: LocalChain) -> None:
    blocks = [commit_next(chain, store, transfers(chain, 5)) for _ in range(3)]
    assert store.height == 3
    assert store.app_hash == chain.state.app_hash
    for b in blocks:
        h = b.header.height
        assert store.blocks.block(h) == b
        assert store.blocks.block_by_id(b.block_id()) == b
        assert store.blocks.block_height(b.block_id()) == h
        for i, raw in enumerate(b.txs):
            found = store.txs.get(tx_hash(raw))
            assert found is not None
            assert (found.height, found.index, found.result.code) == (h, i, 0)
    # The commit of a height is the one the next block carries; the latest is the seen one.
    assert store.blocks.commit(1) == blocks[1].last_commit
    assert store.blocks.commit(2) == blocks[2].last_commit
    assert store.blocks.commit(3) == chain.last_commit == store.blocks.seen_commit()
    assert store.blocks.commit(4) is None
    assert store.blocks.block_by_id(bytes(32)) is None
    assert store.txs.get(bytes(32)) is None
    at_two = store.txs_at(2)
    assert at_two is not None
    expected = [(tx_hash(raw), i) for i, raw in enumerate(blocks[1].txs)]
    assert [(t.tx_hash, t.index) for t in at_two] == expected
    assert store.txs_at(4) is None


def test_txs_by_sender_in_chain_order(store: Store, chain: LocalChain) -> None:
    for _ in range(3):
        commit_next(chain, store, transfers(chain, 12))
    sender = address_of(chain.users[0].public_key)
    found = store.txs.by_sender(sender)
    assert [(h, i) for h, i, _ in found] == [(h, i) for h in (1, 2, 3) for i in (0, 6)]
    assert store.txs.by_sender(sender, from_height=3) == found[4:]
    assert store.txs.by_sender(sender, limit=2) == found[:2]
    assert store.txs.by_sender(bytes(20)) == []
    for h, i, hash_ in found:
        block = store.blocks.block(h)
        assert block is not None
        assert tx_hash(block.txs[i]) == hash_


def test_the_state_reads_at_every_height_with_proofs(store: Store, chain: LocalChain) -> None:
    user = address_of(chain.users[0].public_key)
    balances = [chain.state.get(account(user))]
    for _ in range(4):
        commit_next(chain, store, transfers(chain, 7, amount=10))
        balances.append(chain.state.get(account(user)))
    assert store.state.get(account(user)) == balances[-1]
    for h, expected in enumerate(balances):
        assert store.state.get_at(account(user), h) == expected
        value, proof, root = store.state.prove(account(user), h)
        assert value == expected
        verify_state_proof(root, account(user), value, proof)
        absent, proof, root = store.state.prove(account(bytes(20)), h)
        assert absent is None
        verify_state_proof(root, account(bytes(20)), None, proof)
    block = store.blocks.block(4)
    assert block is not None and block.header.app_hash == store.state.root_at(3)
    with pytest.raises(StorageError, match="height 5 is not kept"):
        store.state.get_at(account(user), 5)


def test_reopening_finds_everything(backend: Backend, chain: LocalChain) -> None:
    store = Store.open(backend.open(), chain.genesis, GENESIS_HASH)
    last = [commit_next(chain, store, transfers(chain, 3)) for _ in range(3)][-1]
    store.close()
    store = Store.open(backend.open(), chain.genesis, GENESIS_HASH)
    assert (store.height, store.app_hash) == (3, chain.state.app_hash)
    assert store.blocks.block(3) == last
    assert store.blocks.seen_commit() == chain.last_commit
    commit_next(chain, store, transfers(chain, 3))
    assert store.app_hash == chain.state.app_hash
    store.close()


def test_a_store_written_with_snappy_compression_opens_as_it_is(tmp_path: Path, chain: LocalChain) -> None:
    store = Store.open_leveldb(tmp_path / "store", chain.genesis, GENESIS_HASH)
    last = [commit_next(chain, store, transfers(chain, 3)) for _ in range(2)][-1]
    store.close()
    # The same entries in a database whose tables are snappy-compressed, as the node
    # once wrote them.
    source, older = plyvel.DB(str(tmp_path / "store")), plyvel.DB(
        str(tmp_path / "older"), create_if_missing=True, compression="snappy")
    with older.write_batch() as batch:
        for k, v in source.iterator():
            batch.put(k, v)
    source.close()
    older.compact_range()
    older.close()
    store = Store.open_leveldb(tmp_path / "older", chain.genesis, GENESIS_HASH)
    assert (store.height, store.app_hash) == (2, chain.state.app_hash)
    assert store.blocks.block(2) == last
    commit_next(chain, store, transfers(chain, 3))
    assert store.app_hash == chain.state.app_hash
    store.close()


def test_leveldb_stores_its_tables_uncompressed(tmp_path: Path) -> None:
    value = b"bizra " * 1_000  # what snappy would shrink to a few dozen bytes
    kv = LevelDB(tmp_path / "kv")
    batch = kv.write_batch(sync=True)
    batch.put(b"k", value)
    batch.write()
    kv.compact()
    kv.close()
    tables = list((tmp_path / "kv").glob("*.ldb"))
    assert tables
    assert any(value in table.read_bytes() for table in tables)


def test_pruning_keeps_the_last_heights(store: Store, chain: LocalChain) -> None:
    user = address_of(chain.users[1].public_key)
    for _ in range(6):
        commit_next(chain, store, transfers(chain, 6))
    latest_value = store.state.get(account(user))
    assert store.prune(keep=2) == 5
    assert store.state.base == 5
    with pytest.raises(StorageError, match="not kept: this node has heights 5 to 6"):
        store.state.get_at(account(user), 4)
    assert store.state.get_at(account(user), 6) == latest_value
    for h in (5, 6):
        value, proof, root = store.state.prove(account(user), h)
        verify_state_proof(root, account(user), value, proof)
    assert store.prune(keep=2) == 0
    commit_next(chain, store, transfers(chain, 6))
    assert store.app_hash == chain.state.app_hash


def test_the_next_height_only(store: Store, chain: LocalChain) -> None:
    first = chain.next_block()
    outcome = apply_block(store.state, store.app_hash, first, chain.config)
    chain.apply(first)
    second = chain.next_block()
    assert chain.last_commit is not None
    with pytest.raises(StorageError, match="cannot store block 2: the latest stored height is 0"):
        store.commit_block(second, chain.last_commit, outcome)
    other = chain.sign_commit(second)
    with pytest.raises(StorageError, match="not that block's"):
        store.commit_block(first, other, outcome)
    store.commit_block(first, chain.last_commit, outcome)
    assert store.height == 1


class FailingBatches:
    """A key/value store whose batches fail to write once ``fail`` is set."""

    def __init__(self, kv: KeyValueStore) -> None:
        self.kv = kv
        self.fail = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.kv, name)

    def write_batch(self, *, sync: bool) -> object:
        batch = self.kv.write_batch(sync=sync)
        if not self.fail:
            return batch
        owner = self

        class Broken:
            def put(self, key: bytes, value: bytes) -> None:
                batch.put(key, value)

            def delete(self, key: bytes) -> None:
                batch.delete(key)

            def write(self) -> None:
                raise OSError(28, f"No space left on device (fail={owner.fail})")

        return Broken()


def test_a_failed_write_loses_nothing_and_stops_the_store(backend: Backend, chain: LocalChain) -> None:
    kv = FailingBatches(backend.open())
    store = Store.open(kv, chain.genesis, GENESIS_HASH)  # type: ignore[arg-type]
    commit_next(chain, store, transfers(chain, 2))
    root = store.app_hash
    kv.fail = True
    block = chain.next_block(transfers(chain, 2))
    outcome = apply_block(store.state, store.app_hash, block, chain.config)
    chain.apply(block)
    assert chain.last_commit is not None
    with pytest.raises(StorageError, match=r"cannot write block 2: .*No space left"):
        store.commit_block(block, chain.last_commit, outcome)
    assert store.height == 1 and store.blocks.block(2) is None  # nothing shows of the failed block
    kv.fail = False
    with pytest.raises(StorageError, match=r"failed earlier .*restart the node"):
        store.commit_block(block, chain.last_commit, outcome)
    store.close()
    store = Store.open(backend.open(), chain.genesis, GENESIS_HASH)
    assert (store.height, store.app_hash) == (1, root)
    store.commit_block(block, chain.last_commit, outcome)
    assert store.app_hash == chain.state.app_hash
    store.close()


class WatchedBatches:
    """A key/value store that calls ``during`` just before each batch is written."""

    def __init__(self, kv: KeyValueStore) -> None:
        self.kv = kv
        self.during: Callable[[], None] = lambda: None

    def __getattr__(self, name: str) -> object:
        return getattr(self.kv, name)

    def write_batch(self, *, sync: bool) -> object:
        batch = self.kv.write_batch(sync=sync)
        owner = self

        class Watched:
            def put(self, key: bytes, value: bytes) -> None:
                batch.put(key, value)

            def delete(self, key: bytes) -> None:
                batch.delete(key)

            def write(self) -> None:
                owner.during()
                batch.write()

        return Watched()


def test_a_new_height_shows_only_once_its_block_is_written(backend: Backend, chain: LocalChain) -> None:
    """Readers (RPC, on other threads) that see height h find block h: a store whose
    height moved before the write answered "no block yet" for the latest height."""
    kv = WatchedBatches(backend.open())
    store = Store.open(kv, chain.genesis, GENESIS_HASH)  # type: ignore[arg-type]
    seen: list[tuple[int, bool]] = []
    kv.during = lambda: seen.append((store.height, store.blocks.block(store.height) is not None
                                     or store.height == 0))
    for _ in range(3):
        commit_next(chain, store, transfers(chain, 2))
    assert seen == [(0, True), (1, True), (2, True)]
    assert store.height == 3
    store.close()


def test_reads_ahead_count_a_staged_block_before_it_is_written() -> None:
    """Block sync executes a block while the one before is written: the state it reads
    (``ahead``) is the staged one, deletions and prefix scans included, while the
    store's own reads stay at the written height."""
    kv = MemoryKV()
    state = StateStore(kv, 0, 0)
    a, b, c = (bytes((ACCOUNT,)) + bytes([i]) * 20 for i in (1, 2, 3))

    def stage(height: int, changes: dict[bytes, bytes | None]) -> Callable[[], None]:
        state.advance(height, changes)
        batch = kv.write_batch(sync=False)
        state.stage(batch, height)

        def write() -> None:
            batch.write()
            state.written(height)
        return write

    def reads(reader: StateReader) -> tuple[list[bytes | None], list[tuple[bytes, bytes]]]:
        return [reader.get(k) for k in (a, b, c)], list(reader.iter_prefix(bytes((ACCOUNT,))))

    at_1 = ([b"a1", b"b1", None], [(a, b"a1"), (b, b"b1")])
    at_2 = ([None, b"b1", b"c2"], [(b, b"b1"), (c, b"c2")])
    stage(1, {a: b"a1", b: b"b1"})()
    assert reads(state) == reads(state.ahead) == at_1  # a is cached now
    write = stage(2, {a: None, c: b"c2"})
    assert (reads(state), reads(state.ahead), state.height) == (at_1, at_2, 1)
    write()
    assert (reads(state), reads(state.ahead), state.height) == (at_2, at_2, 2)


def test_a_store_of_another_schema_version_is_refused_untouched(backend: Backend,
                                                                chain: LocalChain) -> None:
    kv = backend.open()
    Store.open(kv, chain.genesis, GENESIS_HASH)
    batch = kv.write_batch(sync=True)
    batch.put(schema.STORE_INFO, bytes.fromhex("83") + b"\x02" + bytes.fromhex("6e")
              + b"bizra-devnet-1" + bytes.fromhex("5820") + GENESIS_HASH)
    batch.write()
    before = everything(kv)
    with pytest.raises(StorageError, match="schema version 2; this node reads version 1"):
        Store.open(kv, chain.genesis, GENESIS_HASH)
    assert everything(kv) == before
    kv.close()


def test_a_store_of_another_chain_is_refused_untouched(backend: Backend, chain: LocalChain) -> None:
    kv = backend.open()
    Store.open(kv, chain.genesis, GENESIS_HASH)
    before = everything(kv)
    with pytest.raises(StorageError, match=r"belongs to chain bizra-devnet-1 .*use the matching genesis"):
        Store.open(kv, chain.genesis, bytes(32))
    other = LocalChain(chain_id="bizra-other-1")
    with pytest.raises(StorageError, match="not bizra-other-1"):
        Store.open(kv, other.genesis, GENESIS_HASH)
    assert everything(kv) == before
    kv.close()


def test_a_database_that_is_not_a_store_is_refused_untouched(backend: Backend,
                                                             chain: LocalChain) -> None:
    kv = backend.open()
    batch = kv.write_batch(sync=True)
    batch.put(b"someone else's", b"data")
    batch.write()
    with pytest.raises(StorageError, match="not a BIZRA store"):
        Store.open(kv, chain.genesis, GENESIS_HASH)
    assert everything(kv) == [(b"someone else's", b"data")]
    kv.close()


def test_a_tampered_state_is_found_at_open(backend: Backend, chain: LocalChain) -> None:
    kv = backend.open()
    store = Store.open(kv, chain.genesis, GENESIS_HASH)
    commit_next(chain, store, transfers(chain, 2))
    user = address_of(chain.users[0].public_key)
    batch = kv.write_batch(sync=True)
    batch.put(schema.state(account(user)), encode(Account(10**12, 0)))
    batch.write()
    with pytest.raises(StorageError, match=r"the state on disk hashes to .* the store is corrupt"):
        Store.open(kv, chain.genesis, GENESIS_HASH)
    kv.close()


def test_block_decoding_from_disk_is_checked(backend: Backend, chain: LocalChain) -> None:
    kv = backend.open()
    store = Store.open(kv, chain.genesis, GENESIS_HASH)
    commit_next(chain, store)
    batch = kv.write_batch(sync=True)
    batch.put(schema.block(1), b"\xff")
    batch.write()
    with pytest.raises(StorageError, match="block 1 on disk does not decode"):
        store.blocks.block(1)
    kv.close()


def test_a_second_process_on_the_same_home_is_refused(tmp_path: Path, chain: LocalChain) -> None:
    store = Store.open_leveldb(tmp_path / "store", chain.genesis, GENESIS_HASH)
    # In this process too; and the failed attempt must not drop the lock (LevelDB alone
    # would: it opens and closes the lock file, which releases a POSIX lock).
    with pytest.raises(StorageError, match="already open in this process"):
        Store.open_leveldb(tmp_path / "store", chain.genesis, GENESIS_HASH)
    child = subprocess.run(
        [sys.executable, "-P", "-c",
         "import sys\n"
         "from pathlib import Path\n"
         "from chain.errors import StorageError\n"
         "from storage.leveldb import LevelDB\n"
         "try:\n"
         "    LevelDB(Path(sys.argv[1]))\n"
         "except StorageError as exc:\n"
         "    sys.exit(str(exc))\n",
         str(tmp_path / "store")],
        capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode == 1
    assert "is in use by another process" in child.stderr
    assert "Traceback" not in child.stderr
    commit_next(chain, store)
    assert store.height == 1
    store.close()


def test_a_failed_tx_is_indexed_with_its_code_and_log(store: Store, chain: LocalChain) -> None:
    poor = chain.tx(chain.users[0], Transfer(bytes(20), 2**63))
    block = commit_next(chain, store, [poor])
    found = store.txs.get(tx_hash(poor))
    assert found is not None
    assert (found.height, found.index) == (block.header.height, 0)
    assert found.result.code != 0
    assert found.result.log


def test_the_consensus_state_is_kept_with_its_block(backend: Backend, chain: LocalChain) -> None:
    store = Store.open(backend.open(), chain.genesis, GENESIS_HASH)
    assert store.consensus_state() is None
    for height in (1, 2):
        block = chain.next_block()
        outcome = apply_block(store.state, store.app_hash, block, chain.config)
        chain.apply(block)
        assert chain.last_commit is not None
        store.commit_block(block, chain.last_commit, outcome, consensus_state=b"priorities %d" % height)
    store.close()
    reopened = Store.open(backend.open(), chain.genesis, GENESIS_HASH)
    assert (reopened.height, reopened.consensus_state()) == (2, b"priorities 2")
    reopened.close()


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


def test_blocks_and_commits_read_back_encoded_as_peers_get_them(store: Store, chain: LocalChain) -> None:
    """What a peer is sent: each block's and commit's canonical encoding, the tip's
    commit the one this node saw, nothing beyond the tip."""
    blocks = [commit_next(chain, store, transfers(chain, n)) for n in (3, 0, 2)]
    for block in blocks:
        height = block.header.height
        assert store.blocks.encoded_block(height) == encode(block)
        commit = store.blocks.commit(height)
        assert commit is not None and store.blocks.encoded_commit(height) == encode(commit)
    assert chain.last_commit is not None and store.blocks.encoded_commit(3) == encode(chain.last_commit)
    assert store.blocks.encoded_block(4) is None and store.blocks.encoded_commit(4) is None


class Overtaken(MemoryKV):
    """A key/value store whose next read is overtaken by a write: ``then`` runs (it
    commits a block) after the read and before the read returns its old value."""

    def __init__(self) -> None:
        super().__init__({})
        self.then: Callable[[], object] | None = None

    def get(self, key: bytes) -> bytes | None:
        value = super().get(key)
        then, self.then = self.then, None
        if then is not None:
            then()
        return value


def test_latest_values_are_read_once_and_a_read_a_commit_overtook_is_not_kept() -> None:
    """Latest values are kept in memory after a read and updated by each commit; a read
    from disk that a commit overtook (another thread's, say) returns the value it read,
    but is not kept, or every later read would find the account as it was before."""
    chain = LocalChain(users=4)
    kv = Overtaken()
    store = Store.open(kv, chain.genesis, GENESIS_HASH)
    commit_next(chain, store, transfers(chain, 4))
    newcomer = address_of(key(99).public_key)
    assert store.state.get(account(newcomer)) is None

    paid = chain.tx(chain.users[0], Transfer(newcomer, 5))
    kv.then = lambda: commit_next(chain, store, [paid])
    store.state._cache.clear()  # the next read goes to disk, and the commit overtakes it
    assert store.state.get(account(newcomer)) is None  # read before the commit
    assert Ledger(store.state).account(newcomer).balance == 5
    assert store.state.get(account(newcomer)) == kv.get(schema.state(account(newcomer)))


class WritesBeforeRead(MemoryKV):
    """A memory store that, on a read of ``key``, first writes a batch held back
    (``held``): another thread's commit landing between two reads."""

    def __init__(self) -> None:
        super().__init__()
        self.key = b""
        self.held: list[tuple[bytes, bytes | None]] = []

    def get(self, key: bytes) -> bytes | None:
        if key == self.key and self.held:
            self.apply(self.held)
            self.held = []
        return super().get(key)


def test_the_latest_commit_is_found_while_the_next_block_is_written(chain: LocalChain) -> None:
    """``commit(h)`` of the latest height reads the canonical commit, then the seen one:
    block h + 1 written between the two reads (it moves the commit from one to the
    other) must not make it answer None."""
    kv = WritesBeforeRead()
    store = Store.open(kv, chain.genesis, GENESIS_HASH)
    commit_next(chain, store)
    latest = store.blocks.commit(1)
    assert latest is not None
    kv.key = schema.seen_commit(1)
    kv.held = [(schema.commit(1), encode(latest)), (schema.seen_commit(1), None)]
    assert store.blocks.commit(1) == latest


def test_tx_entries_read_back_as_staged_at_any_index_and_height(chain: LocalChain) -> None:
    """Entries are encoded a part at a time (the results' parts once each): they decode,
    canonically, to what was staged, past every size of an index's and height's encoding."""
    kv = MemoryKV()
    index = TxIndex(kv)
    raws = [chain.tx(chain.users[i % 3], Transfer(bytes(20), 1)) for i in range(3)]
    results = [TxResult(0), TxResult(0, bytes(range(32))), TxResult(5, b"", "balance too low: ü")]
    count, height = 70_000, 2**40 + 7
    hashes = [sha256(i.to_bytes(4, "big")) for i in range(count)]
    batch = kv.write_batch(sync=False)
    index.stage(batch, height, [raws[i % 3] for i in range(count)], hashes,
                [results[i % 3] for i in range(count)])
    batch.write()
    for i in (0, 1, 23, 24, 255, 256, 65_535, 65_536, count - 1):
        assert index.get(hashes[i]) == TxLocation(hashes[i], height, i, results[i % 3])
    sender = address_of(chain.users[1].public_key)
    assert index.by_sender(sender, limit=2) == [(height, 1, hashes[1]), (height, 4, hashes[4])]
