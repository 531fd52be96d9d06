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
import orjson
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
FLOOR_REQUESTS = 500
WARMUP_S = 1.0
SUSTAINED_P95_MS = 20.0
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
        out.append((method, post(json.dumps(body).encode())))
    return out


class Connection:
    """One keep-alive HTTP/1.1 connection, as light as a client can be (so that this
    process, sharing the machine, takes little from the node): each request written
    whole, each answer read by its Content-Length, which the node always sends."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    @classmethod
    async def open(cls, url: str) -> Connection:
        address = url.split("//", 1)[1].rstrip("/")
        host, _, port = address.partition(":")
        return cls(await trio.open_tcp_stream(host, int(port)))

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        """Send the request ``raw``; the answer's status and body."""
        await self.stream.send_all(raw)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._more()
        head = bytes(self.buffer[:end]).lower()
        length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        total = end + 4 + length
        while len(self.buffer) < total:
            await self._more()
        body = bytes(self.buffer[end + 4:total])
        del self.buffer[:total]
        return int(head[9:12]), body

    async def _more(self) -> None:
        chunk = await self.stream.receive_some(1 << 16)
        if not chunk:
            raise ConnectionError("the node closed the connection")
        self.buffer += chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


def post(body: bytes) -> bytes:
    """``body`` as an HTTP/1.1 POST to the node's JSON-RPC."""
    return (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


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
        connection = await Connection.open(self.url)
        await connection.exchange(GET_HEALTH)
        while self.next < len(self.planned):
            i = self.next
            self.next += 1
            due = self.start + i / self.rate
            await trio.sleep_until(due)
            self.late.append(trio.current_time() - due)
            method, raw = self.planned[i]
            sent = time.perf_counter()
            try:
                status, body = await connection.exchange(raw)
            except (OSError, trio.BrokenResourceError) as exc:
                self.error(method, type(exc).__name__)
                connection = await Connection.open(self.url)
                continue
            self.latencies[method].append(time.perf_counter() - sent)
            self.last_answer = trio.current_time()
            self.check(method, status, body)
        await connection.aclose()

    def check(self, method: int, status: int, body: bytes) -> None:
        if status != 200:
            self.error(method, f"HTTP {status}")
            return
        answer = orjson.loads(body)
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
    method = post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "health"}).encode())
    out: dict[str, list[float]] = {"get_health": [], "method_health": []}
    connection = await Connection.open(url)
    for _ in range(50):
        await connection.exchange(GET_HEALTH)
    for _ in range(FLOOR_REQUESTS):
        for name, raw in (("get_health", GET_HEALTH), ("method_health", method)):
            sent = time.perf_counter()
            status, _ = await connection.exchange(raw)
            out[name].append(time.perf_counter() - sent)
            assert status == 200, f"{name}: HTTP {status}"
    await connection.aclose()
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


def measure(url: str, node: psutil.Process, rate: float, seconds: float, planned: list[tuple[int, bytes]],
            clients: int) -> dict[str, Any]:
    """Send ``planned`` at ``rate`` a second from ``clients`` connections; the figures."""
    run = Run(url, rate, planned)
    me = psutil.Process()
    first, in_node_before = height(url), method_seconds(url)
    node_before, me_before = node.cpu_times(), me.cpu_times()
    wall = time.monotonic()
    trio.run(drive, run, clients)
    wall = time.monotonic() - wall
    node_after, me_after = node.cpu_times(), me.cpu_times()
    last, in_node_after = height(url), method_seconds(url)
    answered = sum(len(values) for values in run.latencies)
    if not answered:
        raise SystemExit(f"no request was answered: {dict(zip(METHODS, run.errors, strict=True))}")
    window = run.last_answer - run.start
    node_seconds = node_after.user + node_after.system - node_before.user - node_before.system
    return {
        "target_per_s": rate, "seconds": round(window, 1), "clients": clients,
        "requests": len(planned), "answered": answered, "achieved_per_s": round(answered / window, 1),
        "errors": sum(n for errs in run.errors for n in errs.values()),
        "overall": summary([v for values in run.latencies for v in values]),
        "methods": {name: {"requests": len(run.latencies[m]), **summary(run.latencies[m]),
                           "in_node_mean_ms": in_node_mean_ms(in_node_before, in_node_after, name),
                           "errors": run.errors[m]} for m, name in enumerate(METHODS)},
        "late_p50_ms": round(percentile(run.late, 50) * 1e3, 2),
        "late_p95_ms": round(percentile(run.late, 95) * 1e3, 2),
        "late_max_ms": round(max(run.late, default=0.0) * 1e3, 2),
        "height_before": first, "height_after": last, "blocks_in_window": last - first,
        "node_cpu": round(node_seconds / wall, 2), "node_rss_mib": round(node.memory_info().rss / 2**20),
        "node_cpu_ms_per_request": round(node_seconds / answered * 1e3, 3),
        "client_cpu": round((me_after.user + me_after.system - me_before.user - me_before.system) / wall, 2),
    }


