"""Block execution speed against its floor: blocks of signed transfers.

For each state size (10,000 and 1,000,000 accounts by default) it builds a block of
10,000 transfers from 10,000 distinct senders, each paying another of the senders (so
both blocks change the same number of keys and only the size of the state differs),
and measures:

- apply: ``apply_block`` (header and last-commit checks, decoding, signature checks on
  every core, execution) plus the state-root update, i.e. what a node does per block;
  as in the node, the root is worked out while the signatures are still being checked
  and the commit adopts it;
- floor: on the same txs, decode + signature check + hash, with signatures checked on
  every core while the main thread decodes and hashes;
- the state root's work, worked out ahead and left at commit, for both state sizes,
  and the ratio of its totals;
- with ``--store leveldb``, the state is in a node's store (LevelDB, in a temporary
  directory) rather than in memory: apply reads it there, and each block is then
  written as the node commits it (the write timed apart, not in apply).

In both apply and floor, signatures are checked by the node's worker processes
(``--threads``: by threads in this process, for comparison).

Then the mypyc-compiled against the interpreted build of PoI scoring, the merkle root,
the state tree and the one-pass tx decoder (the interpreted one is loaded from the
installed ``.py`` files).

Run: ``python bench/apply_block.py`` (``--help`` for sizes). The last line is one JSON
object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib.util
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import chain.fastcodec
import chain.merkle
import chain.poi
import chain.statetree
from chain.blocks import make_block
from chain.codec import dumps
from chain.commits import median_time, vote_sign_bytes
from chain.compiled import compiled_status
from chain.crypto import BatchVerifier, PrivateKey, address_of, verify_many_in_background
from chain.genesis import GenesisAccount, make_devnet_genesis
from chain.ledger import Ledger
from chain.params import USEED_PER_SEED, Params
from chain.sizes import ADDRESS_LEN
from chain.state import MemoryState, chain_config, state_from_genesis
from chain.statekeys import account
from chain.transition import apply_block, decode_tx, least_fee, sign_tx, tx_sign_prefix, tx_signature
from chain.types import Block, Commit, CommitFlag, CommitSig, Transfer, Vote, VoteType, sha256
from chain.validatorsets import validator_set_at
from node.verifier import ProcessVerifier
from storage.statestore import StateStore
from storage.store import Store

GENESIS_TIME_NS = 1_790_000_000_000_000_000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def signed_transfers(chain_id: str, senders: list[PrivateKey], nonces: list[int],
                     rng: random.Random) -> list[bytes]:
    """One transfer per sender, each paying another sender chosen by a random shuffle."""
    addresses = [address_of(k.public_key) for k in senders]
    order = list(range(len(senders)))
    rng.shuffle(order)
    txs = []
    for i, k in enumerate(senders):
        to = addresses[order[i]] if order[i] != i else addresses[(i + 1) % len(senders)]
        body = Transfer(to, 1 + rng.randrange(1_000))
        txs.append(sign_tx(chain_id, k, nonces[i], body, least_fee(Params(), nonces[i], body)))
    return txs


class Bench:
    """A chain of 4 validators whose state holds ``accounts`` funded accounts: in memory,
    or with ``directory`` in a node's store (LevelDB) there, each block then committed
    to it as the node commits it."""

    def __init__(self, accounts: int, senders: list[PrivateKey], rng: random.Random,
                 directory: Path | None = None) -> None:
        self.validators = [PrivateKey.from_seed(sha256(b"bench-validator" + bytes([i])))
                           for i in range(4)]
        genesis = make_devnet_genesis("bizra-bench-1", self.validators, GENESIS_TIME_NS,
                                      params=Params())
        self.config = chain_config(genesis)
        funded = [address_of(k.public_key) for k in senders]
        funded += [rng.randbytes(ADDRESS_LEN) for _ in range(accounts - len(funded))]
        t0 = time.perf_counter()
        self.store: Store | None = None
        self.state: MemoryState | StateStore
        if directory is None:
            memory = state_from_genesis(genesis)
            balance = dumps([1_000_000 * USEED_PER_SEED, 0])
            memory.commit({account(a): balance for a in funded})
            self.state = memory
        else:
            genesis = dataclasses.replace(genesis, accounts=(
                *genesis.accounts, *(GenesisAccount(a, 1_000_000 * USEED_PER_SEED) for a in funded)))
            self.store = Store.open_leveldb(directory, genesis, sha256(b"bench genesis"))
            self.state = self.store.state
        self.build_s = time.perf_counter() - t0
        self.last_commit: Commit | None = None
        # An empty first block, so the measured block carries and checks a last commit.
        self.apply(self.next_block([]))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def next_block(self, txs: list[bytes]) -> Block:
        ledger = Ledger(self.state)
        height = ledger.meta().height + 1
        members = validator_set_at(ledger, height, self.config)
        time_ns = (GENESIS_TIME_NS if self.last_commit is None
                   else median_time(self.last_commit, validator_set_at(ledger, height - 1, self.config)))
        return make_block(self.state, self.state.app_hash, self.config, txs=txs,
                          proposer_address=address_of(members[0].pubkey), time_ns=time_ns,
                          last_commit=self.last_commit)

    def apply(self, block: Block, verifier: BatchVerifier = verify_many_in_background
              ) -> tuple[float, float, float, float]:
        """Apply and commit ``block`` as the node does; returns the seconds of apply and
        root, of the root worked out while signatures were checked (0 if they were done
        first), of the root left at commit, and of the store's write (0 in memory)."""
        commit = self.sign_commit(block)
        ahead = [0.0]

        def prepare_root(app_hash: bytes, changes: dict[bytes, bytes | None]) -> None:
            started = time.perf_counter()
            self.state.prepare_root(app_hash, changes)
            ahead[0] = time.perf_counter() - started

        t0 = time.perf_counter()
        outcome = apply_block(self.state, self.state.app_hash, block, self.config, verifier=verifier,
                              prepare_root=prepare_root)
        t1 = time.perf_counter()
        if self.store is None:
            assert isinstance(self.state, MemoryState)
            self.state.commit(outcome.changes)
            t2 = t3 = time.perf_counter()
        else:
            self.store.advance_state(block.header.height, outcome.changes)
            t2 = time.perf_counter()
            self.store.commit_block(block, commit, outcome)
            t3 = time.perf_counter()
        self.last_commit = commit
        return t2 - t0, ahead[0], t2 - t1, t3 - t2

    def sign_commit(self, block: Block) -> Commit:
        h = block.header.height
        signers = {k.public_key: k for k in self.validators}
        members = validator_set_at(Ledger(self.state), h, self.config)
        sigs = []
        for i, m in enumerate(members):
            ts = block.header.time_ns + 6_000_000_000
            vote = Vote(VoteType.PRECOMMIT, h, 0, block.block_id(), ts, address_of(m.pubkey), i, b"")
            sig = signers[m.pubkey].sign(vote_sign_bytes(self.config.chain_id, vote))
            sigs.append(CommitSig(CommitFlag.COMMIT, ts, sig))
        return Commit(h, 0, block.block_id(), tuple(sigs))


