"""Network speed over real libp2p: 4 node processes on loopback.

- tx gossip: every node originates a quarter of ``--rate`` txs a second of ``--tx-bytes``
  bytes for ``--seconds``, through :class:`p2p.txgossip.TxGossip` (batches of up to
  60 KiB, one every batch interval, 50 ms, or when full); each node records every tx it
  receives from the others. Reported: tx/s carried, delivery ratio (txs received by every node over
  txs the other nodes sent), p50/p95/max latency from submit to arrival, and the CPU
  each node used (user + system seconds over wall seconds).
- request/response: node 1 fetches ``--body-mib`` MiB bodies from node 0, one after
  another, for ``--seconds``: MB/s.

With ``--admit`` the txs are real signed transfers and each receiver does the node's
admission work (``node/txintake.py``: the gossip check, then the mempool's decoding,
signature checks off the event loop and admission against a state that funds their
senders): a tx counts as delivered once a receiver's mempool admitted it, and its
latency runs from when its origin was due to send it (its place in the origin's
schedule, which every tx carries as its amount) to its admission.

Beside them, the floor on this machine: a plain TCP stream over loopback between two
trio tasks (MB/s), and the Ed25519 verifications a core can do a second (every gossiped
tx is verified once by a node, so that bounds a node's tx rate).

The nodes find each other from one bootnode (node 0). Run: ``python bench/gossip.py``;
the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import trio

from chain.crypto import PrivateKey, VerifiedCache, address_of, verify
from chain.errors import InvalidTx
from chain.genesis import GenesisAccount, make_devnet_genesis
from chain.params import Params
from chain.state import chain_config, state_from_genesis
from chain.transition import decode_tx, least_fee, sign_tx
from chain.types import Transfer
from node.config import MempoolConfig
from node.mempool import Mempool, MempoolFull
from node.txintake import TxIntake
from node.view import Counters
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
ACCOUNTS = 500
"""Sending accounts per origin with ``--admit`` (each origin's txs take turns among them)."""


def _account(origin: int, i: int) -> PrivateKey:
    return PrivateKey.from_seed(sha256(b"bench p2p account %d %d" % (origin, i)).digest())


class _Admission(TxIntake):
    """The node's admission, noting each admitted tx and when (read after the run)."""

    admitted: list[tuple[int, list[bytes]]]

    async def admit(self, batch: Sequence[tuple[PeerId, bytes]]) -> list[bytes | InvalidTx | MempoolFull]:
        results = await super().admit(batch)
        self.admitted.append((time.time_ns(), [raw for (_, raw), r in zip(batch, results, strict=True)
                                               if isinstance(r, bytes)]))
        return results


# --- a node process --------------------------------------------------------------


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class BenchNode:
    """One node: gossips txs when told, records what it receives, serves bodies. With
    ``presign`` txs to send, it admits what it receives as a node does (``--admit``)."""

    def __init__(self, index: int, body_bytes: int, interval: float, presign: int = 0) -> None:
        self.index = index
        self.net = Libp2pNetwork(sha256(b"bench p2p node %d" % index).digest())
        self.status = StatusService(self.net, CHAIN, sha256(CHAIN.encode()).digest(), lambda: 0,
                                    self.net.listen_addrs)
        self.signed: list[bytes] = []
        self.intake: _Admission | None = None
        if presign:
            self.intake = self._admission(presign)
            self.gossip = TxGossip(self.net, CHAIN, self.intake.check, room=self.intake.mempool.has_room,
                                   interval=interval)
        else:
            self.gossip = TxGossip(self.net, CHAIN, lambda tx: Validation.ACCEPT, interval=interval)
        self.body = os.urandom(body_bytes)
        self.latencies_ns: list[int] = []
        self.received: dict[int, int] = {}
        self.net.set_handler(BODY_PROTOCOL, self._serve_body, max_request_bytes=8)

    def _admission(self, presign: int) -> _Admission:
        """Sign this origin's ``presign`` transfers (amount: the tx's place in the
        schedule, plus one) and set up admission against a state funding every origin's
        accounts."""
        params = Params()
        keys = {(o, i): _account(o, i) for o in range(NODES) for i in range(ACCOUNTS)}
        per_account = -(-presign // ACCOUNTS)
        balance = per_account * (presign + 1 + least_fee(params, per_account, Transfer(bytes(20), presign)))
        genesis = make_devnet_genesis(CHAIN, [PrivateKey.from_seed(bytes(32))], 0, params=params)
        genesis = dataclasses.replace(genesis, accounts=genesis.accounts + tuple(
            GenesisAccount(address_of(key.public_key), balance) for key in keys.values()))
        to = address_of(PrivateKey.from_seed(bytes(32)).public_key)
        for k in range(presign):
            nonce, i = divmod(k, ACCOUNTS)
            body = Transfer(to, k + 1)
            fee = least_fee(params, nonce, body)
            self.signed.append(sign_tx(CHAIN, keys[(self.index, i)], nonce, body, fee))
        limits = MempoolConfig(max_txs=4 * presign + 1, max_bytes=1 << 40, max_per_sender=per_account + 1)
        mempool = Mempool(chain_config(genesis), state_from_genesis(genesis), limits, VerifiedCache())
        self.origins = {address_of(key.public_key): o for (o, _), key in keys.items()}
        intake = _Admission(mempool, params, self.net.penalize, Counters())
        intake.admitted = []
        return intake

    def _admitted_report(self, start_ns: int, rate: float) -> tuple[dict[int, int], list[float]]:
        """Txs admitted by origin, and their latencies (ms) from when they were due."""
        assert self.intake is not None
        received: dict[int, int] = {}
        latencies = []
        for at, raws in self.intake.admitted:
            for raw in raws:
                tx = decode_tx(raw, Params())
                assert isinstance(tx.body, Transfer)
                origin = self.origins[address_of(tx.sender)]
                received[origin] = received.get(origin, 0) + 1
                latencies.append((at - start_ns - (tx.body.amount - 1) / rate * 1e9) / 1e6)
        return received, latencies

    async def _originate_signed(self, rate: float, seconds: float) -> int:
        start = trio.current_time()
        sent = 0
        while (elapsed := trio.current_time() - start) < seconds:
            due = min(int(elapsed * rate), len(self.signed))
            while sent < due:
                await self.gossip.submit(self.signed[sent])
                sent += 1
            await trio.sleep(0.002)
        return sent

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
            if self.intake is not None:
                nursery.start_soon(self.intake.run, self.gossip.received)
            else:
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
                    rate, seconds = float(args[0]), float(args[1])
                    started_at = int(args[3])
                    await trio.sleep(max(0.0, (started_at - time.time_ns()) / 1e9))
                    cpu, wall = _cpu_seconds(), time.perf_counter()
                    if self.intake is not None:
                        sent = await self._originate_signed(rate, seconds)
                    else:
                        sent = await self._originate(rate, seconds, int(args[2]))
                    _say({"sent": sent, "cpu": _cpu_seconds() - cpu, "wall": time.perf_counter() - wall})
                elif command == "report":
                    if self.intake is not None:
                        self.received, latencies = self._admitted_report(int(args[0]), float(args[1]))
                        self.latencies_ns = [int(ms * 1e6) for ms in latencies]
                    _say({"received": self.received, "latencies_ms": [n / 1e6 for n in self.latencies_ns],
                          "dropped": self.gossip.sends_dropped,
                          "batches": self.gossip.batches_received, "duplicates": self.gossip.duplicates})
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

    def __init__(self, index: int, body_bytes: int, interval: float, logs: Path | None, presign: int) -> None:
        self.index = index
        log = (logs / f"node{index}.log").open("w") if logs else subprocess.DEVNULL
        self.process = subprocess.Popen([sys.executable, __file__, "--node", str(index),
                                         "--body-bytes", str(body_bytes), "--interval", str(interval),
                                         "--presign", str(presign)],
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
    presign = int(args.rate / NODES * args.seconds) + 1 if args.admit else 0
    signing = " (signing their txs)" if presign else ""
    print(f"starting {NODES} nodes on loopback{signing} ...", file=sys.stderr)
    nodes = [Process(0, body_bytes, args.interval, args.logs, presign)]
    try:
        nodes += [Process(i, body_bytes, args.interval, args.logs, presign) for i in range(1, NODES)]
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
        started_at = time.time_ns() + 500_000_000
        for node in nodes:
            node.send("gossip", args.rate / NODES, args.seconds, args.tx_bytes, started_at)
        sent_reports = [node.reply(args.seconds + 120) for node in nodes]
        time.sleep(2)  # what is in flight arrives
        reports = [node.ask("report", started_at, args.rate / NODES) for node in nodes]
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
            "admit": args.admit,
            "tx_bytes": args.tx_bytes,
            "gossip_tx_per_s": sum(sent) / wall,
            "delivered_tx_per_s": delivered / (NODES - 1) / wall,
            "gossip_target_tx_per_s": args.rate,
            "delivery_ratio": delivered / expected if expected else 0.0,
            "latency_p50_ms": _percentile(latencies, 50),
            "latency_p95_ms": _percentile(latencies, 95),
            "latency_max_ms": max(latencies, default=0.0),
            "cpu_per_node": [round(r["cpu"] / r["wall"], 3) for r in sent_reports],
            "sends_dropped": sum(r["dropped"] for r in reports),
            "copies_per_batch": (sum(r["batches"] + r["duplicates"] for r in reports)
                                 / max(1, sum(r["batches"] for r in reports))),
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
    parser.add_argument("--tx-bytes", type=int, default=250,
                        help="the size of each tx (not with --admit: transfers are ~130 bytes)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--body-mib", type=float, default=4)
    parser.add_argument("--interval", type=float, default=BATCH_INTERVAL_S,
                        help="seconds between a node's tx batches (when they are not full first)")
    parser.add_argument("--logs", type=Path, help="a directory for each node's log (default: none)")
    parser.add_argument("--admit", action="store_true",
                        help="real signed transfers, admitted by each receiver as a node does")
    parser.add_argument("--node", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--body-bytes", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--presign", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node is not None:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        trio.run(BenchNode(args.node, args.body_bytes, args.interval, args.presign).run)
        return
    figures = coordinate(args)
    figures["floor_loopback_tcp_mb_per_s"] = _loopback_floor_mb_per_s()
    figures["floor_ed25519_verify_per_s_per_core"] = _verify_floor_per_s()
    admitted = " and admitted" if args.admit else ""
    print(f"tx gossip: {figures['gossip_tx_per_s']:,.0f} tx/s sent (target {args.rate:,.0f}), "
          f"{figures['delivered_tx_per_s']:,.0f} tx/s delivered{admitted} to each node, "
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
