"""A validator killed with SIGKILL at random instants, again and again, while the devnet
is under tx load: every time it restarts with an intact store, catches up to the same
blocks (so the same app hashes) as its peers while the chain goes on, and signs again;
it never signs two different votes or proposals for one step (no evidence against it
is ever committed); and every tx whose commit a client saw is in the chain of every
node.

Not collected by the default run (the file name): run it with
``python -m pytest tests/e2e/crash_soak.py``. It does not pass yet: after some tens of
kills the four validators can spend many rounds on one height (seen: rounds 1 to 13 of
one height with all four up), which it reports as "the chain going on" failing.
``CRASH_KILLS`` sets the number of kills (30 by default), ``CRASH_SEED`` the random
instants (not ``BIZRA_…``: the nodes, which inherit the environment, take those for
their configuration).
"""

from __future__ import annotations

import base64
import functools
import os
import random
import threading
import time
import urllib.error
from pathlib import Path

import pytest

from chain.crypto import address_of, private_key_from_pem
from chain.params import Params
from chain.types import Transfer, tx_hash
from node import devnet

from chainkit import sign_tx
from nodekit import free_ports, height, processes, rpc, signed_since, wait_until

pytestmark = pytest.mark.slow
BLOCK_MS = 500
CHAIN = "bizra-crash-1"
KILLS = int(os.environ.get("CRASH_KILLS", "30"))
SEED = int(os.environ.get("CRASH_SEED", str(random.randrange(1 << 32))))


class Client:
    """Sends faucet transfers to one node, one after another, until stopped; remembers
    each tx it saw accepted."""

    def __init__(self, directory: Path, port: int) -> None:
        self.key = private_key_from_pem((directory / "faucet.key").read_bytes())
        self.port = port
        self.accepted: list[bytes] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        nonce = 0
        to = address_of(bytes(range(32)))
        while not self.stopped.is_set():
            tx = sign_tx(CHAIN, self.key, nonce, Transfer(to, 1), 1_000)
            try:
                result = rpc(self.port, "broadcast_tx_sync", tx=base64.b64encode(tx).decode())
            except (urllib.error.URLError, OSError, AssertionError):
                time.sleep(0.1)
                continue
            if result["code"] == 0:
                self.accepted.append(tx_hash(tx))
                nonce += 1
            else:
                time.sleep(0.1)
            time.sleep(0.02)


def back_at_the_tip(ports: list[int], killed_at: int) -> bool:
    """Node 3 at most a block behind node 0, which is past ``killed_at``."""
    return height(ports[3]) >= height(ports[0]) - 1 > killed_at


def block_id(port: int, h: int) -> str:
    return str(rpc(port, "block", height=str(h))["block_id"]["hash"])


def test_a_validator_killed_at_random_instants_restarts_intact_and_never_double_signs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIZRA_RPC_REQUESTS_PER_MINUTE", "1000000")  # this test polls a lot
    rng = random.Random(SEED)
    p2p, rpc_base = free_ports(4), free_ports(4) + 20
    nodes = devnet.create(tmp_path, 4, chain_id=CHAIN, p2p_port=p2p, rpc_port=rpc_base,
                          params=Params(block_time_ms=BLOCK_MS, epoch_length=1_000))
    ports = [n.rpc_port for n in nodes]
    logs = [n.home.path / "node.log" for n in nodes]
    victim = nodes[3]
    with processes() as started:
        started += [devnet.start(n, log) for n, log in zip(nodes, logs, strict=True)]
        wait_until(lambda: min(height(p) for p in ports) >= 2, 120, "4 nodes at height 2", logs)
        client = Client(tmp_path, ports[0])
        sender = threading.Thread(target=client.run, daemon=True)
        sender.start()
        me = rpc(ports[3], "status")["validator_info"]["address"]
        try:
            for kill in range(KILLS):
                time.sleep(rng.uniform(0.0, 2.5))  # any instant of a height: voting, executing, writing
                process = started.pop()
                process.kill()
                process.wait()
                killed_at = height(ports[0])
                started.append(devnet.start(victim, logs[3]))
                what = f"kill {kill + 1} of {KILLS} (seed {SEED}): node 3 back at the tip, the chain going on"
                wait_until(functools.partial(back_at_the_tip, ports, killed_at), 60, what, logs)
                h = height(ports[3])
                assert block_id(ports[3], h) == block_id(ports[0], h), f"{what}: a block of its own"
        finally:
            client.stopped.set()
            sender.join(timeout=30)

        back_at = height(ports[3])

        wait_until(lambda: signed_since(ports[0], me, back_at), 60,
                   "node 3 signs again after its last restart", logs)
        top = min(height(p) for p in ports)
        chains = [[rpc(p, "block", height=str(h)) for h in range(1, top + 1)] for p in ports]
        for h in range(1, top + 1):
            ids = {chain[h - 1]["block_id"]["hash"] for chain in chains}
            assert len(ids) == 1, f"the nodes differ at height {h}: {ids}"
            evidence = chains[0][h - 1]["block"]["evidence"]["evidence"]
            assert not evidence, f"evidence committed at height {h}: {evidence}"
        in_chain = [{tx_hash(base64.b64decode(t)) for b in chain for t in b["block"]["data"]["txs"]}
                    for chain in chains]
        confirmed = [t for t in client.accepted if t in in_chain[0]]
        assert confirmed, "no tx of the client's was committed"
        for i, txs in enumerate(in_chain):
            missing = [t.hex() for t in confirmed if t not in txs]
            assert not missing, f"node {i} lacks committed txs: {missing[:5]}"
