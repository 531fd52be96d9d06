"""A fault harness over a devnet of real node processes (after CometBFT's e2e runner):
kill -9 and restart, pause and resume (SIGSTOP/SIGCONT), partitions (each node stops
hearing the other side, through the admin RPC ``bizra_block_peers``), clock skew (a
restart with the hidden ``--test-clock-offset-ms``) and an equivocating validator
(``--test-equivocate``), under a tx load; and the checks a run must pass.

Faults are drawn from a seeded random generator, so a failing schedule is replayed
with its seed.
"""

from __future__ import annotations

import base64
import http.client
import random
import signal
import subprocess
import threading
import time
import urllib.error
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.crypto import address_of, private_key_from_pem
from chain.params import Params
from chain.types import Transfer, tx_hash
from node import devnet

from chainkit import sign_tx
from nodekit import free_ports, height, rpc, tail, wait_until

UNREACHABLE = (urllib.error.URLError, http.client.HTTPException, OSError)
"""What a call to a node that is down, or dies while it answers, raises."""
FAULT_KINDS = ("kill", "pause", "isolate", "split", "skew")


class Devnet:
    """``validators`` validator processes of chain ``chain_id`` in ``directory``; those
    in ``byzantine`` equivocate. Use as a context manager: every process is killed on
    the way out."""

    def __init__(self, directory: Path, validators: int, *, chain_id: str, params: Params,
                 byzantine: Sequence[int] = ()) -> None:
        p2p = free_ports(2 * validators)
        self.nodes = devnet.create(directory, validators, chain_id=chain_id, p2p_port=p2p,
                                   rpc_port=p2p + validators, params=params)
        self.chain_id = chain_id
        self.params = params
        self.directory = directory
        self.ports = [n.rpc_port for n in self.nodes]
        self.logs = [n.home.path / "node.log" for n in self.nodes]
        self.byzantine = set(byzantine)
        self.offsets = [0] * validators
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * validators
        self.tokens = [(n.home.path / "rpc_token").read_text().strip() for n in self.nodes]

    def __enter__(self) -> Devnet:
        for i in range(len(self.nodes)):
            self.start(i)
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.processes:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()

    # --- processes ---------------------------------------------------------------------

    def start(self, i: int) -> None:
        options = [f"--test-clock-offset-ms={self.offsets[i]}"] if self.offsets[i] else []
        if i in self.byzantine:
            options.append("--test-equivocate")
        self.processes[i] = devnet.start(self.nodes[i], self.logs[i], *options)

    def kill(self, i: int) -> None:
        """SIGKILL: the process dies wherever it is (writing its store, its WAL, its
        signer state)."""
        p = self.processes[i]
        assert p is not None
        p.kill()
        p.wait()
        self.processes[i] = None

    def pause(self, i: int) -> None:
        p = self.processes[i]
        assert p is not None
        p.send_signal(signal.SIGSTOP)

    def resume(self, i: int) -> None:
        p = self.processes[i]
        assert p is not None
        p.send_signal(signal.SIGCONT)

    def running(self, i: int) -> bool:
        p = self.processes[i]
        return p is not None and p.poll() is None

    # --- the network -------------------------------------------------------------------

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Each node stops hearing every node outside its group."""
        for group in groups:
            others = [self.nodes[j].peer_id for j in range(len(self.nodes)) if j not in group]
            for i in group:
                self.admin(i, "bizra_block_peers", peers=others)

    def heal(self) -> None:
        for i in range(len(self.nodes)):
            self.admin(i, "bizra_block_peers", peers=[])

    def admin(self, i: int, method: str, **params: Any) -> Any:
        """An admin call to node ``i``, retried while it is starting."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return rpc(self.ports[i], method, token=self.tokens[i], **params)
            except UNREACHABLE:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # --- views -------------------------------------------------------------------------

    def address(self, i: int) -> str:
        """Validator ``i``'s consensus address, as the RPC shows it."""
        key = self.nodes[i].home.validator_key()
        assert key is not None
        return address_of(key.public_key).hex().upper()

    def heights(self) -> list[int]:
        return [height(p) for p in self.ports]

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        wait_until(condition, timeout, what, self.logs)

    def describe(self) -> str:
        return "".join(f"\n--- {log} ---\n{tail(log, 25)}" for log in self.logs)


