"""Validator sets: which one is in effect at a height, and the next one (§6).

Sets change only at an epoch end E and take effect at E + 2, so the set of a height is
found by arithmetic. Set order is by voting power, highest first, ties to the lower
consensus address (as CometBFT).
"""

from __future__ import annotations

from collections.abc import Sequence

from chain.crypto import address_of
from chain.errors import InvalidBlock
from chain.ledger import Ledger
from chain.params import USEED_PER_SEED, ChainConfig, Params
from chain.poi import validator_weight
from chain.types import SetMember, Validator


def set_start_height(height: int, config: ChainConfig) -> int:
    """The height from which the validator set in effect at ``height`` applies.

    Sets change only at an epoch end E and take effect at E + 2 (§6), so the set for a
    height is found by arithmetic, not by search.
    """
    span = height - config.initial_height - 1
    length = config.params.epoch_length
    if span < length:
        return config.initial_height
    return config.initial_height + (span // length) * length + 1


def validator_set_at(ledger: Ledger, height: int, config: ChainConfig) -> list[SetMember]:
    members = ledger.validator_set(set_start_height(height, config))
    if members is None:
        raise InvalidBlock(f"no validator set is known for height {height}")
    return members


def next_validator_set(ledger: Ledger, validators: Sequence[Validator],
                       params: Params) -> list[SetMember]:
    """Weights of §6 for every free validator with at least ``min_bond``; the highest
    ``max_validators``, by weight then lower consensus address, in set order."""
    ranked: list[tuple[int, bytes, bytes]] = []
    for v in validators:
        if v.jailed_until_epoch or v.bond < params.min_bond:
            continue
        weight = validator_weight(ledger.impact(v.operator), v.reputation,
                                  v.bond // USEED_PER_SEED, params.base, params.cap)
        if weight > 0:
            ranked.append((-weight, address_of(v.consensus_pubkey), v.consensus_pubkey))
    ranked.sort()
    return [SetMember(pubkey, -neg) for neg, _, pubkey in ranked[: params.max_validators]]
