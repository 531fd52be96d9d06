"""Storage speed against LevelDB's own: committing blocks and reading them back.

It opens a LevelDB store whose genesis state holds ``--accounts`` funded accounts, then
commits blocks of ``--txs`` transfers (each from a distinct sender to a random other
account, so a block changes about twice as many accounts as it has txs), and measures:

- commit: ``Store.commit_block`` of an executed block, i.e. block, commits, tx index,
  state values and versions and trie records staged and written in one synced batch;
- state root: ``Store.advance_state``, the in-memory state-root update that precedes
  the commit (block execution's last step, the figure ``bench/apply_block.py`` reports
  with execution); shown beside the commit, and not part of the ratio;
- raw: in the same database, one synced write batch of as many keys, of the same key
  and value sizes, made by plyvel directly (the floor: LevelDB's write-batch rate);
- reads: latest-state gets, gets at the previous height, tx lookups by hash and state
  proofs, beside raw LevelDB gets of the same keys.

Block execution itself is not timed here (``bench/apply_block.py`` does that).

Run: ``python bench/store_writes.py`` (``--help`` for sizes). The last line is one JSON
object with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chain.blocks import make_block
from chain.commits import median_time, vote_sign_bytes
from chain.crypto import PrivateKey, address_of
from chain.genesis import GenesisAccount, make_devnet_genesis
from chain.ledger import Ledger
from chain.params import USEED_PER_SEED, Params
from chain.sizes import ADDRESS_LEN
from chain.state import chain_config
from chain.statekeys import account
from chain.transition import apply_block, least_fee, sign_tx
from chain.types import Block, Commit, CommitFlag, CommitSig, Transfer, Vote, VoteType, sha256
from chain.validatorsets import validator_set_at
from storage import schema
from storage.kv import KeyValueStore, WriteBatch
from storage.leveldb import LevelDB
from storage.store import Store

GENESIS_TIME_NS = 1_790_000_000_000_000_000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class RecordingBatch:
    """A batch that also keeps a copy of what it writes."""

    def __init__(self, batch: WriteBatch, ops: list[tuple[bytes, bytes]]) -> None:
        self._batch = batch
        self._ops = ops

    def put(self, key: bytes, value: bytes) -> None:
        self._ops.append((key, value))
        self._batch.put(key, value)

    def delete(self, key: bytes) -> None:
        self._ops.append((key, b""))
        self._batch.delete(key)

    def write(self) -> None:
        self._batch.write()


class Recorder:
    """LevelDB, whose next batch is recorded when :attr:`ops` is a list (the measured
    batches are LevelDB's own, with nothing in between)."""

    def __init__(self, db: LevelDB) -> None:
        self.db = db
        self.ops: list[tuple[bytes, bytes]] | None = None

    def get(self, key: bytes) -> bytes | None:
        return self.db.get(key)

    def iterate(self, start: bytes, stop: bytes, *, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        return self.db.iterate(start, stop, reverse=reverse)

    def write_batch(self, *, sync: bool) -> WriteBatch:
        batch = self.db.write_batch(sync=sync)
        return batch if self.ops is None else RecordingBatch(batch, self.ops)

    def close(self) -> None:
        self.db.close()


class Chain:
    """4 validators and ``senders`` funded senders among ``accounts`` funded accounts,
    committing to a LevelDB store in ``directory``."""

    def __init__(self, directory: Path, accounts: int, senders: int, rng: random.Random) -> None:
        self.validators = [PrivateKey.from_seed(sha256(b"bench-validator" + bytes([i]))) for i in range(4)]
        self.senders = [PrivateKey.from_seed(sha256(b"bench-sender" + i.to_bytes(4, "big")))
                        for i in range(senders)]
        self.nonces = [0] * senders
        genesis = make_devnet_genesis("bizra-bench-1", self.validators, GENESIS_TIME_NS, params=Params())
        funded = [GenesisAccount(address_of(k.public_key), 1_000_000 * USEED_PER_SEED) for k in self.senders]
        self.others = [rng.randbytes(ADDRESS_LEN) for _ in range(max(0, accounts - senders))]
        funded += [GenesisAccount(a, USEED_PER_SEED) for a in self.others]
        self.genesis = dataclasses.replace(genesis, accounts=genesis.accounts + tuple(funded))
        self.config = chain_config(self.genesis)
        self.kv = Recorder(LevelDB(directory))
        t0 = time.perf_counter()
        self.store = Store.open(self.kv, self.genesis, sha256(b"bench genesis"))
        self.setup_s = time.perf_counter() - t0
        self.rng = rng

    def transfers(self) -> list[bytes]:
        txs = []
        for i, k in enumerate(self.senders):
            body = Transfer(self.rng.choice(self.others), 1 + self.rng.randrange(1_000))
            fee = least_fee(self.config.params, self.nonces[i], body)
            txs.append(sign_tx(self.config.chain_id, k, self.nonces[i], body, fee))
            self.nonces[i] += 1
        return txs

    def next_block(self, txs: list[bytes]) -> tuple[Block, Commit, Any]:
        """The next block with ``txs``, its commit and its executed outcome."""
        store = self.store
        ledger = Ledger(store.state)
        height = store.height + 1
        members = validator_set_at(ledger, height, self.config)
        last = store.blocks.seen_commit()
        time_ns = (GENESIS_TIME_NS if last is None
                   else median_time(last, validator_set_at(ledger, height - 1, self.config)))
        block = make_block(store.state, store.app_hash, self.config, txs=txs,
                           proposer_address=address_of(members[0].pubkey), time_ns=time_ns, last_commit=last)
        outcome = apply_block(store.state, store.app_hash, block, self.config)
        signers = {k.public_key: k for k in self.validators}
        sigs = []
        for i, m in enumerate(members):
            ts = time_ns + 6_000_000_000
            vote = Vote(VoteType.PRECOMMIT, height, 0, block.block_id(), ts, address_of(m.pubkey), i, b"")
            sigs.append(CommitSig(CommitFlag.COMMIT, ts, signers[m.pubkey].sign(
                vote_sign_bytes(self.config.chain_id, vote))))
        return block, Commit(height, 0, block.block_id(), tuple(sigs)), outcome


def raw_batch_seconds(kv: KeyValueStore, shape: list[tuple[bytes, bytes]], rng: random.Random) -> float:
    """One synced plyvel batch of ``len(shape)`` new random keys, of the sizes in ``shape``."""
    ops = [(b"\xfe" + rng.randbytes(max(1, len(k) - 1)), v) for k, v in shape]
    t0 = time.perf_counter()
    batch = kv.write_batch(sync=True)
    for k, v in ops:
        batch.put(k, v)
    batch.write()
    return time.perf_counter() - t0


def rate(count: int, seconds: float) -> int:
    return round(count / seconds) if seconds > 0 else 0


def timed(fn: Any, items: list[Any]) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=200_000, help="funded accounts in the state")
    parser.add_argument("--txs", type=int, default=10_000, help="transfers per block")
    parser.add_argument("--blocks", type=int, default=5, help="measured blocks")
    parser.add_argument("--reads", type=int, default=100_000, help="random reads of each kind")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to make the store (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    parent = tempfile.mkdtemp(prefix="bizra-bench-storage-", dir=args.dir)
    try:
        results = run(Path(parent), args, rng)
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    print(json.dumps(results, separators=(",", ":")))


def run(directory: Path, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    log(f"setting up a store of {args.accounts:,} accounts in {directory} ...")
    chain = Chain(directory / "store", args.accounts, args.txs, rng)
    store = chain.store
    log(f"  genesis state stored in {chain.setup_s:.1f} s")
    block, commit, outcome = chain.next_block([])
    store.commit_block(block, commit, outcome)

    # One recorded block: the keys and values a block of this size writes.
    block, commit, outcome = chain.next_block(chain.transfers())
    chain.kv.ops = []
    store.commit_block(block, commit, outcome)
    shape, chain.kv.ops = chain.kv.ops, None
    keys = len(shape)
    payload = sum(len(k) + len(v) for k, v in shape)
    log(f"  a {args.txs:,}-tx block writes {keys:,} keys, {payload / 1e6:.1f} MB")

    root_s, commit_s, raw_s = [], [], []
    for n in range(args.blocks):
        block, commit, outcome = chain.next_block(chain.transfers())
        t0 = time.perf_counter()
        store.advance_state(block.header.height, outcome.changes)
        t1 = time.perf_counter()
        store.commit_block(block, commit, outcome)
        t2 = time.perf_counter()
        root_s.append(t1 - t0)
        commit_s.append(t2 - t1)
        raw_s.append(raw_batch_seconds(chain.kv.db, shape, rng))
        log(f"  block {n + 1}/{args.blocks}: state root {root_s[-1] * 1e3:.0f} ms, commit "
            f"{commit_s[-1] * 1e3:.0f} ms, raw batch {raw_s[-1] * 1e3:.0f} ms")
    commit_med, raw_med = statistics.median(commit_s), statistics.median(raw_s)

    addresses = [address_of(k.public_key) for k in chain.senders] + chain.others
    sample = [account(rng.choice(addresses)) for _ in range(args.reads)]
    raw_keys = [schema.state(k) for k in sample]
    height = store.height
    last_block = store.blocks.block(height)
    assert last_block is not None
    hashes = [sha256(raw) for raw in last_block.txs]
    few = sample[: max(1, args.reads // 20)]
    reads = {
        "raw_get_per_s": rate(len(raw_keys), timed(chain.kv.db.get, raw_keys)),
        "state_get_per_s": rate(len(sample), timed(store.state.get, sample)),
        "state_get_at_previous_height_per_s": rate(
            len(sample), timed(lambda k: store.state.get_at(k, height - 1), sample)),
        "tx_by_hash_per_s": rate(len(hashes), timed(store.txs.get, hashes)),
        "state_proof_per_s": rate(len(few), timed(lambda k: store.state.prove(k, height - 1), few)),
    }
    size = sum(f.stat().st_size for f in (directory / "store").iterdir())
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "accounts": args.accounts, "txs_per_block": args.txs, "blocks": args.blocks,
        "keys_per_block": keys, "bytes_per_block": payload,
        "commit_ms_per_block": round(commit_med * 1e3, 1),
        "state_root_ms_per_block": round(statistics.median(root_s) * 1e3, 1),
        "commit_keys_per_s": rate(keys, commit_med),
        "raw_batch_ms": round(raw_med * 1e3, 1),
        "raw_batch_keys_per_s": rate(keys, raw_med),
        "commit_to_raw_ratio": round(raw_med / commit_med, 2),
        "reads": reads,
        "store_bytes": size,
    }
    print(f"commit of a {args.txs:,}-tx block ({keys:,} keys, {payload / 1e6:.1f} MB, synced): "
          f"{results['commit_ms_per_block']:.0f} ms = {results['commit_keys_per_s']:,} keys/s   "
          f"raw LevelDB batch of the same: {results['raw_batch_ms']:.0f} ms = "
          f"{results['raw_batch_keys_per_s']:,} keys/s   ratio {results['commit_to_raw_ratio']:.2f}   "
          f"(state root before it: {results['state_root_ms_per_block']:.0f} ms)")
    print(f"random reads over {args.accounts:,} accounts: raw get {reads['raw_get_per_s']:,}/s   "
          f"state get {reads['state_get_per_s']:,}/s   at previous height "
          f"{reads['state_get_at_previous_height_per_s']:,}/s   tx by hash {reads['tx_by_hash_per_s']:,}/s   "
          f"state proof {reads['state_proof_per_s']:,}/s")
    store.close()
    return results


if __name__ == "__main__":
    main()
