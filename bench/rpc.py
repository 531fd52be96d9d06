"""JSON-RPC latency of one node process on this machine, under a steady mix of requests.

It makes a devnet of one validator (``--block-time-ms`` blocks) whose genesis funds one
account per transfer to be sent, pre-signs those transfers (each from its own account),
starts the node, waits for its first block, then sends ``--rate`` requests a second for
``--seconds``, each its own HTTP POST, from ``--clients`` concurrent clients on
keep-alive connections, the methods in turn:

- ``status``;
- ``block`` with no height (the latest);
- ``bizra_account`` of a funded account;
- ``broadcast_tx_sync`` of a valid transfer (check code 0 expected).

Request ``i`` is due at start + i / rate whatever the answers before it, so a slow answer
does not lower the rate; when every client is busy, requests go out late and how late
is reported. Reported:

- per method and overall: latency (send to the end of the answer) p50/p95/p99/max in
  ms, and errors (transport failures, non-200 answers, JSON-RPC errors, refused txs);
- per method, the mean time the node spent in the method itself (from its
  ``bizra_rpc_request_duration_seconds`` metric): the rest of the latency is HTTP,
  queueing and this client;
- requests a second achieved, and how late requests were sent (p50, p95, max);
- blocks made during the window (the latest height before and after it);
- CPU (cores: user + system seconds over wall seconds) and RSS of the node process, its
  CPU milliseconds per answered request (less sensitive than latency to other load on the
  machine), and the CPU of this process, which shares the machine with the node.

Beside them, the floor: the same client and server with no work behind them, as
``GET /health`` and the JSON-RPC method ``health`` one after another on one connection,
before the load (p50, p95).

Run: ``python bench/rpc.py`` (defaults: 500 requests/s for 30 s, 6-second blocks); the
node's pid is printed at start (for a profiler); the last line is one JSON object with
every figure.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio

from chain.address import format_address
from chain.crypto import PrivateKey, address_of
from chain.genesis import GenesisAccount
from chain.params import USEED_PER_SEED, Params
from chain.transition import least_fee, sign_tx
from chain.types import Transfer
from node import devnet
from node.loadgen import wait_for_blocks

CHAIN = "bizra-rpc-1"
BALANCE = 1_000_000 * USEED_PER_SEED
METHODS = ("status", "block", "bizra_account", "broadcast_tx_sync")
HEADERS = {"content-type": "application/json"}
FLOOR_REQUESTS = 500
WARMUP_S = 1.0
"""Between the start of the clients and the first request: each opens its connection."""


def account_key(i: int) -> PrivateKey:
    return PrivateKey.from_seed(sha256(b"bizra rpc account %d" % i).digest())


def requests(total: int, accounts: list[PrivateKey]) -> list[tuple[int, bytes]]:
    """The ``total`` requests in the order they are due: (index in METHODS, JSON body).

    Request ``4k + 3`` sends the transfer of account ``k`` (nonce 0, to account
    ``k + 1``); ``4k + 2`` asks for account ``k``'s balance.
    """
    out = []
    for i in range(total):
        method, k = i % len(METHODS), i // len(METHODS)
        params: dict[str, Any] = {}
        if METHODS[method] == "bizra_account":
            params = {"address": format_address(address_of(accounts[k % len(accounts)].public_key))}
        elif METHODS[method] == "broadcast_tx_sync":
            to = address_of(accounts[(k + 1) % len(accounts)].public_key)
            transfer = Transfer(to, 1)
            tx = sign_tx(CHAIN, accounts[k], 0, transfer, least_fee(Params(), 0, transfer))
            params = {"tx": base64.b64encode(tx).decode()}
        body = {"jsonrpc": "2.0", "id": i, "method": METHODS[method], "params": params}
        out.append((method, json.dumps(body).encode()))
    return out


class Run:
    """The requests, sent by schedule from concurrent clients, and what came back."""

    def __init__(self, url: str, rate: float, planned: list[tuple[int, bytes]]) -> None:
        self.url = url
        self.rate = rate
        self.planned = planned
        self.next = 0
        self.start = 0.0  # trio clock
        self.last_answer = 0.0
        self.latencies: list[list[float]] = [[] for _ in METHODS]
        self.late: list[float] = []
        self.errors: list[dict[str, int]] = [{} for _ in METHODS]

    async def client(self) -> None:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=1)) as client:
            await client.get(self.url + "health")
            while self.next < len(self.planned):
                i = self.next
                self.next += 1
                due = self.start + i / self.rate
                await trio.sleep_until(due)
                self.late.append(trio.current_time() - due)
                method, body = self.planned[i]
                sent = time.perf_counter()
                try:
                    response = await client.post(self.url, content=body, headers=HEADERS)
                except httpx.HTTPError as exc:
                    self.error(method, type(exc).__name__)
                    continue
                self.latencies[method].append(time.perf_counter() - sent)
                self.last_answer = trio.current_time()
                self.check(method, response)

    def check(self, method: int, response: httpx.Response) -> None:
        if response.status_code != 200:
            self.error(method, f"HTTP {response.status_code}")
            return
        answer = response.json()
        if "error" in answer:
            error = answer["error"]
            self.error(method, f"{error.get('code')} {str(error.get('data', ''))[:60]}")
        elif METHODS[method] == "broadcast_tx_sync" and answer["result"]["code"] != 0:
            self.error(method, f"code {answer['result']['code']} {answer['result']['log'][:60]}")

    def error(self, method: int, why: str) -> None:
        self.errors[method][why] = self.errors[method].get(why, 0) + 1


async def drive(run: Run, clients: int) -> None:
    run.start = trio.current_time() + WARMUP_S
    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(run.client)


async def floor(url: str) -> dict[str, list[float]]:
    """Latencies (s) of ``GET /health`` and of the method ``health``, one request at a time."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "health"}).encode()
    out: dict[str, list[float]] = {"get_health": [], "method_health": []}
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(50):
            await client.get(url + "health")
        for _ in range(FLOOR_REQUESTS):
            sent = time.perf_counter()
            (await client.get(url + "health")).raise_for_status()
            out["get_health"].append(time.perf_counter() - sent)
            sent = time.perf_counter()
            (await client.post(url, content=body, headers=HEADERS)).raise_for_status()
            out["method_health"].append(time.perf_counter() - sent)
    return out


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else (values[0] if values else 0.0)


