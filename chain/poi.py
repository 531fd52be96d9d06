"""Proof of Impact arithmetic (§6.3): integer ppm, floor division, in the protocol's order.

Pure functions of integers, compiled with mypyc. Nothing here reads the state; the
state transition feeds them what it has read.
"""

from __future__ import annotations

from math import isqrt
from typing import TYPE_CHECKING

from chain.params import PPM

if TYPE_CHECKING:
    # Compiled, ``i64`` is a machine integer; interpreted (and at run time) it is never
    # looked up: the annotations are not evaluated.
    from mypy_extensions import i64

ATTESTATION_PENDING = 0
ATTESTATION_FINALIZED = 1
ATTESTATION_REJECTED = 2
ATTESTATION_EXPIRED = 3

INITIAL_REPUTATION = 500_000
"""A validator's reputation (ppm) when it registers; it moves within [0, 1e6]."""


def attestation_score(
    dims: tuple[i64, i64, i64, i64, i64],
    penalty: i64,
    weights: tuple[i64, i64, i64, i64, i64],
    max_penalty: i64,
) -> i64:
    """``raw = Σ w_i·dims_i // 1e6``; ``score = raw·(1e6 − min(penalty, max_penalty)) // 1e6``.

    Callers check the ranges first: dims and penalty in [0, 1e6]; the weights (in
    [0, 1e6], summing to 1e6) and ``max_penalty`` (at most 1e6) are the chain's params,
    checked when they are loaded. Every intermediate is then at most 1e12, so the 64-bit
    arithmetic of the compiled build is exact and equals the interpreted one's. An
    argument of 2**63 or more is refused (TypeError) by the compiled build.
    """
    # Typed tuples unpacked, the sum unrolled, no min(): compiled, this is arithmetic on
    # machine integers, with no generic indexing, call or overflow check per term.
    d0, d1, d2, d3, d4 = dims
    w0, w1, w2, w3, w4 = weights
    cut = penalty if penalty < max_penalty else max_penalty
    return (w0 * d0 + w1 * d1 + w2 * d2 + w3 * d3 + w4 * d4) // PPM * (PPM - cut) // PPM


def endorsement_outcome(endorsing_power: int, weighted_scores: int, total_power: int,
                        threshold: int) -> int:
    """The status an attestation takes given its endorsements so far.

    ``weighted_scores`` is Σ power·validation_score over the endorsers. Decided once the
    endorsing power exceeds 2/3 of ``total_power``: finalized when the power-weighted
    mean score (floor) is at least ``threshold``, rejected otherwise; pending before.
    """
    if endorsing_power == 0 or endorsing_power * 3 <= total_power * 2:
        return ATTESTATION_PENDING
    if weighted_scores // endorsing_power >= threshold:
        return ATTESTATION_FINALIZED
    return ATTESTATION_REJECTED


def expiry_epoch(epoch: int, ttl_epochs: int) -> int:
    """The epoch at whose end an attestation of ``epoch`` expires if still pending:
    ``epoch + max(ttl_epochs, 1) − 1``, so that it lives ``ttl_epochs`` epochs, its own
    included (at least its own)."""
    return epoch + max(ttl_epochs, 1) - 1


def decayed_impact(impact: int, lambda_ppm: int) -> int:
    """``I_prev · lambda // 1e6``."""
    return impact * lambda_ppm // PPM


def split_rewards(scores: list[int], issuance: int) -> list[int]:
    """Each contributor's share of ``issuance``, proportional to its score, floored.

    What the floors leave over is not paid (it is burned); an epoch with no finalized
    score pays nothing.
    """
    total = 0
    for s in scores:
        total += s
    if total == 0:
        return [0 for _ in scores]
    return [issuance * s // total for s in scores]


def validator_weight(impact: int, reputation: int, stake_seed: int, base: int, cap: int) -> int:
    """``W = min(cap, base + I + rep // 2 + 50,000 · isqrt(s))``, ``s`` in whole SEED."""
    return min(cap, base + impact + reputation // 2 + 50_000 * isqrt(stake_seed))
