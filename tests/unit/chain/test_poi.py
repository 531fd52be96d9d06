"""§6.3 arithmetic: the protocol's test vectors and the decision rules."""

from __future__ import annotations

import random

import pytest

from chain.params import Params
from chain.poi import (
    ATTESTATION_FINALIZED,
    ATTESTATION_PENDING,
    ATTESTATION_REJECTED,
    attestation_score,
    decayed_impact,
    endorsement_outcome,
    split_rewards,
    validator_weight,
)

P = Params()


@pytest.mark.parametrize(
    ("dims", "penalty", "score"),
    [
        ((1_000_000,) * 5, 0, 1_000_000),
        ((900_000,) * 5, 0, 900_000),
        ((1_000_000,) * 5, 500_000, 850_000),  # the penalty is capped at max_penalty
        ((0,) * 5, 0, 0),
        ((1_000_000, 0, 0, 0, 0), 0, 300_000),
        ((0, 0, 0, 0, 1_000_000), 100_000, 90_000),
        ((333_333, 333_333, 333_333, 333_333, 333_333), 1, 333_332),  # floors, in order
    ],
)
def test_attestation_score_vectors(dims: tuple[int, int, int, int, int], penalty: int, score: int) -> None:
    assert attestation_score(dims, penalty, P.poi_weights, P.max_penalty) == score


def test_attestation_score_is_exact_over_the_whole_range() -> None:
    """At the ends of every range the params and the callers allow (where the compiled
    build's 64-bit arithmetic is largest) and at random points inside them, the score is
    the formula's in Python's unbounded integers."""
    def formula(dims: tuple[int, ...], penalty: int, weights: tuple[int, ...], max_penalty: int) -> int:
        raw = sum(w * d for w, d in zip(weights, dims, strict=True)) // 1_000_000
        return raw * (1_000_000 - min(penalty, max_penalty)) // 1_000_000

    ppm = 1_000_000
    weight_sets = [P.poi_weights, (ppm, 0, 0, 0, 0), (0, 0, 0, 0, ppm), (200_000,) * 5]
    rng = random.Random(7)
    cases = [((d,) * 5, penalty, weights, max_penalty)
             for d in (0, 1, ppm - 1, ppm) for penalty in (0, 1, ppm) for weights in weight_sets
             for max_penalty in (0, 150_000, ppm)]
    for _ in range(2_000):
        cut = rng.randrange(ppm + 1)
        rest = sorted(rng.randrange(ppm - cut + 1) for _ in range(3))
        weights = (cut, rest[0], rest[1] - rest[0], rest[2] - rest[1], ppm - cut - rest[2])
        d = [rng.randrange(ppm + 1) for _ in range(5)]
        penalty, max_penalty = rng.randrange(ppm + 1), rng.randrange(ppm + 1)
        cases.append(((d[0], d[1], d[2], d[3], d[4]), penalty, weights, max_penalty))
    for dims, penalty, weights, max_penalty in cases:
        assert sum(weights) == ppm
        assert attestation_score(dims, penalty, weights, max_penalty) == formula(dims, penalty, weights,
                                                                                 max_penalty)


def test_decision_needs_more_than_two_thirds_of_the_power() -> None:
    assert endorsement_outcome(2, 2 * 1_000_000, 3, 950_000) == ATTESTATION_PENDING
    assert endorsement_outcome(3, 3 * 1_000_000, 4, 950_000) == ATTESTATION_FINALIZED
    assert endorsement_outcome(3, 3 * 900_000, 4, 950_000) == ATTESTATION_REJECTED
    # weighted mean: powers 1 and 2 scoring 1e6 and 925,000 → mean 950,000 exactly
    assert endorsement_outcome(3, 1_000_000 + 2 * 925_000, 4, 950_000) == ATTESTATION_FINALIZED


def test_rewards_split_floors_and_burns_the_remainder() -> None:
    assert split_rewards([1, 1, 1], 1_000) == [333, 333, 333]
    assert split_rewards([], 1_000) == []
    assert split_rewards([0, 0], 1_000) == [0, 0]
    assert split_rewards([3, 1], 1_000_000_000) == [750_000_000, 250_000_000]


def test_impact_decay() -> None:
    assert decayed_impact(1_000_000, P.lambda_) == 900_000
    assert decayed_impact(7, P.lambda_) == 6


def test_validator_weight() -> None:
    # base + I + rep//2 + 50,000·isqrt(s)
    assert validator_weight(0, 500_000, 1_000, P.base, P.cap) == 100_000 + 250_000 + 50_000 * 31
    assert validator_weight(10**9, 500_000, 1_000, P.base, P.cap) == P.cap