def sustained(figures: dict[str, Any]) -> bool:
    """Whether a step held its rate: at least 97% of it answered a second, with no error
    and p95 at most ``SUSTAINED_P95_MS``."""
    return (figures["achieved_per_s"] >= 0.97 * figures["target_per_s"] and not figures["errors"]
            and figures["overall"]["p95_ms"] <= SUSTAINED_P95_MS)


def report(figures: dict[str, Any], block_time_ms: int) -> None:
    print(f"{figures['answered']:,} answers in {figures['seconds']:.1f} s: {figures['achieved_per_s']:,} "
          f"requests/s (target {figures['target_per_s']:,.0f}); {figures['errors']:,} errors; sent late by "
          f"p50 {figures['late_p50_ms']} ms, p95 {figures['late_p95_ms']} ms, "
          f"max {figures['late_max_ms']} ms")
    print(f"{'latency (ms)':<20}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'in node':>9}  errors")
    for name, row in [*figures["methods"].items(), ("overall", {**figures["overall"], "errors": {}})]:
        in_node = row.get("in_node_mean_ms")
        print(f"{name:<20}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['p99_ms']:>9}{row['max_ms']:>9}"
              f"{'' if in_node is None else in_node:>9}  {row['errors'] or ''}")
    print("(in node: the mean time in the method itself, as the node's metrics have it)")
    print(f"blocks in the window: {figures['blocks_in_window']} (heights {figures['height_before']} to "
          f"{figures['height_after']}, {block_time_ms / 1000:g}-second blocks)")
    print(f"node CPU {figures['node_cpu']} cores ({figures['node_cpu_ms_per_request']} ms a request), RSS "
          f"{figures['node_rss_mib']} MiB; this client's CPU {figures['client_cpu']} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500, help="requests a second, all methods")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (connections)")
    parser.add_argument("--block-time-ms", type=int, default=6_000)
    parser.add_argument("--find-max", action="store_true",
                        help="after the run at --rate, runs of --step-seconds at rates --step apart, up to "
                             "--max-rate or the first that is not held; reports the highest held")
    parser.add_argument("--step", type=float, default=500)
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--max-rate", type=float, default=4_000)
    parser.add_argument("--keep", type=Path, help="keep the devnet (home, log) in this directory")
    args = parser.parse_args()

    steps = [(args.rate, args.seconds)]
    if args.find_max:
        rate = args.rate + args.step
        while rate <= args.max_rate:
            steps.append((rate, args.step_seconds))
            rate += args.step
    totals = [int(rate * seconds) for rate, seconds in steps]
    transfers = max(1, sum(totals) // len(METHODS) + len(steps))
    print(f"signing {transfers:,} transfers ...", flush=True)
    keys = [account_key(i) for i in range(transfers)]
    planned, offset = [], 0
    for total in totals:  # each step's transfers from accounts of its own
        planned.append(requests(total, keys[offset:]))
        offset += total // len(METHODS) + 1
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
    results = []
    try:
        wait_for_blocks([node.rpc_port])
        floors = trio.run(floor, url)
        usage = psutil.Process(process.pid)
        for (rate, seconds), requests_ in zip(steps, planned, strict=True):
            print(f"sending {len(requests_):,} requests at {rate:,.0f}/s for {seconds:.0f} s from "
                  f"{args.clients} clients ...", flush=True)
            results.append(measure(url, usage, rate, seconds, requests_, args.clients))
            if len(results) == 1:
                report(results[0], args.block_time_ms)
            else:
                row = results[-1]
                print(f"  {row['achieved_per_s']:,} requests/s, p95 {row['overall']['p95_ms']} ms, "
                      f"{row['errors']} errors, node {row['node_cpu_ms_per_request']} ms a request "
                      f"({row['node_cpu']} cores): {'held' if sustained(row) else 'not held'}", flush=True)
                if not sustained(row):
                    break
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if args.keep is None:
        shutil.rmtree(directory, ignore_errors=True)

    figures = {**results[0], "block_time_ms": args.block_time_ms,
               "floor_get_health_p50_ms": round(percentile(floors["get_health"], 50) * 1e3, 2),
               "floor_get_health_p95_ms": round(percentile(floors["get_health"], 95) * 1e3, 2),
               "floor_method_health_p50_ms": round(percentile(floors["method_health"], 50) * 1e3, 2),
               "floor_method_health_p95_ms": round(percentile(floors["method_health"], 95) * 1e3, 2)}
    print(f"floor: GET /health p50 {figures['floor_get_health_p50_ms']} ms, "
          f"p95 {figures['floor_get_health_p95_ms']} ms; method health p50 "
          f"{figures['floor_method_health_p50_ms']} ms, p95 {figures['floor_method_health_p95_ms']} ms "
          f"(one at a time, before the load)")
    if args.find_max:
        held = [row["target_per_s"] for row in results if sustained(row)]
        figures["steps"] = [{k: row[k] for k in ("target_per_s", "achieved_per_s", "errors",
                                                 "node_cpu", "node_cpu_ms_per_request")}
                            | {"p95_ms": row["overall"]["p95_ms"]} for row in results]
        figures["max_sustained_per_s"] = max(held, default=0.0)
        print(f"highest rate held (p95 <= {SUSTAINED_P95_MS} ms, no error, 97% answered): "
              f"{figures['max_sustained_per_s']:,.0f} requests/s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
