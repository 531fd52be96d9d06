"""State sync between real node processes over libp2p on loopback.

A devnet validator holds a chain of 520 blocks over 10,000 funded accounts (built
directly into its store) and makes 0.5 s blocks on top; it snapshots its state every 100
heights (and once as it starts). A new node joins it with ``start --state-sync``, a
trust height and hash read from the validator's RPC ``commit`` (as the README says),
and two peers: the validator, and a liar (tests/scripts/snapshot_liar.py) that lists
the validator's snapshots and serves their chunks corrupted, holding every chunk
request unanswered until the new node first goes away.

- The new node is killed with SIGKILL while its restore is held by the liar:
  its store is left with the restore marker (a partial state).
- Restarted, it discards the partial restore, restores again, bans the liar at its
  first corrupted chunk, completes from the validator, and reaches the tip.
- Its ``earliest_block_height`` is above 1, a block below it is refused with an error
  naming the lowest height, and ``bizra_account`` answers as the validator's for
  sampled accounts.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chain.crypto import address_of
from chain.params import Params
from node.loadgen import account_key
from storage import schema
from storage.leveldb import LevelDB

from nodekit import free_ports, height, node_cmd, rpc, tail, wait_until
from statesynckit import build

pytestmark = pytest.mark.slow
LIAR = Path(__file__).resolve().parents[1] / "scripts" / "snapshot_liar.py"
ACCOUNTS = 10_000
BLOCKS = 520
SNAPSHOT = BLOCKS  # the validator's snapshot of the height it starts at
STALL_S = 30.0


def start(home: Path, log: Path, env: dict[str, str], *options: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(node_cmd("start", "--home", str(home), *options), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def logged(log: Path, text: str) -> bool:
    return text in log.read_text(errors="replace") if log.exists() else False


def test_state_sync_joins_bans_a_liar_and_survives_a_kill(tmp_path: Path) -> None:
    base = free_ports(6)
    validator, joiner = build(tmp_path / "devnet", chain_id="bizra-statesync-1", accounts=ACCOUNTS,
                              blocks=BLOCKS, per_block=20, p2p_port=base, rpc_port=base + 2,
                              params=Params(block_time_ms=500, epoch_length=100), full_nodes=1)
    logs = [tmp_path / "validator.log", tmp_path / "joiner.log"]
    env = {"BIZRA_STATESYNC_SNAPSHOT_INTERVAL": "100", "BIZRA_RPC_REQUESTS_PER_MINUTE": "1000000"}
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(start(validator.home.path, logs[0], env))
        snapshot_dir = validator.home.path / "data" / "snapshots" / str(SNAPSHOT)
        wait_until(lambda: snapshot_dir.exists() and height(validator.rpc_port) > SNAPSHOT + 2, 120,
                   "the validator serves its snapshot", logs)

        liar_snapshots = tmp_path / "liar-snapshots"
        shutil.copytree(snapshot_dir, liar_snapshots / str(SNAPSHOT))
        with (tmp_path / "liar.log").open("wb") as err:
            liar = subprocess.Popen([sys.executable, str(LIAR), "--genesis", str(validator.home.genesis_file),
                                     "--snapshots", str(liar_snapshots), "--port", str(base + 4),
                                     "--hold", joiner.peer_id, "--stall", str(STALL_S)],
                                    stdout=subprocess.PIPE, stderr=err)
        started.append(liar)
        assert liar.stdout is not None
        line = liar.stdout.readline().decode().split()
        assert line[:1] == ["listening"], tail(tmp_path / "liar.log")
        liar_address = line[1]
        liar_peer = liar_address.rpartition("/p2p/")[2]

        trusted = SNAPSHOT - 150
        signed = rpc(validator.rpc_port, "commit", height=str(trusted))["signed_header"]
        assert signed["header"]["height"] == str(trusted)
        trust = {"BIZRA_STATESYNC_TRUST_HEIGHT": str(trusted),
                 "BIZRA_STATESYNC_TRUST_HASH": signed["commit"]["block_id"]["hash"], **env}
        options = ("--state-sync", "--bootnode", liar_address, "--bootnode",
                   f"/ip4/127.0.0.1/tcp/{validator.p2p_port}/p2p/{validator.peer_id}")

        # 1. Killed in the middle of its restore (held there by the liar's stall).
        first = start(joiner.home.path, logs[1], trust, *options)
        started.append(first)
        wait_until(lambda: logged(logs[1], "state sync: chunk applied"), 120, "a chunk applied", logs)
        assert not logged(logs[1], "state sync done")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        kv = LevelDB(joiner.home.store_dir)
        try:
            assert kv.get(schema.RESTORING) is not None  # a partial restore was left
        finally:
            kv.close()

        # 2. Restarted: the partial restore discarded, the liar banned, the tip reached.
        mark = logs[1].stat().st_size
        started.append(start(joiner.home.path, logs[1], trust, *options))
        wait_until(lambda: height(joiner.rpc_port) >= height(validator.rpc_port) - 2 > SNAPSHOT, 180,
                   "the joiner at the tip", logs)
        after = logs[1].read_text(errors="replace")[mark:]
        assert "an interrupted state sync was discarded" in after
        assert "state sync done" in after
        assert "peer banned" in after and liar_peer in after and "not the chain's state" in after

        status = rpc(joiner.rpc_port, "status")["sync_info"]
        earliest = int(status["earliest_block_height"])
        assert earliest == SNAPSHOT + 1, status
        with pytest.raises(AssertionError, match=f"lowest height is {earliest}"):
            rpc(joiner.rpc_port, "block", height="5")
        lowest = rpc(joiner.rpc_port, "block", height=str(earliest))
        assert lowest["block"]["header"]["height"] == str(earliest)
        rng = random.Random(7)
        for i in [0, 1, ACCOUNTS - 1, *rng.sample(range(ACCOUNTS), 20)]:
            address = address_of(account_key(i).public_key).hex()
            mine = rpc(joiner.rpc_port, "bizra_account", address=address)
            theirs = rpc(validator.rpc_port, "bizra_account", address=address)
            assert (mine["balance"], mine["nonce"]) == (theirs["balance"], theirs["nonce"]), address
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
                p.wait()
