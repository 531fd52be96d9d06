"""Kill -9 at random instants while a real process commits blocks to LevelDB: every
height is afterwards wholly present or wholly absent, and the latest-height record
points at a whole block whose state the store rebuilds to the recorded root.

``BIZRA_CRASH_ROUNDS`` sets the number of kills (50 by default), ``BIZRA_CRASH_SEED``
the random instants.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chain.codec import loads_canonical
from chain.types import tx_hash
from storage import schema
from storage.leveldb import LevelDB
from storage.store import Store

from chainkit import LocalChain
from storekit import GENESIS_HASH

TESTS = Path(__file__).resolve().parents[1]
WRITER = TESTS / "scripts" / "crashwriter.py"
TXS_PER_BLOCK = 64
HEIGHT_SUFFIXED = (schema.BLOCK, schema.COMMIT, schema.SEEN_COMMIT, schema.STATE_VERSION,
                   schema.TRIE, schema.STATE_CHANGES, schema.STATE_ROOT)


def run_writer_until_killed(directory: Path, delay: float) -> None:
    # The writer imports the tests' support modules.
    child = subprocess.Popen([sys.executable, str(WRITER), str(directory), str(TXS_PER_BLOCK)],
                             env={**os.environ, "PYTHONPATH": str(TESTS / "support")},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("ready"):
            child.kill()
            _, err = child.communicate(timeout=30)
            pytest.fail(f"the writer did not start: {line!r} {err}")
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def check_nothing_beyond(directory: Path) -> int:
    """Read the raw database: no record of a height above the latest; return the latest."""
    kv = LevelDB(directory)
    try:
        raw = kv.get(schema.LATEST)
        assert raw is not None
        latest = loads_canonical(raw, "latest")[0]
        for family in HEIGHT_SUFFIXED:
            for key, _ in kv.iterate(family, family + b"\xff"):
                assert schema.height_of(key) <= latest, (family, schema.height_of(key), latest)
        for _, value in kv.iterate(schema.BLOCK_ID, schema.BLOCK_ID + b"\xff"):
            assert int.from_bytes(value, "big") <= latest
        for _, value in kv.iterate(schema.TX, schema.TX + b"\xff"):
            assert loads_canonical(value, "tx entry")[0] <= latest
        for key, _ in kv.iterate(schema.SENDER_TX, schema.SENDER_TX + b"\xff"):
            assert int.from_bytes(key[-12:-4], "big") <= latest
        return int(latest)
    finally:
        kv.close()


def check_whole(store: Store, heights: range) -> None:
    """Every height in ``heights`` has its block, commit, state root and tx entries, and
    they agree with each other."""
    for h in heights:
        block = store.blocks.block(h)
        assert block is not None and block.header.height == h
        assert store.blocks.block_height(block.block_id()) == h
        commit = store.blocks.commit(h)
        assert commit is not None and commit.block_id == block.block_id()
        root = store.state.root_at(h)
        after = store.blocks.block(h + 1)
        assert root == (store.app_hash if after is None else after.header.app_hash)
        assert len(block.txs) == TXS_PER_BLOCK
        for i, raw in enumerate(block.txs):
            found = store.txs.get(tx_hash(raw))
            assert found is not None and (found.height, found.index) == (h, i)
            assert found.result.code == 0
    assert store.blocks.seen_commit() is not None or store.height == 0


@pytest.mark.slow
def test_killed_writers_leave_whole_heights(tmp_path: Path) -> None:
    rounds = int(os.environ.get("BIZRA_CRASH_ROUNDS", "50"))
    seed = int(os.environ.get("BIZRA_CRASH_SEED", "20261124"))
    rng = random.Random(seed)
    directory = tmp_path / "store"
    chain = LocalChain(users=8)
    checked = 0
    for round_ in range(rounds):
        run_writer_until_killed(directory, rng.uniform(0.0, 0.4))
        latest = check_nothing_beyond(directory)
        assert latest >= checked, f"round {round_} (seed {seed}): height went back from {checked} to {latest}"
        store = Store.open_leveldb(directory, chain.genesis, GENESIS_HASH)
        try:
            assert store.height == latest
            check_whole(store, range(max(1, checked), latest + 1))
        finally:
            store.close()
        checked = latest
    assert checked >= rounds, f"only {checked} blocks were committed in {rounds} rounds"