def floor_seconds(chain_id: str, txs: list[bytes], params: Params, verifier: BatchVerifier) -> float:
    """Decode + signature check + hash of ``txs``: signatures on every core, decoding
    and hashing on the main thread meanwhile (what any node must do per tx)."""
    prefix = tx_sign_prefix(chain_id)
    t0 = time.perf_counter()
    pending = verifier([tx_signature(prefix, raw) for raw in txs])
    for raw in txs:
        decode_tx(raw, params)
        sha256(raw)
    ok = pending.result()
    elapsed = time.perf_counter() - t0
    if not all(ok):
        raise SystemExit("floor: a signature failed")
    return elapsed


def interpreted(module: ModuleType) -> ModuleType:
    """The same module loaded from its ``.py`` source, not the compiled extension."""
    path = Path(module.__file__ or "").with_suffix(".py")
    if not path.exists():
        path = Path(module.__file__ or "").parent / (module.__name__.rsplit(".", 1)[1] + ".py")
    spec = importlib.util.spec_from_file_location(module.__name__ + "_interpreted", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def compiled_vs_interpreted(rng: random.Random) -> dict[str, Any]:
    weights = Params().poi_weights
    dims = [tuple(rng.randrange(1_000_001) for _ in range(5)) for _ in range(100_000)]
    items = [rng.randbytes(32) for _ in range(10_000)]
    changes: dict[bytes, bytes | None] = {rng.randbytes(21): rng.randbytes(40) for _ in range(20_000)}
    key = PrivateKey.from_seed(sha256(b"bench-decode"))
    encoded = [sign_tx("bizra-bench-1", key, n, Transfer(rng.randbytes(ADDRESS_LEN), 1 + n), 2_000)
               for n in range(10_000)]
    out: dict[str, Any] = {}
    for name, mod, run in (
        ("poi_scoring_100k", chain.poi,
         lambda m: [m.attestation_score(d, 10_000, weights, 150_000) for d in dims]),
        ("merkle_root_10k", chain.merkle, lambda m: m.merkle_root(items)),
        ("state_tree_20k", chain.statetree, lambda m: m.StateTree().update(changes)),
        ("tx_decode_10k", chain.fastcodec, lambda m: [m.read_tx(raw) for raw in encoded]),
    ):
        py = interpreted(mod)
        t_c = best_of(5, lambda run=run, mod=mod: run(mod))  # type: ignore[misc]
        t_p = best_of(5, lambda run=run, py=py: run(py))  # type: ignore[misc]
        out[name] = {"compiled_ms": round(t_c * 1e3, 3), "interpreted_ms": round(t_p * 1e3, 3),
                     "speedup": round(t_p / t_c, 2) if t_c else None,
                     "compiled_loaded": compiled_status().get(mod.__name__, False)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=10_000, help="transfers per block")
    parser.add_argument("--accounts", type=int, nargs="+", default=[10_000, 1_000_000],
                        help="state sizes to measure (accounts)")
    parser.add_argument("--repeat", type=int, default=3, help="blocks per state size (best and median)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", choices=["memory", "leveldb"], default="memory",
                        help="where the state is: in memory, or in a node's store (LevelDB, in a "
                             "temporary directory), each block then written as the node writes it")
    parser.add_argument("--threads", action="store_true",
                        help="check signatures on threads instead of the node's worker processes")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        verifier: BatchVerifier = verify_many_in_background
        if not args.threads:
            verifier = stack.enter_context(ProcessVerifier())
        run(args, verifier)


def run(args: argparse.Namespace, verifier: BatchVerifier) -> None:
    rng = random.Random(args.seed)
    log(f"signing {args.txs} senders' keys ...")
    senders = [PrivateKey.from_seed(sha256(b"bench-sender" + i.to_bytes(4, "big")))
               for i in range(args.txs)]

    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "platform": platform.platform()},
                               "compiled": compiled_status(), "txs_per_block": args.txs,
                               "signature_checks": "threads" if args.threads else "worker processes",
                               "store": args.store}
    per_size: dict[str, Any] = {}
    for accounts in args.accounts:
        log(f"building a state of {accounts:,} accounts ...")
        directory = None if args.store == "memory" else Path(tempfile.mkdtemp(prefix="bizra-apply-"))
        bench = Bench(max(accounts, args.txs), senders, rng, directory)
        applies, aheads, roots, floors, writes = [], [], [], [], []
        for _ in range(args.repeat):
            ledger = Ledger(bench.state)
            nonces = [ledger.account(address_of(k.public_key)).nonce for k in senders]
            txs = signed_transfers(bench.config.chain_id, senders, nonces, rng)
            block = bench.next_block(txs)
            gc.collect()
            floors.append(floor_seconds(bench.config.chain_id, txs, bench.config.params, verifier))
            gc.collect()
            total, ahead, root, write = bench.apply(block, verifier)
            applies.append(total)
            aheads.append(ahead)
            roots.append(root)
            writes.append(write)
        best_apply, best_floor = min(applies), min(floors)
        entry = {
            "accounts": accounts,
            "state_build_s": round(bench.build_s, 2),
            "apply_s_best": round(best_apply, 4), "apply_s_median": round(statistics.median(applies), 4),
            "floor_s_best": round(best_floor, 4),
            "state_root_ahead_s_best": round(min(aheads), 4),
            "state_root_work_s_best": round(min(a + r for a, r in zip(aheads, roots, strict=True)), 4),
            "state_root_s_best": round(min(roots), 4),
            "store_write_s_best": round(min(writes), 4) if directory is not None else None,
            "tx_per_s": round(args.txs / best_apply),
            "floor_tx_per_s": round(args.txs / best_floor),
            "ratio": round(best_floor / best_apply, 3),
        }
        per_size[str(accounts)] = entry
        print(f"{accounts:>10,} accounts: {entry['tx_per_s']:>7,} tx/s verify+apply+root   "
              f"floor {entry['floor_tx_per_s']:>7,} tx/s (decode+verify+hash, {os.cpu_count()} cores)   "
              f"ratio {entry['ratio']:.2f}   state root {entry['state_root_ahead_s_best'] * 1e3:.1f} ms "
              f"while signatures were checked, {entry['state_root_s_best'] * 1e3:.1f} ms at commit"
              + (f"   store write {min(writes) * 1e3:.1f} ms" if directory is not None else ""),
              flush=True)
        bench.close()
        del bench
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        gc.collect()
    results["sizes"] = per_size
    sizes = [per_size[str(a)] for a in args.accounts]
    headline = min(sizes, key=lambda e: e["tx_per_s"])
    results["tx_per_s"] = headline["tx_per_s"]
    results["floor_tx_per_s"] = headline["floor_tx_per_s"]
    results["ratio"] = headline["ratio"]
    if len(sizes) >= 2:
        results["state_root_ratio_largest_vs_smallest"] = round(
            sizes[-1]["state_root_work_s_best"] / sizes[0]["state_root_work_s_best"], 3)
        print(f"state root of a {args.txs:,}-tx block, all its work: "
              f"{sizes[-1]['state_root_work_s_best'] * 1e3:.1f} ms over "
              f"{args.accounts[-1]:,} accounts vs {sizes[0]['state_root_work_s_best'] * 1e3:.1f} ms over "
              f"{args.accounts[0]:,} accounts: x{results['state_root_ratio_largest_vs_smallest']}")
    log("compiled vs interpreted ...")
    results["mypyc"] = compiled_vs_interpreted(rng)
    for name, figs in results["mypyc"].items():
        print(f"{name:>18}: compiled {figs['compiled_ms']:.1f} ms   interpreted "
              f"{figs['interpreted_ms']:.1f} ms   x{figs['speedup']}"
              f"{'' if figs['compiled_loaded'] else '   (compiled build NOT loaded)'}")
    print(json.dumps(results, separators=(",", ":")))


if __name__ == "__main__":
    main()
