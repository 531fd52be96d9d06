"""Proposer selection against CometBFT's own tests (``types/validator_set_test.go``,
v0.38): the same sets give the same sequences and the same priorities."""

from __future__ import annotations

import random

import pytest

from chain.types import SetMember
from consensus.proposer import (
    INT64_MAX,
    INT64_MIN,
    Priorities,
    Voter,
    advance,
    initial,
    next_height,
    voters,
)


def sequence(state: Priorities, steps: int) -> list[bytes]:
    """GetProposer, then IncrementProposerPriority(1), ``steps`` times."""
    out = []
    for _ in range(steps):
        out.append(state.proposer_address())
        state = advance(state, 1)
    return out


def test_selection_1() -> None:
    state = initial([(b"foo", 1000), (b"bar", 300), (b"baz", 330)])
    expected = ("foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar "
                "foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar "
                "foo baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz "
                "foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo "
                "foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo")
    assert b" ".join(sequence(state, 99)).decode() == expected


def addr(n: int) -> bytes:
    return bytes(19) + bytes([n])


def test_selection_2_equal_power_goes_in_address_order() -> None:
    state = initial([(addr(0), 100), (addr(1), 100), (addr(2), 100)])
    assert sequence(state, 15) == [addr(i % 3) for i in range(15)]


@pytest.mark.parametrize(("power", "expected"), [(400, [2, 0]), (401, [2, 2, 0])])
def test_selection_2_heavier_validator(power: int, expected: list[int]) -> None:
    state = initial([(addr(0), 100), (addr(1), 100), (addr(2), power)])
    assert sequence(state, len(expected)) == [addr(i) for i in expected]


def test_selection_2_proposals_are_proportional_to_power() -> None:
    state = initial([(addr(0), 4), (addr(1), 5), (addr(2), 3)])
    proposers = sequence(state, 120)
    assert [proposers.count(addr(i)) for i in range(3)] == [40, 50, 30]


def test_selection_3_order_holds_whatever_the_step_counts() -> None:
    state = initial([(bytes([c]) * 20, 1) for c in b"abcd"])
    order = sequence(state, 4)
    for _ in range(4):
        state = advance(state, 1)
    rng = random.Random(3)
    j = 0
    for _ in range(10_000):
        assert state.proposer_address() == order[j % 4]
        times = 1
        if rng.randrange(1 << 31) % (rng.randrange(1 << 31) % 5 + 1) > 0:
            times = rng.randrange(1 << 31) % 4 + 1
        state = advance(state, times)
        j += times


@pytest.mark.parametrize(("priorities", "times", "avg"), [
    ((1, 2, 3), 1, 2),
    ((10, -10, 1), 11, 0),
    ((100, -10, 1), 1, 91 // 3),
])
def test_averaging(priorities: tuple[int, int, int], times: int, avg: int) -> None:
    state = Priorities((b"a", b"b", b"c"), (0, 0, 0), priorities, -1)
    after = advance(state, times)
    assert after.priorities == tuple(p - avg for p in priorities)


VP0, VP1, VP2 = 10, 1, 1
TOTAL = VP0 + VP1 + VP2


@pytest.mark.parametrize(("times", "expected", "proposer"), [
    (1, (VP0 - TOTAL, VP1, VP2), 0),
    (2, (2 * (VP0 - TOTAL), 2 * VP1, 2 * VP2), 0),
    (3, (3 * (VP0 - TOTAL), 3 * VP1, 3 * VP2), 0),
    (4, (4 * (VP0 - TOTAL), 4 * VP1, 4 * VP2), 0),
    (5, (4 * (VP0 - TOTAL) + VP0, 5 * VP1 - TOTAL, 5 * VP2), 1),
    (6, (6 * VP0 - 5 * TOTAL, 6 * VP1 - TOTAL, 6 * VP2), 0),
    (7, (7 * VP0 - 6 * TOTAL, 7 * VP1 - TOTAL, 7 * VP2), 0),
    (8, (8 * VP0 - 7 * TOTAL, 8 * VP1 - TOTAL, 8 * VP2), 0),
    (9, (9 * VP0 - 7 * TOTAL, 9 * VP1 - TOTAL, 9 * VP2 - TOTAL), 2),
    (10, (10 * VP0 - 8 * TOTAL, 10 * VP1 - TOTAL, 10 * VP2 - TOTAL), 0),
    (11, (11 * VP0 - 9 * TOTAL, 11 * VP1 - TOTAL, 11 * VP2 - TOTAL), 0),
])
def test_averaging_with_voting_power(times: int, expected: tuple[int, ...], proposer: int) -> None:
    state = Priorities((b"\x00", b"\x01", b"\x02"), (VP0, VP1, VP2), (0, 0, 0), -1)
    after = advance(state, times)
    assert after.priorities == expected
    assert after.proposer == proposer


def test_priorities_clip_at_int64() -> None:
    state = Priorities((b"a", b"b"), (5, 5), (INT64_MAX - 1, INT64_MIN + 1), -1)
    after = advance(state, 1)
    assert all(INT64_MIN <= p <= INT64_MAX for p in after.priorities)


def test_a_joining_validator_starts_behind() -> None:
    """New validators start at -1.125 × the total (after updates, before removals), so
    leaving and re-joining never resets a low priority (CometBFT's
    TestValSetUpdatePriorityOrderTests: the added ones have the lowest, equal priority)."""
    start: list[Voter] = [(b"v3", 1000), (b"v2", 2), (b"v1", 1)]
    state = initial(start)
    for _ in range(137):
        state = advance(state, 1)
    changed: list[Voter] = [(b"v5", 50), (b"v4", 40), (b"v1", 1), (b"v2", 1)]
    after = next_height(state, changed)
    by_address = dict(zip(after.addresses, after.priorities, strict=True))
    # One step after joining: both new ones grew by their power from the same start.
    assert by_address[b"v5"] - 50 == by_address[b"v4"] - 40
    assert by_address[b"v5"] - 50 < min(by_address[b"v1"] - 1, by_address[b"v2"] - 1)


def test_leaving_and_rejoining_does_not_reset_priority() -> None:
    state = initial([(b"a", 10), (b"b", 10), (b"c", 10)])
    without = next_height(state, [(b"a", 10), (b"b", 10)])
    back = next_height(without, [(b"a", 10), (b"b", 10), (b"c", 10)])
    prio = dict(zip(back.addresses, back.priorities, strict=True))
    assert prio[b"c"] < min(prio[b"a"], prio[b"b"])
    assert back.proposer_address() != b"c"


def test_an_unchanged_set_steps_as_increment() -> None:
    vals: list[Voter] = [(b"foo", 1000), (b"bar", 300), (b"baz", 330)]
    state = initial(vals)
    assert next_height(state, vals) == advance(state, 1)


def test_bad_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be empty"):
        initial([])
    with pytest.raises(ValueError, match="twice"):
        initial([(b"a", 1), (b"a", 2)])
    with pytest.raises(ValueError, match="power must be"):
        initial([(b"a", 0)])
    with pytest.raises(ValueError, match="at least one step"):
        advance(initial([(b"a", 1)]), 0)


def test_chain_sets_use_consensus_addresses() -> None:
    member = SetMember(bytes(range(32)), 7)
    ((address, power),) = voters([member])
    assert len(address) == 20 and power == 7
