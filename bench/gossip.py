"""Network speed over real libp2p: 4 node processes on loopback.

- tx gossip: every node originates a quarter of ``--rate`` txs a second of ``--tx-bytes``
  bytes for ``--seconds``, through :class:`p2p.txgossip.TxGossip` (batches of up to
  60 KiB, one every batch interval, 50 ms, or when full); each node records every tx it
  receives from the others. Reported: tx/s carried, delivery ratio (txs received by every node over
  txs the other nodes sent), p50/p95/max latency from submit to arrival, and the CPU
  each node used (user + system seconds over wall seconds).
- request/response: node 1 fetches ``--body-mib`` MiB bodies from node 0, one after
  another, for ``--seconds``: MB/s.

Beside them, the floor on this machine: a plain TCP stream over loopback between two
trio tasks (MB/s), and the Ed25519 verifications a core can do a second (every gossiped
tx is verified once by a node, so that bounds a node's tx rate).

The nodes find each other from one bootnode (node 0). Run: ``python bench/gossip.py``;
the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from hashlib import sha256
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import trio

from chain.crypto import PrivateKey, verify
from p2p.host import Libp2pNetwork
from p2p.network import Validation
from p2p.peering import PeerManager
from p2p.peers import PeerId
from p2p.status import StatusService
from p2p.txgossip import BATCH_INTERVAL_S, TxGossip

CHAIN = "bizra-bench-1"
BODY_PROTOCOL = f"/bizra/{CHAIN}/bench-body/1"
NODES = 4
_HEADER = 16  # origin (1 byte), sequence number (7), submit time in ns (8)


# --- a node process --------------------------------------------------------------


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class BenchNode:
    """One node: gossips txs when told, records what it receives, serves bodies."""

    def __init__(self, index: int, body_bytes: int, interval: float) -> None:
        self.index = index
        self.net = Libp2pNetwork(sha256(b"bench p2p node %d" % index).digest())
        self.status = StatusService(self.net, CHAIN, sha256(CHAIN.encode()).digest(), lambda: 0,
                                    self.net.listen_addrs)
        self.gossip = TxGossip(self.net, CHAIN, lambda tx: Validation.ACCEPT, interval=interval)
        self.body = os.urandom(body_bytes)
        self.latencies_ns: list[int] = []
        self.received: dict[int, int] = {}
        self.net.set_handler(BODY_PROTOCOL, self._serve_body, max_request_bytes=8)

    async def _serve_body(self, peer: PeerId, request: bytes) -> bytes:
        return self.body

    async def _record(self) -> None:
        async for _, txs in self.gossip.received:
            now = time.time_ns()
            for tx in txs:
                origin = tx[0]
                self.received[origin] = self.received.get(origin, 0) + 1
                self.latencies_ns.append(now - int.from_bytes(tx[8:16], "big"))

    async def _originate(self, rate: float, seconds: float, tx_bytes: int) -> int:
        padding = os.urandom(tx_bytes - _HEADER)
        start = trio.current_time()
        sent = 0
        while (elapsed := trio.current_time() - start) < seconds:
            due = int(elapsed * rate)
            while sent < due:
                sent += 1
                header = bytes([self.index]) + sent.to_bytes(7, "big") + time.time_ns().to_bytes(8, "big")
                await self.gossip.submit(header + padding)
            await trio.sleep(0.002)
        return sent

    async def _fetch(self, peer: PeerId, seconds: float) -> dict[str, float]:
        moved, count = 0, 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            body = await self.net.request(peer, BODY_PROTOCOL, b"", max_response_bytes=len(self.body) + 1,
                                          timeout=30)
            moved += len(body)
            count += 1
        wall = time.perf_counter() - start
        return {"bodies": count, "mb_per_s": moved / wall / 1e6}

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.net.run)
            await nursery.start(self.gossip.run)
            await nursery.start(self.status.run)
            nursery.start_soon(self._record)
            _say({"addr": self.net.listen_addrs()[0], "id": self.net.local_id})
            while line := await trio.to_thread.run_sync(sys.stdin.readline):
                command, *args = line.split()
                if command == "bootnode":
                    peering = PeerManager(self.net, self.status, args)
                    await nursery.start(peering.run)
                elif command == "peers":
                    _say({"peers": len(self.net.peers())})
                elif command == "gossip":
                    cpu, wall = _cpu_seconds(), time.perf_counter()
                    sent = await self._originate(float(args[0]), float(args[1]), int(args[2]))
                    _say({"sent": sent, "cpu": _cpu_seconds() - cpu, "wall": time.perf_counter() - wall})
                elif command == "report":
                    _say({"received": self.received, "latencies_ms": [n / 1e6 for n in self.latencies_ns],
                          "dropped": self.net.dropped, "slow_peers": self.net.slow_peers,
                          "batches": self.gossip.batches_received, "duplicates": self.net.duplicates})
                elif command == "fetch":
                    cpu = _cpu_seconds()
                    result = await self._fetch(PeerId(args[0]), float(args[1]))
                    _say({**result, "cpu": _cpu_seconds() - cpu})
            nursery.cancel_scope.cancel()


def _say(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


# --- the coordinator ---------------------------------------------------------------


class Process:
    """A node process: commands in on stdin, one JSON object a line out."""

    def __init__(self, index: int, body_bytes: int, interval: float, logs: Path | None) -> None:
        self.index = index
        log = (logs / f"node{index}.log").open("w") if logs else subprocess.DEVNULL
        self.process = subprocess.Popen([sys.executable, __file__, "--node", str(index),
                                         "--body-bytes", str(body_bytes), "--interval", str(interval)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        self.replies: Queue[dict[str, Any]] = Queue()
        threading.Thread(target=self._read, daemon=True).start()
        hello = self.reply(60)
        self.addr, self.id = hello["addr"], hello["id"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.replies.put(json.loads(line))

    def send(self, *words: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(" ".join(map(str, words)) + "\n")
        self.process.stdin.flush()

    def reply(self, timeout: float = 120) -> dict[str, Any]:
        try:
            return self.replies.get(timeout=timeout)
        except Empty:
            raise SystemExit(f"node {self.index} did not answer within {timeout} s") from None

    def ask(self, *words: object, timeout: float = 120) -> dict[str, Any]:
        self.send(*words)
        return self.reply(timeout)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def _loopback_floor_mb_per_s(total: int = 256 << 20) -> float:
    async def measure() -> float:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        chunk = bytes(1 << 16)

        async def sink(stream: trio.SocketStream) -> None:
            got = 0
            while got < total:
                got += len(await stream.receive_some(1 << 20))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, sink, listeners)
            client = await trio.open_tcp_stream("127.0.0.1", port)
            start = time.perf_counter()
            for _ in range(total // len(chunk)):
                await client.send_all(chunk)
            await client.aclose()
            wall = time.perf_counter() - start
            nursery.cancel_scope.cancel()
        return total / wall / 1e6

    return trio.run(measure)


def _verify_floor_per_s(count: int = 2_000) -> float:
    key = PrivateKey.from_seed(bytes(32))
    message = bytes(250)
    signature = key.sign(message)
    start = time.perf_counter()
    for _ in range(count):
        verify(key.public_key, message, signature)
    return count / (time.perf_counter() - start)


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else 0.0)


def coordinate(args: argparse.Namespace) -> dict[str, Any]:
    body_bytes = int(args.body_mib * (1 << 20))
    print(f"starting {NODES} nodes on loopback ...", file=sys.stderr)
    nodes = [Process(0, body_bytes, args.interval, args.logs)]
    try:
        nodes += [Process(i, body_bytes, args.interval, args.logs) for i in range(1, NODES)]
        for node in nodes[1:]:
            node.send("bootnode", nodes[0].addr)
        deadline = time.monotonic() + 60
        while any(node.ask("peers")["peers"] < NODES - 1 for node in nodes):
            if time.monotonic() > deadline:
                raise SystemExit("the 4 nodes did not all find each other within 60 s")
            time.sleep(0.5)
        time.sleep(3)  # a few heartbeats: the gossip mesh forms
        print(f"gossiping {args.rate:,.0f} tx/s of {args.tx_bytes} bytes for {args.seconds:.0f} s ...",
              file=sys.stderr)
        for node in nodes:
            node.send("gossip", args.rate / NODES, args.seconds, args.tx_bytes)
        sent_reports = [node.reply(args.seconds + 120) for node in nodes]
        time.sleep(2)  # what is in flight arrives
        reports = [node.ask("report") for node in nodes]
        sent = [r["sent"] for r in sent_reports]
        expected = sum((sum(sent) - sent[i]) for i in range(NODES))
        delivered = sum(sum(int(count) for origin, count in r["received"].items() if int(origin) != i)
                        for i, r in enumerate(reports))
        latencies = [ms for r in reports for ms in r["latencies_ms"]]
        wall = max(r["wall"] for r in sent_reports)
        print(f"fetching {args.body_mib:g} MiB bodies for {args.seconds:.0f} s ...", file=sys.stderr)
        fetch = nodes[1].ask("fetch", nodes[0].id, args.seconds, timeout=args.seconds + 120)
        return {
            "nodes": NODES,
            "tx_bytes": args.tx_bytes,
            "gossip_tx_per_s": sum(sent) / wall,
            "gossip_target_tx_per_s": args.rate,
            "delivery_ratio": delivered / expected if expected else 0.0,
            "latency_p50_ms": _percentile(latencies, 50),
            "latency_p95_ms": _percentile(latencies, 95),
            "latency_max_ms": max(latencies, default=0.0),
            "cpu_per_node": [round(r["cpu"] / r["wall"], 3) for r in sent_reports],
            "dropped": sum(r["dropped"] for r in reports),
            "copies_per_batch": (sum(r["batches"] + r["duplicates"] for r in reports)
                                 / max(1, sum(r["batches"] for r in reports))),
            "slow_peers": sum(r["slow_peers"] for r in reports),
            "reqresp_mb_per_s": fetch["mb_per_s"],
            "reqresp_bodies": fetch["bodies"],
            "reqresp_cpu": round(fetch["cpu"] / args.seconds, 3),
        }
    finally:
        for node in nodes:
            node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10_000, help="txs a second, all nodes together")
    parser.add_argument("--tx-bytes", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--body-mib", type=float, default=4)
    parser.add_argument("--interval", type=float, default=BATCH_INTERVAL_S,
                        help="seconds between a node's tx batches (when they are not full first)")
    parser.add_argument("--logs", type=Path, help="a directory for each node's log (default: none)")
    parser.add_argument("--node", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--body-bytes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node is not None:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        trio.run(BenchNode(args.node, args.body_bytes, args.interval).run)
        return
    figures = coordinate(args)
    figures["floor_loopback_tcp_mb_per_s"] = _loopback_floor_mb_per_s()
    figures["floor_ed25519_verify_per_s_per_core"] = _verify_floor_per_s()
    print(f"tx gossip: {figures['gossip_tx_per_s']:,.0f} tx/s carried (target {args.rate:,.0f}), "
          f"delivery {figures['delivery_ratio']:.2%}, p50 {figures['latency_p50_ms']:.1f} ms, "
          f"p95 {figures['latency_p95_ms']:.1f} ms, max {figures['latency_max_ms']:.1f} ms")
    print(f"           copies of each tx batch a node received: {figures['copies_per_batch']:.2f} "
          "(1 is the floor)")
    print(f"           CPU per node (cores): {figures['cpu_per_node']}; floor: one core verifies "
          f"{figures['floor_ed25519_verify_per_s_per_core']:,.0f} Ed25519 signatures/s")
    print(f"request/response: {figures['reqresp_mb_per_s']:,.1f} MB/s ({figures['reqresp_bodies']} bodies of "
          f"{args.body_mib:g} MiB); floor: plain loopback TCP "
          f"{figures['floor_loopback_tcp_mb_per_s']:,.0f} MB/s")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
