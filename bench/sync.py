"""Block sync speed: a new node catching up with a chain of signed transfers from a peer.

It builds, once, a chain of ``--blocks`` blocks of ``--txs`` transfers (defaults 1,000 ×
1,000) on a devnet of one validator and one full node: the genesis funds ``--txs``
accounts, and each block carries one transfer from every account, signed on all cores
and committed to the validator's store as its consensus would (:mod:`node.devnet_history`).
The devnet is kept in ``--cache``, by chain id and size, so later runs skip the build.

Each run starts, on a copy of it, the validator and then the full node (a new home of
the same genesis, with the validator as its bootnode) as node processes on 127.0.0.1,
and polls the full node's ``/status`` until it is at height ``--blocks``. Reported:

- blocks/s and tx/s, from the full node's first status answer to its last block; the
  seconds from its start to that answer, and to its first synced block;
- CPU (cores: user + system seconds over wall seconds) and peak RSS of the syncing
  node, and the CPU of the validator serving the blocks;
- the latest each node's event loop ran (its ``bizra_node_event_loop_lag_worst_seconds``)
  at the end, and before the sync (at the full node's first status answer): while a
  loop is late, so are that node's RPC answers, gossip and votes.

Beside them, after the nodes have stopped, what ``bench/apply_block.py`` measures, here
for blocks of ``--txs`` transfers over as many accounts: apply (header and commit checks,
decoding, signature checks on every core, execution and state root: what a node does
per block) and its floor (decode + signature check + hash, signatures on every core).
Each is taken over ``--repeat`` blocks one after another, as all their txs over all their
seconds: the sync's rate is a sustained one, and a single block's time (about 60 ms)
moves by a quarter or more between blocks on a shared machine, so the best block of a
few would compare the sync with the machine's luckiest moment. The best block's rate is
reported beside it (``sync_to_apply_best``).

Run: ``python bench/sync.py`` (``--blocks 50 --txs 200`` for a quick run); the syncing
node's pid is printed when it starts (for a profiler); the last line is one JSON object
with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from chain.crypto import BatchVerifier, address_of, verify_many_in_background
from chain.ledger import Ledger
from chain.params import Params
from node import devnet, devnet_history
from node.verifier import ProcessVerifier
from storage import schema

from apply_block import Bench, floor_seconds, signed_transfers

CHAIN = "bizra-sync-1"
POLL_S = 0.25


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def port_base() -> int:
    """The first of this run's ports (from its pid, in a range the other benches leave)."""
    return 16_000 + os.getpid() % 1_000 * 10


# --- the chain -----------------------------------------------------------------------


def build(directory: Path, blocks: int, txs: int, ports: tuple[int, int]) -> None:
    """A devnet in ``directory`` whose validator's store holds the chain."""
    devnet.create(directory, 1, chain_id=CHAIN, p2p_port=ports[0], rpc_port=ports[1],
                  params=Params(block_time_ms=devnet_history.BLOCK_TIME_MS),
                  accounts=devnet_history.funded(txs), full_nodes=1)
    reported = [0.0]

    def progress(height: int, seconds: float) -> None:
        if seconds - reported[0] >= 10 or height == blocks:
            reported[0] = seconds
            rate = height / seconds
            log(f"  built {height:,}/{blocks:,} blocks in {seconds:.0f} s "
                f"({rate:.1f} blocks/s, {(blocks - height) / rate:.0f} s left)")

    devnet_history.build(devnet.nodes(directory)[0].home, blocks, txs, progress=progress)


def cached_chain(cache: Path, blocks: int, txs: int, ports: tuple[int, int],
                 rebuild: bool) -> tuple[Path, float, bool]:
    """The devnet holding the chain (built now unless the cache has it), the seconds its
    build took, and whether it came from the cache."""
    path = cache / f"{CHAIN}-{blocks}x{txs}-schema{schema.SCHEMA_VERSION}"
    record = path / "build.json"
    if rebuild and path.exists():
        shutil.rmtree(path)
    if record.exists():
        log(f"the chain is in the cache: {path}")
        return path, float(json.loads(record.read_text())["seconds"]), True
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=path.name + ".partial-", dir=cache))
    try:
        log(f"building {blocks:,} blocks of {txs:,} transfers into {path} ...")
        started = time.monotonic()
        build(partial / "devnet", blocks, txs, ports)
        seconds = time.monotonic() - started
        (partial / "devnet" / "build.json").write_text(json.dumps({"seconds": round(seconds, 1)}) + "\n")
        (partial / "devnet").rename(path)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return path, seconds, False


def copy_devnet(source: Path, target: Path) -> None:
    # LevelDB never changes a table file once written (compactions write new ones and
    # delete the old), so the copy's store can share the cache's tables.
    def link_or_copy(src: str, dst: str) -> object:
        if src.endswith((".ldb", ".sst")):
            with contextlib.suppress(OSError):
                os.link(src, dst)
                return dst
        return shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)


