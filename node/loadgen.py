"""Load on a devnet of real node processes on this machine, over JSON-RPC
(``bizra-node bench load``; ``python bench/load.py`` runs the same).

It makes a devnet (``--validators`` validators, ``--block-time-ms`` blocks) whose genesis
funds ``--accounts`` accounts, pre-signs transfers from them (each account's in nonce
order), starts the nodes, and sends ``--rate`` txs a second for ``--seconds`` with
``bizra_broadcast_txs`` calls (many txs each, admitted together: the node's cheapest
way in), spread over the nodes (an account always to the same node) and, at each node,
over ``--clients`` clients with one request in flight each. It follows the
chain on a WebSocket (``NewBlock``) and reports:

- committed tx/s over the sending window, and txs lost: accepted (check code 0) but
  never in a block (after the last was sent, the run waits for the pending ones while
  blocks keep coming, ``--drain`` seconds at most); txs refused, by reason. A tx
  refused for now (code 101: a full mempool or a busy node, which is back-pressure,
  not loss) is sent again a second later, as a client would, and counted;
- submit→commit latency p50/p95/p99 (send time to the arrival of the block's event,
  its whole message received, before the follower decodes it);
- block intervals (header times) and txs per block;
- CPU (cores: user + system seconds over wall seconds, drain included) and RSS of each
  node process; and, over the sending window, how busy the machine's cores were (every
  process: nodes, this generator and anything else) and the cores this generator used.

Beside them, the floor on this machine: every node checks every tx's signature once,
so the machine checks ``nodes × tx/s`` signatures a second at least; the floor is the
Ed25519 verifications all cores do in a second, divided by the number of nodes.

The last line printed is one JSON object with every figure. It needs the ``bench``
extra (``pip install 'bizra-node[bench]'``: httpx, psutil).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import itertools
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from hashlib import sha256
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio
from trio_websocket import open_websocket_url

from chain.blocks import make_block
from chain.crypto import PrivateKey, SignedItem, address_of, verify
from chain.genesis import Genesis, GenesisAccount
from chain.ledger import Ledger
from chain.params import USEED_PER_SEED, Params
from chain.state import chain_config, state_from_genesis
from chain.timefmt import parse_rfc3339_ns
from chain.transition import apply_block, least_fee, sign_tx
from chain.types import Transfer
from chain.validatorsets import validator_set_at
from node import devnet
from node.rpc import jsontext

CHAIN = "bizra-load-1"
BATCH = 250
"""Txs in one ``bizra_broadcast_txs`` call."""
BALANCE = 1_000_000 * USEED_PER_SEED
STALLED_S = 60.0
"""After the load, the wait for pending txs ends once no block came for this long."""
RETRY_S = 1.0
CODE_NOT_NOW = 101
"""broadcast_tx's code for a full mempool or a busy node."""


def account_key(i: int) -> PrivateKey:
    return PrivateKey.from_seed(sha256(b"bizra load account %d" % i).digest())


def sign_range(args: tuple[int, int, int]) -> list[list[bytes]]:
    """Transfers of accounts ``first`` to ``last - 1``: ``per_account`` each, nonce order."""
    first, last, per_account = args
    out = []
    for i in range(first, last):
        key = account_key(i)
        to = address_of(account_key(i + 1).public_key)
        body = Transfer(to, 1)
        out.append([sign_tx(CHAIN, key, n, body, least_fee(Params(), n, body)) for n in range(per_account)])
    return out


def presign(accounts: int, per_account: int) -> list[list[bytes]]:
    chunks = [(i, min(i + 100, accounts), per_account) for i in range(0, accounts, 100)]
    with ProcessPoolExecutor() as pool:
        return [txs for part in pool.map(sign_range, chunks) for txs in part]


def verify_floor() -> float:
    """Ed25519 verifications per second on all cores (one core measured, times cores)."""
    key = PrivateKey.generate()
    message = b"x" * 200
    signature = key.sign(message)
    n = 3_000
    started = time.perf_counter()
    for _ in range(n):
        verify(key.public_key, message, signature)
    return n / (time.perf_counter() - started) * (os.cpu_count() or 1)