@dataclass
class Client:
    """Faucet transfers, about ``rate`` a second, to whichever node answers: each round
    takes the faucet's committed nonce and sends the next few txs from it, so a tx
    lost with a killed node is sent again. Remembers every tx a node accepted."""

    directory: Path
    ports: list[int]
    chain_id: str
    rate: int = 20
    accepted: set[bytes] = field(default_factory=set)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        key = private_key_from_pem((self.directory / "faucet.key").read_bytes())
        faucet = address_of(key.public_key).hex()
        to = address_of(bytes(range(32)))
        amount = 0
        target = 0
        while not self.stopped.is_set():
            port = self.ports[target % len(self.ports)]
            try:
                nonce = int(rpc(port, "bizra_account", address=faucet)["nonce"])
                for n in range(nonce, nonce + self.rate // 2):
                    amount += 1
                    tx = sign_tx(self.chain_id, key, n, Transfer(to, amount))
                    result = rpc(port, "broadcast_tx_sync", tx=base64.b64encode(tx).decode())
                    if result["code"] == 0:
                        self.accepted.add(tx_hash(tx))
            except (*UNREACHABLE, AssertionError):
                target += 1  # that node is down or busy: the next one
            self.stopped.wait(0.5)


@dataclass(frozen=True)
class Fault:
    kind: str
    nodes: tuple[int, ...]
    seconds: float
    offset_ms: int = 0

    def __str__(self) -> str:
        extra = f" {self.offset_ms:+d} ms" if self.kind == "skew" else ""
        return f"{self.kind} {list(self.nodes)}{extra} for {self.seconds:.1f} s"


def schedule(rng: random.Random, validators: int, faults: int, *, max_skew_ms: int) -> list[Fault]:
    """``faults`` random faults, one at a time, each on at most a third of the
    validators except ``split`` (two halves: no quorum until it heals)."""
    out = []
    for _ in range(faults):
        kind = rng.choice(FAULT_KINDS)
        seconds = rng.uniform(1.0, 6.0)
        if kind == "split":
            order = list(range(validators))
            rng.shuffle(order)
            out.append(Fault(kind, tuple(sorted(order[: validators // 2])), seconds))
        else:
            victim = (rng.randrange(validators),)
            offset = rng.choice((-1, 1)) * rng.randrange(max_skew_ms // 4, max_skew_ms + 1)
            out.append(Fault(kind, victim, seconds, offset if kind == "skew" else 0))
    return out


def inject(net: Devnet, fault: Fault) -> None:
    """Start ``fault``, let it last, and end it (the node restarted, resumed or heard
    again; a skewed node keeps its skew until the run ends)."""
    (first, *_) = fault.nodes
    if fault.kind == "kill":
        net.kill(first)
        time.sleep(fault.seconds)
        net.start(first)
    elif fault.kind == "pause":
        net.pause(first)
        time.sleep(fault.seconds)
        net.resume(first)
    elif fault.kind in ("isolate", "split"):
        rest = [i for i in range(len(net.nodes)) if i not in fault.nodes]
        net.partition([list(fault.nodes), rest])
        time.sleep(fault.seconds)
        net.heal()
    elif fault.kind == "skew":
        net.kill(first)
        net.offsets[first] = fault.offset_ms
        time.sleep(fault.seconds)
        net.start(first)
    else:
        raise ValueError(fault.kind)


@dataclass(frozen=True)
class Outcome:
    heights: int
    """Heights every node committed."""
    recovery_s: float
    """From the last fault's end to the next block."""
    evidence: int
    """Duplicate-vote evidence committed against the equivocators."""


def check(net: Devnet, client: Client, healed_at: float, healed_height: int) -> Outcome:
    """The invariants of a run, once every fault has ended (AssertionError naming the
    first that fails):

    - the chain made a block within 3 block intervals of the end of the last fault;
    - all nodes reach one height with one app hash;
    - no two nodes committed different blocks at any height;
    - every tx of the client's that any node committed is in every node's chain;
    - every equivocator's double signs were committed as evidence, and it is slashed
      and jailed.
    """
    interval = net.params.block_time_ms / 1000
    deadline = healed_at + 3 * interval
    while max(net.heights()) <= healed_height and time.monotonic() < deadline:
        time.sleep(0.05)
    recovery = time.monotonic() - healed_at
    assert max(net.heights()) > healed_height, (
        f"no block within 3 block intervals ({3 * interval:.1f} s) of the last fault's end "
        f"(height {healed_height}){net.describe()}")

    target = max(net.heights()) + 2
    net.wait(lambda: min(net.heights()) >= target, 120, f"every node at height {target}")
    top = min(net.heights())

    def one_app_hash() -> bool:
        """Each node's own state root, once all are seen at one height."""
        infos = [rpc(p, "status")["sync_info"] for p in net.ports]
        if len({i["latest_block_height"] for i in infos}) > 1:
            return False
        roots = {i["latest_app_hash"] for i in infos}
        assert len(roots) == 1, f"app hashes differ at height {infos[0]['latest_block_height']}: {roots}"
        return True

    net.wait(one_app_hash, 60, "every node seen at one height")

    chains = [[rpc(p, "block", height=str(h)) for h in range(1, top + 1)] for p in net.ports]
    for h in range(1, top + 1):
        ids = {chain[h - 1]["block_id"]["hash"] for chain in chains}
        assert len(ids) == 1, f"the nodes committed different blocks at height {h}: {ids}"
    txs = [{tx_hash(base64.b64decode(t)) for b in chain for t in b["block"]["data"]["txs"]}
           for chain in chains]
    committed = client.accepted & set().union(*txs)
    assert committed, "no tx of the client's was committed"
    for i, in_chain in enumerate(txs):
        missing = committed - in_chain
        assert not missing, f"node {i} lacks {len(missing)} committed txs"

    culprits = {net.address(i) for i in net.byzantine}
    evidence = [e["value"] for b in chains[0] for e in b["block"]["evidence"]["evidence"]]
    against = {e["vote_a"]["validator_address"] for e in evidence}
    assert against <= culprits, f"evidence against honest validators: {against - culprits}"
    validators = {v["address"]: v for v in rpc(net.ports[0], "bizra_validators")["validators"]}
    honest_bond = max(int(v["bond"]) for a, v in validators.items() if a not in culprits)
    for culprit in culprits:
        assert culprit in against, f"no evidence committed against the equivocator {culprit}"
        assert int(validators[culprit]["jailed_until_epoch"]) > 0, f"{culprit} not jailed"
        assert int(validators[culprit]["bond"]) < honest_bond, f"{culprit} not slashed"
    return Outcome(top, recovery, len(evidence))