# --- the nodes -----------------------------------------------------------------------


def start(node: devnet.DevnetNode, p2p_port: int, rpc_port: int,
          bootnode: str | None) -> subprocess.Popen[bytes]:
    command = devnet.node_command("start", "--home", str(node.home.path),
                                  "--p2p-port", str(p2p_port), "--rpc-port", str(rpc_port))
    if bootnode is not None:
        command += ["--bootnode", bootnode]
    with (node.home.path / "node.log").open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def sync_info(port: int) -> dict[str, Any] | None:
    """The node's ``sync_info``, or None while it does not answer."""
    try:
        info: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).json()["result"][
            "sync_info"]
        return info
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def worst_loop_lag_s(port: int) -> float | None:
    """The node's ``bizra_node_event_loop_lag_worst_seconds``, or None if it does not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "bizra_node_event_loop_lag_worst_seconds":
            return round(float(value), 3)
    return None


def cpu_seconds(process: psutil.Process) -> float:
    """User + system seconds of ``process`` and its children."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def rss_mib(process: psutil.Process) -> float:
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss / 2**20
    return total


def wait_for_validator(port: int, height: int, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        info = sync_info(port)
        if info is not None and int(info["latest_block_height"]) >= height:
            return
        time.sleep(POLL_S)
    raise SystemExit(f"the validator did not serve height {height} within 120 s (see {log_file})")


def sync(directory: Path, blocks: int, stall_s: float) -> dict[str, Any]:
    """Start the validator, then the full node, and time the full node to ``blocks``."""
    validator, full = devnet.nodes(directory)
    base = port_base()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(start(validator, base, base + 1, None))
        wait_for_validator(base + 1, blocks, processes[0], validator.home.path / "node.log")
        serving = psutil.Process(processes[0].pid)
        started = time.monotonic()
        bootnode = f"/ip4/127.0.0.1/tcp/{base}/p2p/{validator.peer_id}"
        processes.append(start(full, base + 2, base + 3, bootnode))
        syncing = psutil.Process(processes[1].pid)
        log(f"syncing node: pid {syncing.pid}, log {full.home.path / 'node.log'}")
        answered = first_block = 0.0
        first_height = 0
        cpu_at_answer = serving_at_answer = 0.0
        lag_at_answer: tuple[float | None, float | None] = (None, None)
        height, progressed, peak_rss = 0, started, 0.0
        node_rate = ""
        while height < blocks:
            if processes[1].poll() is not None:
                raise SystemExit(f"the full node exited (see {full.home.path / 'node.log'})")
            info = sync_info(base + 3)
            now = time.monotonic()
            peak_rss = max(peak_rss, rss_mib(syncing))
            if info is not None:
                if not answered:
                    answered = now
                    cpu_at_answer, serving_at_answer = cpu_seconds(syncing), cpu_seconds(serving)
                    lag_at_answer = worst_loop_lag_s(base + 3), worst_loop_lag_s(base + 1)
                new_height = int(info["latest_block_height"])
                node_rate = info.get("sync_blocks_per_second", node_rate)
                if new_height > height:
                    height, progressed = new_height, now
                    if not first_block:
                        first_block, first_height = now, new_height
            if now - progressed > stall_s:
                raise SystemExit(f"the full node stayed at height {height} of {blocks} for {stall_s:.0f} s "
                                 f"(see {full.home.path / 'node.log'})")
            time.sleep(POLL_S)
        done = time.monotonic()
        cpu, served = cpu_seconds(syncing) - cpu_at_answer, cpu_seconds(serving) - serving_at_answer
        lag_syncing, lag_serving = worst_loop_lag_s(base + 3), worst_loop_lag_s(base + 1)
    finally:
        devnet.stop(processes)
    window = done - answered
    return {"sync_s": round(window, 2), "start_to_status_s": round(answered - started, 2),
            "start_to_first_block_s": round(first_block - started, 2), "final_height": height,
            "blocks_per_s_after_first_block": round((height - first_height) / (done - first_block), 2)
            if done > first_block else None,
            "node_reported_blocks_per_s": float(node_rate) if node_rate else None,
            "cpu_cores_syncing": round(cpu / window, 2), "rss_mib_peak_syncing": round(peak_rss),
            "cpu_cores_serving": round(served / window, 2),
            "loop_lag_worst_s_syncing": lag_syncing, "loop_lag_worst_s_serving": lag_serving,
            "loop_lag_worst_s_syncing_before": lag_at_answer[0],
            "loop_lag_worst_s_serving_before": lag_at_answer[1]}


# --- the floor -----------------------------------------------------------------------


def apply_block_figures(txs: int, repeat: int, verifier: BatchVerifier) -> dict[str, Any]:
    """bench/apply_block.py's apply and floor for ``repeat`` blocks of ``txs`` transfers
    over as many accounts, one after another: the rate over them all (all their txs over
    all their seconds, as the sync's rate is taken) and the best block's."""
    rng = random.Random(1)
    senders = devnet_history.senders(txs)
    bench = Bench(txs, senders, rng)
    applies, floors = [], []
    for _ in range(repeat):
        ledger = Ledger(bench.state)
        nonces = [ledger.account(address_of(k.public_key)).nonce for k in senders]
        block = bench.next_block(signed_transfers(bench.config.chain_id, senders, nonces, rng))
        gc.collect()
        floors.append(floor_seconds(bench.config.chain_id, list(block.txs), bench.config.params, verifier))
        gc.collect()
        applies.append(bench.apply(block, verifier)[0])
    return {"apply_tx_per_s": round(txs * repeat / sum(applies)),
            "floor_tx_per_s": round(txs * repeat / sum(floors)),
            "apply_tx_per_s_best": round(txs / min(applies)), "floor_tx_per_s_best": round(txs / min(floors))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=1_000, help="blocks to sync")
    parser.add_argument("--txs", type=int, default=1_000, help="transfers per block")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bizra-bench-sync",
                        help="where built chains are kept")
    parser.add_argument("--rebuild", action="store_true", help="build the chain even if it is cached")
    parser.add_argument("--stall", type=float, default=120,
                        help="give up when the full node's height stays the same this many seconds")
    parser.add_argument("--repeat", type=int, default=30,
                        help="blocks for apply and floor (their rate over all, and the best)")
    parser.add_argument("--threads", action="store_true",
                        help="apply and floor: check signatures on threads instead of worker processes")
    parser.add_argument("--keep", type=Path, help="run the nodes in this directory and keep it (homes, logs)")
    args = parser.parse_args()

    base = port_base()
    source, build_s, cached = cached_chain(args.cache, args.blocks, args.txs, (base, base + 1), args.rebuild)
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bizra-sync-"))
    run = directory / "devnet"
    copy_devnet(source, run)
    log(f"syncing {args.blocks:,} blocks of {args.txs:,} transfers ...")
    figures = sync(run, args.blocks, args.stall)
    if args.keep is None:
        shutil.rmtree(directory, ignore_errors=True)

    log(f"apply and floor: blocks of {args.txs:,} transfers ...")
    with contextlib.ExitStack() as stack:
        verifier: BatchVerifier = verify_many_in_background
        if not args.threads:
            verifier = stack.enter_context(ProcessVerifier())
        floor = apply_block_figures(args.txs, args.repeat, verifier)

    window = figures["sync_s"]
    tx_per_s = args.blocks * args.txs / window
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "blocks": args.blocks, "txs_per_block": args.txs,
        "blocks_per_s": round(args.blocks / window, 2), "tx_per_s": round(tx_per_s),
        **figures,
        **floor,
        "sync_to_apply": round(tx_per_s / floor["apply_tx_per_s"], 3),
        "sync_to_floor": round(tx_per_s / floor["floor_tx_per_s"], 3),
        "sync_to_apply_best": round(tx_per_s / floor["apply_tx_per_s_best"], 3),
        "apply_signature_checks": "threads" if args.threads else "worker processes",
        "build_s": round(build_s, 1), "chain_cached": cached,
    }
    print(f"synced {args.blocks:,} blocks of {args.txs:,} transfers in {window:.1f} s: "
          f"{results['blocks_per_s']:,} blocks/s, {results['tx_per_s']:,} tx/s "
          f"({figures['blocks_per_s_after_first_block']} blocks/s from its first synced block on)")
    print(f"apply-block {floor['apply_tx_per_s']:,} tx/s over {args.repeat} blocks (verify+apply+root; "
          f"best block {floor['apply_tx_per_s_best']:,}), floor {floor['floor_tx_per_s']:,} tx/s "
          f"(decode+verify+hash, {os.cpu_count()} cores; best {floor['floor_tx_per_s_best']:,}): sync is "
          f"{results['sync_to_apply']:.2f} of apply-block ({results['sync_to_apply_best']:.2f} of its best "
          f"block), {results['sync_to_floor']:.2f} of the floor")
    print(f"syncing node: {figures['cpu_cores_syncing']} cores, peak RSS "
          f"{figures['rss_mib_peak_syncing']:,} MiB; "
          f"serving validator: {figures['cpu_cores_serving']} cores; from its start: first status "
          f"{figures['start_to_status_s']} s, first block {figures['start_to_first_block_s']} s")
    print(f"event loop at its latest: syncing node {figures['loop_lag_worst_s_syncing']} s "
          f"({figures['loop_lag_worst_s_syncing_before']} s before the sync), serving validator "
          f"{figures['loop_lag_worst_s_serving']} s ({figures['loop_lag_worst_s_serving_before']} s before)")
    print(f"chain build: {build_s:.0f} s{' (cached)' if cached else ''}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
