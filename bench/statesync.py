"""State sync speed: a new node joining chains of 500 and 2,000 blocks over the same state.

For each length it builds, once, a devnet of one validator and two full nodes whose
genesis funds ``--accounts`` accounts (default 10,000) and whose validator's store holds
a chain of that many blocks of ``--txs`` signed transfers each (default 20: accounts in
turn pay their neighbour, nonce order; :func:`node.devnet_history.few_per_block`),
committed as the validator's consensus would (:func:`node.devnet_history.commit_all`).
The two chains differ in length, not in their state: the same accounts, each a few
transfers apart. Devnets are kept in ``--cache``.

Each run starts, on a copy of the devnet, the validator (0.5 s blocks; it snapshots its
state as it starts) and, once it serves the snapshot of the built height and two blocks
above it, a full node with ``start --state-sync`` (trust from the genesis: the headers
are verified light-client style from the genesis set). Reported per length:

- ``state_sync_s``: from the full node's start to its first status answer at the tip
  (at most one block below the validator's height of that moment): discovering the
  snapshot, verifying the header, fetching and verifying the chunks, restoring, and
  block-syncing the blocks made meanwhile; the median of ``--repeat`` runs (each from
  the node's new home again), all of them in ``state_sync_runs_s``;
- ``restore_s``: of that, the restore itself, from the node's "looking for snapshots"
  to its "state sync done" log lines (the rest is the process's start, and the block
  sync of the blocks made since the snapshot); the median of the runs;
- ``block_sync_s``: the same as ``state_sync_s`` for the second full node, without
  ``--state-sync``: it executes every block from genesis (skipped with
  ``--no-block-sync``);
- ``node_start_s``: from the block-syncing node's start to its first log line after its
  store is open (the interpreter, imports, genesis and store): the floor of both.

``ratio`` is ``state_sync_s`` of the 2,000-block chain over that of the 500-block one:
state sync costs what the state costs, not what the history does, so it should stay
near 1 (the target is at most 1.3) where block sync grows with the chain.

Run: ``python bench/statesync.py`` (``--accounts 2000`` for a quick run); the last line
is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from chain.params import USEED_PER_SEED, Params
from node import devnet, devnet_history
from storage import schema

from sync import POLL_S, copy_devnet, log, port_base, sync_info

CHAIN = "bizra-statesync-1"
LENGTHS = (500, 2_000)
BALANCE = 1_000 * USEED_PER_SEED
BLOCK_TIME_MS = 500


def cached_chain(cache: Path, blocks: int, accounts: int, per_block: int, ports: tuple[int, int]) -> Path:
    """The devnet holding a chain of ``blocks`` blocks (built now unless cached)."""
    path = cache / f"{CHAIN}-{blocks}x{per_block}-{accounts}-schema{schema.SCHEMA_VERSION}"
    if (path / "build.json").exists():
        log(f"the chain is in the cache: {path}")
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=path.name + ".partial-", dir=cache))
    try:
        log(f"building {blocks:,} blocks of {per_block} transfers over {accounts:,} accounts into {path} ...")
        started = time.monotonic()
        nodes = devnet.create(partial / "devnet", 1, chain_id=CHAIN, p2p_port=ports[0], rpc_port=ports[1],
                              params=Params(block_time_ms=BLOCK_TIME_MS),
                              accounts=devnet_history.funded(accounts), full_nodes=2)
        trio.run(devnet_history.commit_all, nodes[0].home,
                 devnet_history.few_per_block(CHAIN, blocks, accounts, per_block))
        (partial / "devnet" / "build.json").write_text(
            json.dumps({"seconds": round(time.monotonic() - started, 1)}) + "\n")
        (partial / "devnet").rename(path)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return path


def start(node: devnet.DevnetNode, p2p_port: int, rpc_port: int, *options: str) -> subprocess.Popen[bytes]:
    command = devnet.node_command("start", "--home", str(node.home.path), "--p2p-port", str(p2p_port),
                                  "--rpc-port", str(rpc_port), *options)
    with (node.home.path / "node.log").open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1",
                                     "BIZRA_STATESYNC_SNAPSHOT_INTERVAL": "1000000"})


def height_of(port: int) -> int:
    info = sync_info(port)
    return -1 if info is None else int(info["latest_block_height"])


def logged_at(log_file: Path, message: str) -> float:
    """The wall-clock time (s) of the first line of ``log_file`` holding ``message``."""
    for line in log_file.read_text(errors="replace").splitlines():
        if message in line:
            stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    raise SystemExit(f"{log_file} has no line {message!r}")


def join(node: devnet.DevnetNode, ports: tuple[int, int], validator_rpc: int, bootnode: str,
         timeout: float, *options: str) -> tuple[float, float]:
    """Start ``node`` and time it to the tip; the seconds, and the wall-clock time it
    started at."""
    began = time.time()
    process = start(node, *ports, "--bootnode", bootnode, *options)
    started = time.monotonic()
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the full node exited (see {node.home.path / 'node.log'})")
            now = time.monotonic()
            if now - started > timeout:
                raise SystemExit(f"the full node did not reach the tip in {timeout:.0f} s "
                                 f"(see {node.home.path / 'node.log'})")
            mine = height_of(ports[1])
            if mine >= 0 and mine >= height_of(validator_rpc) - 1:
                return round(now - started, 2), began
            time.sleep(POLL_S)
    finally:
        devnet.stop([process])


def run(directory: Path, blocks: int, block_sync: bool, repeat: int, timeout: float) -> dict[str, Any]:
    validator, stating, syncing = devnet.nodes(directory)
    base = port_base()
    processes = [start(validator, base, base + 1)]
    try:
        snapshot = validator.home.path / "data" / "snapshots" / str(blocks)
        deadline = time.monotonic() + 120
        while not (snapshot.exists() and height_of(base + 1) >= blocks + 2):
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise SystemExit("the validator did not serve its snapshot "
                                 f"(see {validator.home.path / 'node.log'})")
            time.sleep(POLL_S)
        bootnode = f"/ip4/127.0.0.1/tcp/{base}/p2p/{validator.peer_id}"
        new_home = directory / "new-home"
        shutil.copytree(stating.home.path, new_home)
        runs, restores = [], []
        for i in range(repeat):
            log(f"  state sync of a {blocks:,}-block chain ({i + 1} of {repeat}) ...")
            shutil.rmtree(stating.home.path)
            shutil.copytree(new_home, stating.home.path)
            runs.append(join(stating, (base + 2, base + 3), base + 1, bootnode, timeout, "--state-sync")[0])
            node_log = stating.home.path / "node.log"
            restores.append(logged_at(node_log, "state sync done")
                            - logged_at(node_log, "state sync: looking for snapshots"))
        figures: dict[str, Any] = {"state_sync_s": round(statistics.median(runs), 2),
                                   "state_sync_runs_s": runs,
                                   "restore_s": round(statistics.median(restores), 2)}
        if block_sync:
            log(f"  block sync of a {blocks:,}-block chain ...")
            figures["block_sync_s"], began = join(syncing, (base + 4, base + 5), base + 1, bootnode, timeout)
            loaded = logged_at(syncing.home.path / "node.log", "state loaded")
            figures["node_start_s"] = round(loaded - began, 2)
        return figures
    finally:
        devnet.stop(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts funded at genesis")
    parser.add_argument("--txs", type=int, default=20, help="transfers per block")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bizra-bench-statesync",
                        help="where built chains are kept")
    parser.add_argument("--no-block-sync", action="store_true", help="skip the block sync comparison")
    parser.add_argument("--repeat", type=int, default=3, help="state sync runs per chain (median)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="give up on a node after this many seconds")
    args = parser.parse_args()

    base = port_base()
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                               "accounts": args.accounts, "txs_per_block": args.txs}
    for blocks in LENGTHS:
        source = cached_chain(args.cache, blocks, args.accounts, args.txs, (base, base + 1))
        directory = Path(tempfile.mkdtemp(prefix="bizra-statesync-"))
        try:
            copy_devnet(source, directory / "devnet")
            figures = run(directory / "devnet", blocks, not args.no_block_sync, args.repeat, args.timeout)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        results[str(blocks)] = figures
        print(f"{blocks:,} blocks: state sync to the tip {figures['state_sync_s']} s (restore "
              f"{figures['restore_s']} s)"
              + (f"; block sync {figures['block_sync_s']} s (node start {figures['node_start_s']} s)"
                 if "block_sync_s" in figures else ""))
    short, long = (results[str(n)] for n in LENGTHS)
    results["ratio"] = round(long["state_sync_s"] / short["state_sync_s"], 3)
    if "block_sync_s" in short:
        results["block_sync_ratio"] = round(long["block_sync_s"] / short["block_sync_s"], 3)
    print(f"state sync, {LENGTHS[1]:,} over {LENGTHS[0]:,} blocks: {results['ratio']}"
          + (f" (block sync: {results['block_sync_ratio']})" if "block_sync_ratio" in results else ""))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
