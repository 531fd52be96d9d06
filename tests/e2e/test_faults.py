"""Faults a third of the network can cause, on real node processes (tests/support/faultkit.py):
no fork, no committed tx lost, one app hash, the equivocator punished, and a block soon
after the last fault ends. And a validator killed at random instants, again and again,
restarting intact every time and never signing twice.

Environment (not ``BIZRA_…``: the nodes inherit the environment and take those for
their configuration):

- ``FAULT_SEED``: the random schedules and instants (printed with every run);
- ``FAULT_RUNS`` (2) and ``FAULT_COUNT`` (6): fault schedules, and faults in each;
- ``FAULT_KILLS`` (30): SIGKILLs of the crash test;
- ``FAULT_SOAK_MINUTES`` (0): the soak: new schedules, run after run, for that long.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
from pathlib import Path

import pytest

from chain.params import Params

from faultkit import Client, Devnet, check, inject, schedule
from nodekit import height, rpc, signed_since

pytestmark = pytest.mark.slow
SEED = int(os.environ.get("FAULT_SEED", str(random.randrange(1 << 32))))
RUNS = int(os.environ.get("FAULT_RUNS", "2"))
FAULTS = int(os.environ.get("FAULT_COUNT", "6"))
KILLS = int(os.environ.get("FAULT_KILLS", "30"))
SOAK_S = 60 * float(os.environ.get("FAULT_SOAK_MINUTES", "0"))
PARAMS = Params(block_time_ms=2_000, epoch_length=1_000, timeout_propose_ms=1_500,
                timeout_propose_delta_ms=250, timeout_prevote_ms=500, timeout_prevote_delta_ms=250,
                timeout_precommit_ms=500, timeout_precommit_delta_ms=250)
"""CometBFT's proportions (a block time twice the propose timeout), 3 times faster."""


@pytest.fixture(autouse=True)
def _polling_is_not_abuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIZRA_RPC_REQUESTS_PER_MINUTE", "1000000")


def test_random_fault_schedules_never_fork_lose_a_tx_or_stall_after_the_faults_end(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Validator 3 equivocates throughout; one fault at a time (kill -9 and restart,
    pause, isolation, a split into halves, clock skew) on random nodes, under load."""
    rng = random.Random(SEED)
    deadline = time.monotonic() + SOAK_S
    run = 0
    while run < RUNS or time.monotonic() < deadline:
        faults = schedule(rng, 4, FAULTS, max_skew_ms=PARAMS.block_time_ms // 2)
        what = f"run {run} of seed {SEED}: " + ", ".join(map(str, faults))
        with Devnet(tmp_path / f"run{run}", 4, chain_id="bizra-faults-1", params=PARAMS,
                    byzantine=[3]) as net:
            net.wait(lambda: min(net.heights()) >= 2, 120, "4 nodes at height 2")
            client = Client(net.directory, net.ports, net.chain_id)
            sender = threading.Thread(target=client.run, daemon=True)
            sender.start()
            try:
                for n, fault in enumerate(faults):
                    if n:
                        time.sleep(rng.uniform(0.5, 2.0))
                    inject(net, fault)
                healed_at, healed_height = time.monotonic(), max(net.heights())
            finally:
                client.stopped.set()
                sender.join(timeout=30)
            try:
                outcome = check(net, client, healed_at, healed_height)
            except AssertionError as exc:
                raise AssertionError(f"{what}\n{exc}") from None
        with capsys.disabled():
            print(f"\n{what}\n  -> {outcome.heights} heights, {len(client.accepted)} txs accepted, "
                  f"{outcome.evidence} evidence committed, block {outcome.recovery_s:.1f} s after "
                  "the last fault")
        run += 1


def test_a_validator_killed_at_random_instants_restarts_intact_and_never_double_signs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every time it restarts with an intact store, catches up to the same blocks as its
    peers while the chain goes on, and signs again; no evidence against it is ever
    committed; every tx whose commit a client saw is in the chain of every node."""
    rng = random.Random(SEED)
    with Devnet(tmp_path, 4, chain_id="bizra-crash-1", params=Params(block_time_ms=500, epoch_length=1_000)
                ) as net:
        ports = net.ports
        net.wait(lambda: min(net.heights()) >= 2, 120, "4 nodes at height 2")
        client = Client(net.directory, ports[:3], net.chain_id)
        sender = threading.Thread(target=client.run, daemon=True)
        sender.start()
        try:
            for kill in range(KILLS):
                time.sleep(rng.uniform(0.0, 2.5))  # any instant of a height: voting, executing, writing
                net.kill(3)
                killed_at = height(ports[0])
                net.start(3)
                what = f"kill {kill + 1} of {KILLS} (seed {SEED}): node 3 back at the tip, the chain going on"
                net.wait(functools.partial(_back_at_the_tip, ports, killed_at), 60, what)
                h = min(height(ports[3]), height(ports[0]))  # node 3 may commit a height first
                assert _block_id(ports[3], h) == _block_id(ports[0], h), f"{what}: a block of its own"
            healed_at, healed_height = time.monotonic(), max(net.heights())
        finally:
            client.stopped.set()
            sender.join(timeout=30)
        back_at = height(ports[3])
        net.wait(lambda: signed_since(ports[0], net.address(3), back_at), 60,
                 "node 3 signs again after its last restart")
        outcome = check(net, client, healed_at, healed_height)
    with capsys.disabled():
        print(f"\n{KILLS} SIGKILLs of validator 3 (seed {SEED}): {outcome.heights} heights, "
              f"{len(client.accepted)} txs accepted, no double sign")


def _back_at_the_tip(ports: list[int], killed_at: int) -> bool:
    """Node 3 at most a block behind node 0, which is past ``killed_at``."""
    return height(ports[3]) >= height(ports[0]) - 1 > killed_at


def _block_id(port: int, h: int) -> str:
    return str(rpc(port, "block", height=str(h))["block_id"]["hash"])
