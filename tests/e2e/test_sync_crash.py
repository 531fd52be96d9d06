"""Kill -9 a node at random instants while it block-syncs a long chain (it syncs its
writes to disk only one block in ``DURABLE_EVERY`` while it syncs), then restart it:
each time its store opens consistent, holding every height it had reported; stopped
with SIGTERM mid-sync, it exits cleanly, and in the end it reaches the tip with the
validator's state.

``BIZRA_CRASH_SEED`` sets the random heights.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from chain.crypto import address_of
from chain.params import Params
from node import devnet, devnet_history
from node.home import Home
from node.sync import DURABLE_EVERY
from storage.store import Store

from nodekit import free_ports, height, node_cmd, processes, rpc, tail, wait_until

pytestmark = pytest.mark.slow
BLOCKS = 600
TXS = 100
KILLS = 3


def start(home: Path, *args: str) -> subprocess.Popen[bytes]:
    with (home / "node.log").open("ab") as log:
        return subprocess.Popen(node_cmd("start", "--home", str(home), *args), stdout=log,
                                stderr=subprocess.STDOUT)


def stored_height(home: Home) -> int:
    """The height of ``home``'s store, opened as a restarted node opens it (which checks
    that the state on disk hashes to the root recorded with that height)."""
    genesis, genesis_hash = home.genesis()
    store = Store.open_leveldb(home.store_dir, genesis, genesis_hash)
    try:
        return store.height
    finally:
        store.close()


def test_a_node_killed_while_it_syncs_restarts_consistent_and_reaches_the_tip(tmp_path: Path) -> None:
    assert BLOCKS > 2 * DURABLE_EVERY  # kills fall between durable writes
    rng = random.Random(int(os.environ.get("BIZRA_CRASH_SEED", str(time.time_ns()))))
    p2p, rpc_base = free_ports(2), free_ports(2) + 20
    validator, full = devnet.create(tmp_path, 1, chain_id="bizra-sync-crash-1", p2p_port=p2p,
                                    rpc_port=rpc_base, full_nodes=1, accounts=devnet_history.funded(TXS),
                                    params=Params(block_time_ms=devnet_history.BLOCK_TIME_MS))
    devnet_history.build(validator.home, BLOCKS, TXS)
    logs = [validator.home.path / "node.log", full.home.path / "node.log"]

    with processes() as started:
        started.append(start(validator.home.path))
        wait_until(lambda: height(validator.rpc_port) >= BLOCKS, 60, "the validator serves its chain", logs)

        reported = 0
        """The highest height the full node reported before it was killed."""
        for kill in range(KILLS):
            syncing = start(full.home.path)
            started.append(syncing)
            target = rng.randrange(reported + 20, reported + 20 + (BLOCKS - reported - 60) // 2)
            seen = 0

            def at_target(syncing: subprocess.Popen[bytes] = syncing, target: int = target) -> bool:
                nonlocal seen
                seen = max(seen, height(full.rpc_port))
                return seen >= target or syncing.poll() is not None

            wait_until(at_target, 120, f"kill {kill + 1}: the full node syncs to height {target}", logs)
            assert syncing.poll() is None, tail(logs[1])
            syncing.send_signal(signal.SIGKILL)
            syncing.wait()
            on_disk = stored_height(full.home)
            # The kernel holds every write the process made: nothing it reported is lost.
            assert on_disk >= seen > reported, (kill, on_disk, seen, reported)
            assert on_disk < BLOCKS, "the sync ended before the kill: make the chain longer"
            reported = seen

        # A stop mid-sync (SIGTERM, as a service manager's) is clean: exit 0, and the
        # store opens consistent with what was reported (the in-process sync tests hold
        # a write back to show that the stop waits for it).
        stopping = start(full.home.path)
        started.append(stopping)
        stop_at = reported + 5  # far from the tip: the stop comes mid-sync
        wait_until(lambda: height(full.rpc_port) >= stop_at or stopping.poll() is not None, 120,
                   f"the full node syncs to height {stop_at}", logs)
        seen = height(full.rpc_port)
        stopping.send_signal(signal.SIGTERM)
        assert stopping.wait(timeout=30) == 0, tail(logs[1])
        assert "Traceback" not in logs[1].read_text()
        on_disk = stored_height(full.home)
        assert seen <= on_disk < BLOCKS, (on_disk, seen)

        started.append(start(full.home.path))
        wait_until(lambda: height(full.rpc_port) >= BLOCKS, 120, "the full node reaches the tip", logs)

        assert rpc(full.rpc_port, "block", height=str(BLOCKS))["block_id"] == \
            rpc(validator.rpc_port, "block", height=str(BLOCKS))["block_id"]
        for key in devnet_history.senders(TXS)[::TXS // 10]:
            address = address_of(key.public_key).hex()
            assert rpc(full.rpc_port, "bizra_account", address=address) == \
                rpc(validator.rpc_port, "bizra_account", address=address)
