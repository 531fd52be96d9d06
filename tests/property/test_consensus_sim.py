"""Consensus under seeded random schedules (``tests/support/consensussim.py``): n = 4 and n = 7
validators with delays, reordering, duplication, loss, healing partitions, crashes with
WAL replay and one equivocating validator. Every run checks agreement, validity, that no
honest validator signs twice for one height/round/step, liveness once the faults end,
and that the equivocator's evidence is committed.

``BIZRA_SIM_SCHEDULES`` sets the number of schedules (2,000 by default), ``BIZRA_SIM_SEED``
the first seed.
"""

from __future__ import annotations

import os
import random

import pytest

from consensussim import Faults, Simulation

SCHEDULES = int(os.environ.get("BIZRA_SIM_SCHEDULES", "2000"))
FIRST_SEED = int(os.environ.get("BIZRA_SIM_SEED", "1"))
BATCHES = 20


def random_faults(rng: random.Random, n: int) -> Faults:
    until = rng.randrange(2_000, 30_000)
    byzantine = rng.randrange(n) if rng.random() < 0.7 else None
    honest = [i for i in range(n) if i != byzantine]
    partitions = []
    for _ in range(rng.randrange(3)):
        start = rng.randrange(until)
        group = frozenset(rng.sample(range(n), rng.randrange(1, n)))
        partitions.append((start, rng.randrange(start, until + 1), group))
    crashes = []
    for node in rng.sample(honest, rng.randrange(min(3, len(honest)))):
        at = rng.randrange(until)
        crashes.append((node, at, rng.randrange(at + 1, until + 1)))
    return Faults(
        max_delay_ms=rng.choice([20, 200, 1_000, 3_000]),
        loss=rng.choice([0.0, 0.05, 0.2, 0.4]),
        duplicate=rng.choice([0.0, 0.1, 0.3]),
        partitions=partitions,
        crashes=crashes,
        byzantine=byzantine,
        until_ms=until,
        invalid_proposals=rng.random() < 0.5,
    )


def run_schedule(seed: int) -> Simulation:
    rng = random.Random(seed)
    n = rng.choice([4, 7])
    return Simulation(seed, n, rng.randrange(3, 7), random_faults(rng, n)).run()


@pytest.mark.parametrize("batch", range(BATCHES))
def test_random_schedules_keep_every_property(batch: int) -> None:
    failures = []
    for seed in range(FIRST_SEED + batch, FIRST_SEED + SCHEDULES, BATCHES):
        sim = run_schedule(seed)
        problems = list(sim.violations)
        byz = sim.faults.byzantine
        if byz is not None and sim.equivocation_seen() and not sim.evidence_committed_against(byz):
            problems.append(f"the evidence against validator {byz} was never committed")
        if problems:
            failures.append(f"seed {seed}: {problems}")
    assert not failures, "\n".join(failures[:20])


def test_no_faults_one_round_per_height() -> None:
    sim = Simulation(7, 4, 10, Faults()).run()
    assert sim.violations == []
    assert all(node.height == 11 for node in sim.nodes)
    assert set(sim.rounds.values()) == {0}
