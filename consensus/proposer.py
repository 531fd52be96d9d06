"""Proposer selection: CometBFT's weighted round robin with priorities, reproduced
exactly (``types/validator_set.go``), as §7 requires.

Each validator has a priority. Per step every priority grows by its validator's power,
and the validator with the highest priority (ties: the lower address) proposes and
loses the total power. Before a run of steps, priorities are rescaled (divided, rounding
toward zero, until their spread is at most twice the total power) and centred on their
average (floor). All arithmetic is clipped to int64, as in Go. A validator that joins
starts at ``-1.125 × total`` (the total before removals), so leaving and re-joining
cannot reset a low priority.

Order of the set does not matter to any result: ties are decided by address.

The chain's use (consensus): the priorities of height ``H`` are those of ``H - 1``
updated to the set of ``H`` and stepped once (:func:`next_height`); the first height's
are :func:`initial`. Round ``r`` of a height is proposed by
``advance(priorities, r).proposer`` (one call, as CometBFT's ``enterNewRound`` does
when it moves from round 0 to ``r``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chain.crypto import address_of
from chain.types import SetMember

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
MAX_TOTAL_VOTING_POWER = INT64_MAX // 8
PRIORITY_WINDOW_SIZE_FACTOR = 2


def _clip(n: int) -> int:
    return INT64_MAX if n > INT64_MAX else INT64_MIN if n < INT64_MIN else n


def _wrap(n: int) -> int:
    """``n`` as Go's int64 arithmetic leaves it (two's complement wrap-around)."""
    return (n + (1 << 63)) % (1 << 64) - (1 << 63)


def _quo(a: int, b: int) -> int:
    """Go's integer division: truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


Voter = tuple[bytes, int]
"""A validator as proposer selection sees it: ``(consensus address, voting power)``."""


def voters(members: Sequence[SetMember]) -> list[Voter]:
    """A chain validator set as :data:`Voter` pairs, in set order."""
    return [(address_of(m.pubkey), m.power) for m in members]


@dataclass(frozen=True, slots=True)
class Priorities:
    """A validator set with its proposer priorities, in the set's order; ``proposer``
    is the index of the current proposer (-1 before the first step)."""

    addresses: tuple[bytes, ...]
    powers: tuple[int, ...]
    priorities: tuple[int, ...]
    proposer: int

    @property
    def total_power(self) -> int:
        return sum(self.powers)

    def proposer_address(self) -> bytes:
        """The consensus address of the current proposer."""
        if self.proposer < 0:
            raise ValueError("no step has chosen a proposer yet")
        return self.addresses[self.proposer]


def initial(validators: Sequence[Voter]) -> Priorities:
    """The priorities of a new set (CometBFT's ``NewValidatorSet``): every validator
    joins, then one step."""
    return advance(_apply_set(Priorities((), (), (), -1), validators), 1)


def next_height(previous: Priorities, validators: Sequence[Voter]) -> Priorities:
    """The priorities of the next height: ``previous`` updated to the set ``validators``
    (unchanged, or the change an epoch end made) and stepped once."""
    same = tuple(a for a, _ in validators) == previous.addresses and tuple(
        p for _, p in validators) == previous.powers
    return advance(previous if same else _apply_set(previous, validators), 1)


def advance(state: Priorities, times: int) -> Priorities:
    """``times`` steps (CometBFT's ``IncrementProposerPriority``): rescale and centre
    once, then step ``times`` times; ``times`` ≥ 1."""
    if not state.addresses:
        raise ValueError("an empty validator set has no proposer")
    if times < 1:
        raise ValueError("advance by at least one step")
    total = state.total_power
    prios = _rescale(list(state.priorities), PRIORITY_WINDOW_SIZE_FACTOR * total)
    prios = _centre(prios)
    powers = state.powers
    addresses = state.addresses
    proposer = -1
    for _ in range(times):
        for i, power in enumerate(powers):
            prios[i] = _clip(prios[i] + power)
        proposer = _most(prios, addresses)
        prios[proposer] = _clip(prios[proposer] - total)
    return Priorities(addresses, powers, tuple(prios), proposer)


def _most(prios: list[int], addresses: Sequence[bytes]) -> int:
    """The index of the highest priority, ties to the lower address."""
    best = 0
    for i in range(1, len(prios)):
        if prios[i] > prios[best] or (prios[i] == prios[best] and addresses[i] < addresses[best]):
            best = i
    return best


def _rescale(prios: list[int], diff_max: int) -> list[int]:
    """Divide every priority by ``ceil(spread / diff_max)`` when the spread exceeds
    ``diff_max`` (CometBFT's ``RescalePriorities``)."""
    if diff_max <= 0:
        return prios
    diff = _wrap(max(prios) - min(prios))
    if diff < 0:
        diff = _wrap(-diff)
    if diff <= diff_max:
        return prios
    ratio = _quo(_wrap(diff + diff_max - 1), diff_max)
    return [_quo(p, ratio) for p in prios]


def _centre(prios: list[int]) -> list[int]:
    """Subtract the average priority (floor division, as Go's ``big.Int.Div``)."""
    avg = sum(prios) // len(prios)
    return [_clip(p - avg) for p in prios]


def _apply_set(state: Priorities, validators: Sequence[Voter]) -> Priorities:
    """Move ``state`` to the set ``validators`` (CometBFT's ``UpdateWithChangeSet`` with
    the changes that turn one set into the other): validators that stay keep their
    priorities, new ones start at ``-1.125 ×`` the total power after updates and before
    removals; then rescale and centre."""
    if not validators:
        raise ValueError("a validator set cannot be empty")
    addresses = tuple(a for a, _ in validators)
    powers = tuple(p for _, p in validators)
    if len(set(addresses)) != len(addresses):
        raise ValueError("a validator set has one validator twice")
    if any(not 0 < p <= MAX_TOTAL_VOTING_POWER for p in powers):
        raise ValueError(f"a validator's power must be in [1, {MAX_TOTAL_VOTING_POWER}]")
    total = sum(powers)
    if total > MAX_TOTAL_VOTING_POWER:
        raise ValueError(f"total voting power {total} exceeds {MAX_TOTAL_VOTING_POWER}")
    old = {a: (power, prio) for a, power, prio in
           zip(state.addresses, state.powers, state.priorities, strict=True)}
    before_removals = state.total_power + sum(p - old.get(a, (0, 0))[0] for a, p in validators)
    joining = -(before_removals + (before_removals >> 3))
    prios = [old[a][1] if a in old else joining for a in addresses]
    prios = _centre(_rescale(prios, PRIORITY_WINDOW_SIZE_FACTOR * total))
    return Priorities(addresses, powers, tuple(prios), -1)