def summary(latencies: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of ``latencies`` (s), in ms."""
    return {"p50_ms": round(percentile(latencies, 50) * 1e3, 2),
            "p95_ms": round(percentile(latencies, 95) * 1e3, 2),
            "p99_ms": round(percentile(latencies, 99) * 1e3, 2),
            "max_ms": round(max(latencies, default=0.0) * 1e3, 2)}


def method_seconds(url: str) -> dict[str, tuple[float, float]]:
    """Per method, from the node's metrics: requests handled and seconds spent in them."""
    out: dict[str, list[float]] = {}
    for line in httpx.get(url + "metrics", timeout=5).text.splitlines():
        for slot, suffix in enumerate(("_count", "_sum")):
            prefix = f'bizra_rpc_request_duration_seconds{suffix}{{method="'
            if line.startswith(prefix):
                method, _, value = line[len(prefix):].partition('"} ')
                out.setdefault(method, [0.0, 0.0])[slot] = float(value)
    return {method: (count, seconds) for method, (count, seconds) in out.items()}


def height(url: str) -> int:
    answer = httpx.get(url + "status", timeout=5).json()
    return int(answer["result"]["sync_info"]["latest_block_height"])


def in_node_mean_ms(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]],
                    method: str) -> float | None:
    count0, seconds0 = before.get(method, (0.0, 0.0))
    count1, seconds1 = after.get(method, (0.0, 0.0))
    return round((seconds1 - seconds0) / (count1 - count0) * 1e3, 3) if count1 > count0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500, help="requests a second, all methods")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (connections)")
    parser.add_argument("--block-time-ms", type=int, default=6_000)
    parser.add_argument("--keep", type=Path, help="keep the devnet (home, log) in this directory")
    args = parser.parse_args()

    total = int(args.rate * args.seconds)
    transfers = max(1, total // len(METHODS))
    print(f"signing {transfers:,} transfers ...", flush=True)
    keys = [account_key(i) for i in range(transfers)]
    planned = requests(total, keys)
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bizra-rpc-"))
    accounts = [GenesisAccount(address_of(k.public_key), BALANCE) for k in keys]
    # Below the load bench's ports (10,000 to 15,100) and the kernel's ephemeral ones.
    base = 6_100 + os.getpid() % 380 * 10
    [node] = devnet.create(directory / "devnet", 1, chain_id=CHAIN, p2p_port=base, rpc_port=base + 1,
                           params=Params(block_time_ms=args.block_time_ms), accounts=accounts)
    # Every client is 127.0.0.1: one address, so one rate limit for them all.
    env = {**os.environ, "BIZRA_RPC_REQUESTS_PER_MINUTE": "10000000", "PYTHONUNBUFFERED": "1",
           "BIZRA_MEMPOOL_MAX_TXS": str(max(50_000, transfers))}
    url = f"http://127.0.0.1:{node.rpc_port}/"
    with (node.home.path / "node.log").open("wb") as log:
        process = subprocess.Popen(devnet.node_command("start", "--home", str(node.home.path)),
                                   env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    print(f"node pid {process.pid}, RPC on {url}", flush=True)
    try:
        wait_for_blocks([node.rpc_port])
        floors = trio.run(floor, url)
        usage, me = psutil.Process(process.pid), psutil.Process()
        run = Run(url, args.rate, planned)
        print(f"sending {total:,} requests at {args.rate:,.0f}/s for {args.seconds:.0f} s from "
              f"{args.clients} clients ...", flush=True)
        first, in_node_before = height(url), method_seconds(url)
        node_before, me_before = usage.cpu_times(), me.cpu_times()
        wall = time.monotonic()
        trio.run(drive, run, args.clients)
        wall = time.monotonic() - wall
        node_after, me_after = usage.cpu_times(), me.cpu_times()
        last, in_node_after = height(url), method_seconds(url)
        rss = round(usage.memory_info().rss / 2**20)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if args.keep is None:
        shutil.rmtree(directory, ignore_errors=True)

    answered = sum(len(values) for values in run.latencies)
    if not answered:
        raise SystemExit(f"no request was answered: {dict(zip(METHODS, run.errors, strict=True))}")
    window = run.last_answer - run.start
    per_method = {name: {"requests": len(run.latencies[m]), **summary(run.latencies[m]),
                         "in_node_mean_ms": in_node_mean_ms(in_node_before, in_node_after, name),
                         "errors": run.errors[m]} for m, name in enumerate(METHODS)}
    errors = sum(n for errs in run.errors for n in errs.values())
    node_seconds = node_after.user + node_after.system - node_before.user - node_before.system
    cpu = round(node_seconds / wall, 2)
    client_cpu = round((me_after.user + me_after.system - me_before.user - me_before.system) / wall, 2)
    figures: dict[str, Any] = {
        "target_per_s": args.rate, "seconds": round(window, 1), "clients": args.clients,
        "requests": total, "answered": answered, "achieved_per_s": round(answered / window, 1),
        "errors": errors,
        "overall": summary([v for values in run.latencies for v in values]),
        "methods": per_method,
        "late_p50_ms": round(percentile(run.late, 50) * 1e3, 2),
        "late_p95_ms": round(percentile(run.late, 95) * 1e3, 2),
        "late_max_ms": round(max(run.late, default=0.0) * 1e3, 2),
        "block_time_ms": args.block_time_ms, "height_before": first, "height_after": last,
        "blocks_in_window": last - first,
        "node_cpu": cpu, "node_rss_mib": rss,
        "node_cpu_ms_per_request": round(node_seconds / answered * 1e3, 2), "client_cpu": client_cpu,
        "floor_get_health_p50_ms": round(percentile(floors["get_health"], 50) * 1e3, 2),
        "floor_get_health_p95_ms": round(percentile(floors["get_health"], 95) * 1e3, 2),
        "floor_method_health_p50_ms": round(percentile(floors["method_health"], 50) * 1e3, 2),
        "floor_method_health_p95_ms": round(percentile(floors["method_health"], 95) * 1e3, 2),
    }
    print(f"{answered:,} answers in {window:.1f} s: {figures['achieved_per_s']:,} requests/s "
          f"(target {args.rate:,.0f}); {errors:,} errors; sent late by p50 {figures['late_p50_ms']} ms, "
          f"p95 {figures['late_p95_ms']} ms, max {figures['late_max_ms']} ms")
    print(f"{'latency (ms)':<20}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'in node':>9}  errors")
    for name, row in [*per_method.items(), ("overall", {**figures["overall"], "errors": {}})]:
        in_node = row.get("in_node_mean_ms")
        print(f"{name:<20}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['p99_ms']:>9}{row['max_ms']:>9}"
              f"{'' if in_node is None else in_node:>9}  {row['errors'] or ''}")
    print("(in node: the mean time in the method itself, as the node's metrics have it)")
    print(f"floor: GET /health p50 {figures['floor_get_health_p50_ms']} ms, "
          f"p95 {figures['floor_get_health_p95_ms']} ms; method health p50 "
          f"{figures['floor_method_health_p50_ms']} ms, p95 {figures['floor_method_health_p95_ms']} ms "
          f"(one at a time, before the load)")
    print(f"blocks in the window: {last - first} (heights {first} to {last}, "
          f"{args.block_time_ms / 1000:g}-second blocks)")
    print(f"node CPU {cpu} cores ({figures['node_cpu_ms_per_request']} ms a request), RSS {rss} MiB; "
          f"this client's CPU {client_cpu} cores")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