def apply_floor_us(genesis: Genesis, txs: list[bytes]) -> float:
    """CPU µs per tx, on one core, to check a tx's signature and execute it: the first
    block of ``genesis`` holding ``txs``, applied on this thread (signatures checked
    here too, not on the pool), best of 3."""
    config = chain_config(genesis)
    state = state_from_genesis(genesis)
    proposer = address_of(validator_set_at(Ledger(state), 1, config)[0].pubkey)
    block = make_block(state, state.app_hash, config, txs=txs, proposer_address=proposer,
                       time_ns=genesis.genesis_time_ns, last_commit=None)

    def on_this_thread(items: Sequence[SignedItem]) -> Future[list[bool]]:
        done: Future[list[bool]] = Future()
        done.set_result([verify(*item) for item in items])
        return done

    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        apply_block(state, state.app_hash, block, config, verifier=on_this_thread)
        best = min(best, time.thread_time() - started)
    return best / len(txs) * 1e6


def node_counter(port: int, name: str) -> float:
    """A counter of a node's Prometheus metrics (0 if it has none by that name)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found = re.search(rf"^{name}_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@dataclasses.dataclass(frozen=True)
class Options:
    """What to run (see the module docstring)."""

    validators: int = 4
    rate: float = 2_000
    seconds: float = 60
    accounts: int = 2_000
    clients: int = 4
    block_time_ms: int = 6_000
    drain: float = 300
    keep: Path | None = None


def follow_blocks(port: int, out: Connection) -> None:
    """The block follower (run in a process of its own): subscribes to ``NewBlock`` on
    the node of RPC port ``port`` (127.0.0.1), sends None on ``out`` once subscribed,
    then for each block ``(height, header time ns, arrival time, tx hashes)``, the
    arrival on ``time.monotonic()``, which every process of the machine shares."""

    async def follow() -> None:
        # A block's event (tens of MB under load) read a MiB at a time, not trio-websocket's
        # 4 KiB: its reassembly is the follower's own work, yet it delays the arrival.
        async with open_websocket_url(f"ws://127.0.0.1:{port}/websocket", max_message_size=256 << 20,
                                      receive_buffer_size=1 << 20) as ws:
            await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": "blocks", "method": "subscribe",
                                              "params": {"query": "tm.event='NewBlock'"}}))
            await ws.get_message()
            out.send(None)
            while True:
                text = await ws.get_message()
                arrival = time.monotonic()  # delivered: what follows is this client's own work
                message = jsontext.loads(text)
                if "result" not in message or "data" not in message["result"]:
                    continue
                block = message["result"]["data"]["value"]["block"]
                out.send((int(block["header"]["height"]), parse_rfc3339_ns(block["header"]["time"]), arrival,
                          [sha256(base64.b64decode(tx)).digest() for tx in block["data"]["txs"]]))

    trio.run(follow)


class Run:
    def __init__(self, args: Options, ports: list[int]) -> None:
        self.args = args
        self.ports = ports
        self.sent: dict[bytes, float] = {}
        self.accepted: set[bytes] = set()
        self.refused: dict[str, int] = {}
        self.committed: dict[bytes, float] = {}
        self.blocks: list[tuple[int, int, int]] = []  # height, header time ns, txs
        self.window_start = self.window_end = 0.0
        self.follower: psutil.Process | None = None
        self.cpu_at_start = self.cpu_at_end = (psutil.cpu_times(), 0.0)
        """The machine's CPU times and this load generator's CPU seconds (its process and
        its follower's) when sending starts and ends."""
        self.last_block = time.monotonic()
        self.retried = 0
        self.unsent = 0

    async def follow(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Note each committed block and when it arrived, as :func:`follow_blocks` reports
        them from a process of its own: decoding a block event of many txs on this
        process's event loop would hold every sender back meanwhile."""
        receiver, sender = multiprocessing.Pipe(duplex=False)
        follower = multiprocessing.get_context("spawn").Process(
            target=follow_blocks, args=(self.ports[0], sender), daemon=True)
        follower.start()
        sender.close()
        self.follower = psutil.Process(follower.pid)

        async def receive() -> Any:
            while not receiver.poll():
                await trio.sleep(0.01)
            try:
                return receiver.recv()
            except EOFError:
                follower.join(timeout=5)
                raise SystemExit(f"the block follower exited (code {follower.exitcode}); its error is "
                                 "above") from None

        try:
            await receive()  # subscribed
            task_status.started()
            while True:
                height, header_ns, arrival, hashes = await receive()
                self.last_block = arrival
                self.blocks.append((height, header_ns, len(hashes)))
                for h in hashes:
                    self.committed.setdefault(h, arrival)
        finally:
            follower.kill()
            follower.join()
            receiver.close()

    def cpu_seconds(self) -> float:
        """User + system seconds of this load generator: this process and its follower."""
        total = 0.0
        for process in (psutil.Process(), self.follower):
            if process is not None:
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
        return total

    async def send(self, node: int, queues: list[list[bytes]]) -> None:
        """One client's share of a node's load: its accounts' txs (the accounts taking
        turns), in batches at its share of the rate for ``seconds``, one request at a
        time. A tx the node refuses for now (code 101: mempool full or node busy; or a
        nonce gap an earlier refusal left) goes back to the head of its account's queue,
        which waits ``RETRY_S`` as a client backing off would; retries count toward the
        rate."""
        rate = self.args.rate / len(self.ports) / self.args.clients
        pending = [collections.deque(q) for q in queues]
        held = [0.0] * len(pending)
        url = f"http://127.0.0.1:{self.ports[node]}/"
        async with httpx.AsyncClient(timeout=60) as client:
            started = trio.current_time()
            turn = sent = 0
            while (due := started + sent / rate) < started + self.args.seconds:
                await trio.sleep_until(due)
                now = trio.current_time()
                batch: list[tuple[int, bytes]] = []
                eligible = [a for a in range(len(pending)) if pending[a] and held[a] <= now]
                while eligible and len(batch) < BATCH:  # the accounts take turns
                    account = eligible[turn % len(eligible)]
                    turn += 1
                    batch.append((account, pending[account].popleft()))
                    if not pending[account]:
                        eligible.remove(account)
                if not batch:
                    await trio.sleep(RETRY_S / 10)
                    continue
                sent += len(batch)
                body = {"jsonrpc": "2.0", "id": 1, "method": "bizra_broadcast_txs",
                        "params": {"txs": [base64.b64encode(tx).decode() for _, tx in batch]}}
                sent_at = time.monotonic()
                for _, tx in batch:
                    self.sent.setdefault(sha256(tx).digest(), sent_at)
                response = (await client.post(url, json=body)).json()
                error = response.get("error")
                answers = response["result"]["txs"] if error is None else [{"log": str(error)}] * len(batch)
                again: dict[int, list[bytes]] = {}
                for (account, tx), result in zip(batch, answers, strict=True):
                    why = result.get("log") or ""
                    if result.get("code") == 0:
                        self.accepted.add(sha256(tx).digest())
                    elif result.get("code") == CODE_NOT_NOW or "is not the sender's next one" in why:
                        again.setdefault(account, []).append(tx)
                        self.retried += 1
                    else:
                        reason = re.sub(r"\d+", "N", why)[:60]
                        self.refused[reason] = self.refused.get(reason, 0) + 1
                for account, txs in again.items():
                    pending[account].extendleft(reversed(txs))
                    held[account] = now + RETRY_S
        self.unsent += sum(len(q) for q in pending)


async def drive(args: Options, ports: list[int], txs: list[list[bytes]]) -> Run:
    run = Run(args, ports)
    async with trio.open_nursery() as nursery:
        await nursery.start(run.follow)
        run.window_start = time.monotonic()
        run.cpu_at_start = (psutil.cpu_times(), run.cpu_seconds())
        async with trio.open_nursery() as senders:
            for node in range(len(ports)):
                share = txs[node::len(ports)]
                for client in range(args.clients):
                    senders.start_soon(run.send, node, share[client::args.clients])
        run.window_end = time.monotonic()
        run.cpu_at_end = (psutil.cpu_times(), run.cpu_seconds())
        # The accepted txs still pending: wait while blocks keep coming, for --drain at most.
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline and not run.accepted <= run.committed.keys():
            if time.monotonic() - run.last_block > STALLED_S:
                break
            await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    return run


def busy_while_sending(run: Run) -> tuple[float, float]:
    """The share of the machine's CPU time in use while txs were sent (all processes),
    and the cores this load generator used meanwhile."""
    (machine_start, own_start), (machine_end, own_end) = run.cpu_at_start, run.cpu_at_end
    spent = sum(machine_end) - sum(machine_start)
    idle = (machine_end.idle - machine_start.idle) + (getattr(machine_end, "iowait", 0.0)
                                                      - getattr(machine_start, "iowait", 0.0))
    own = own_end - own_start
    window = run.window_end - run.window_start
    return (1 - idle / spent if spent > 0 else 0.0), (own / window if window > 0 else 0.0)


def _tree(process: psutil.Process) -> list[psutil.Process]:
    """A node's process and its children (its signature workers)."""
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def tree_cpu(process: psutil.Process) -> dict[int, float]:
    """User + system seconds of a node's process and each of its children, by pid."""
    out = {}
    for p in _tree(process):
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            out[p.pid] = times.user + times.system
    return out


def tree_rss(process: psutil.Process) -> int:
    """The resident bytes of a node's process and its children."""
    total = 0
    for p in _tree(process):
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else (values[0] if values else 0.0)


def run(args: Options) -> dict[str, Any]:
    """Run the load; print the findings as it goes, the JSON line last; the figures. The
    devnet is made in a temporary directory, removed at the end (``keep``: made there
    and kept)."""
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bizra-load-"))
    try:
        return _run(args, directory)
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)


def _run(args: Options, directory: Path) -> dict[str, Any]:
    total = int(args.rate * args.seconds)
    per_account = max(1, -(-total // args.accounts))
    print(f"signing {args.accounts * per_account:,} transfers from {args.accounts:,} accounts ...",
          flush=True)
    txs = presign(args.accounts, per_account)
    accounts = [GenesisAccount(address_of(account_key(i).public_key), BALANCE)
                for i in range(args.accounts + 1)]
    # Below the kernel's ephemeral ports (from 32,768), which a node's outgoing connections
    # may hold, and apart from the other benches' (bench/rpc.py, bench/sync.py).
    base = 10_000 + os.getpid() % 500 * 10
    nodes = devnet.create(directory / "devnet", args.validators, chain_id=CHAIN, p2p_port=base,
                          rpc_port=base + 100, params=Params(block_time_ms=args.block_time_ms),
                          accounts=accounts)
    # The nodes' own mempool limits and overload refusals apply: what a client would meet.
    env = {**os.environ, "BIZRA_RPC_REQUESTS_PER_MINUTE": "10000000"}
    processes = []
    for n in nodes:
        with (n.home.path / "node.log").open("wb") as log:
            command = devnet.node_command("start", "--home", str(n.home.path))
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    ports = [n.rpc_port for n in nodes]
    try:
        wait_for_blocks(ports)
        usage = [psutil.Process(p.pid) for p in processes]
        cpu_before = [tree_cpu(u) for u in usage]
        wall = time.monotonic()
        print(f"sending {total:,} txs at {args.rate:,.0f} tx/s for {args.seconds:.0f} s to "
              f"{len(ports)} nodes ...", flush=True)
        run = trio.run(drive, args, ports, txs)
        wall = time.monotonic() - wall
        cpu_s = [sum(seconds - before.get(pid, 0.0) for pid, seconds in tree_cpu(u).items())
                 for u, before in zip(usage, cpu_before, strict=True)]
        cpu = [round(s / wall, 2) for s in cpu_s]
        rss = [round(tree_rss(u) / 2**20) for u in usage]
        named = sum(node_counter(p, "bizra_consensus_compact_txs_named") for p in ports)
        found = sum(node_counter(p, "bizra_consensus_compact_txs_found") for p in ports)
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            p.wait(timeout=30)

    window = run.window_end - run.window_start
    in_window = [h for h, t in run.committed.items() if h in run.sent and t <= run.window_end + 0.001]
    latencies = [run.committed[h] - run.sent[h] for h in run.committed if h in run.sent]
    lost = len(run.accepted - run.committed.keys())
    times = [t for _, t, _ in sorted(run.blocks)]
    intervals = [(b - a) / 1e9 for a, b in itertools.pairwise(times)]
    floor = verify_floor() / len(ports)
    committed = len(set(run.committed) & set(run.sent))
    genesis, _ = nodes[0].home.genesis()
    tx_floor_us = apply_floor_us(genesis, [queue[0] for queue in txs[:2_000]])
    cpu_us_per_tx = [round(s / committed * 1e6) if committed else None for s in cpu_s]
    busy, own_cores = busy_while_sending(run)
    figures = {
        "validators": args.validators, "target_tx_per_s": args.rate, "seconds": round(window, 1),
        "sent": len(run.sent), "accepted": len(run.accepted), "refused": run.refused,
        "refused_for_now_and_retried": run.retried, "not_sent_in_window": run.unsent,
        "committed": committed, "lost": lost,
        "committed_tx_per_s": round(len(in_window) / window, 1),
        "latency_p50_s": round(percentile(latencies, 50), 2),
        "latency_p95_s": round(percentile(latencies, 95), 2),
        "latency_p99_s": round(percentile(latencies, 99), 2),
        "block_interval_mean_s": round(statistics.mean(intervals), 2) if intervals else None,
        "block_interval_max_s": round(max(intervals), 2) if intervals else None,
        "max_txs_per_block": max((n for _, _, n in run.blocks), default=0),
        "cpu_per_node": cpu, "rss_mib_per_node": rss,
        "cpu_us_per_committed_tx": cpu_us_per_tx, "floor_us_per_tx_one_core": round(tx_floor_us, 1),
        "reconstruction_rate": round(found / named, 4) if named else None,
        "floor_tx_per_s": round(floor),
        "machine_busy_while_sending": round(busy, 3), "loadgen_cores_while_sending": round(own_cores, 2),
    }
    print(f"committed {figures['committed_tx_per_s']:,} tx/s over the {window:.1f} s the txs took to send "
          f"(target {args.rate:,.0f} for {args.seconds:.0f} s); floor: "
          f"{floor:,.0f} tx/s (every node checks every signature once, all cores)")
    print(f"lost {lost} of {len(run.accepted):,} accepted; "
          f"refused {sum(run.refused.values()):,} {run.refused}; refused for now and sent again "
          f"{run.retried:,} times (mempool full or node busy); {run.unsent:,} left unsent")
    print(f"submit->commit p50 {figures['latency_p50_s']} s, p95 {figures['latency_p95_s']} s, "
          f"p99 {figures['latency_p99_s']} s; blocks every {figures['block_interval_mean_s']} s "
          f"(max {figures['block_interval_max_s']} s), up to {figures['max_txs_per_block']:,} txs")
    print(f"CPU per node (cores, its signature workers included): {cpu}; RSS (MiB): {rss}; "
          f"while sending, the machine's {os.cpu_count()} cores were {busy:.0%} busy, "
          f"{own_cores:.2f} core of it this load generator")
    print(f"CPU per committed tx per node (µs): {cpu_us_per_tx}; floor: {tx_floor_us:.0f} µs (signature "
          "check + execution, one core)")
    rate = figures["reconstruction_rate"]
    print("proposed blocks rebuilt from the mempool: "
          + (f"{rate:.2%} of their txs found locally ({named:,.0f} named)" if rate is not None
             else "none fetched compact"))
    print(json.dumps(figures))
    return figures


def wait_for_blocks(ports: list[int]) -> None:
    """Until every node with an RPC port in ``ports`` (127.0.0.1) has made a block;
    SystemExit after 120 s."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            heights = [int(httpx.get(f"http://127.0.0.1:{p}/status", timeout=2).json()["result"]["sync_info"]
                           ["latest_block_height"]) for p in ports]
            if min(heights) >= 1:
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise SystemExit("the devnet made no block within 120 s")
