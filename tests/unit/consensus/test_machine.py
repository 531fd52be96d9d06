"""The consensus state machine, rule by rule (the paper's lines), from one validator's
point of view: scripted events in, actions out."""

from __future__ import annotations

from chain.crypto import PrivateKey, address_of
from chain.types import Proposal, Vote, VoteType, sha256
from consensus.machine import (
    NIL,
    Action,
    BodyIn,
    CastVote,
    Decide,
    FetchBody,
    GetValue,
    Machine,
    ProposalIn,
    Propose,
    ReportEvidence,
    ScheduleTimeout,
    Start,
    Step,
    Timeout,
    TimeoutIn,
    ValueIn,
    VoteIn,
)
from consensus.proposer import initial

KEYS = [PrivateKey.from_seed(sha256(b"machine" + bytes([i]))) for i in range(4)]
ADDRESSES = [address_of(k.public_key) for k in KEYS]
PRIORITIES = initial([(a, 10) for a in ADDRESSES])
A = sha256(b"block A")
B = sha256(b"block B")
H = 5


def machine_for(index: int) -> Machine:
    return Machine(H, PRIORITIES, ADDRESSES[index])


def someone_not_proposing(m: Machine, round_: int) -> int:
    return next(i for i in range(4) if ADDRESSES[i] != m.proposer(round_))


def vote(index: int, vote_type: VoteType, round_: int, block_id: bytes) -> VoteIn:
    return VoteIn(Vote(vote_type, H, round_, block_id, 1, ADDRESSES[index], index, bytes(64)))


def proposal(round_: int, block_id: bytes, pol: int | None = None) -> ProposalIn:
    return ProposalIn(Proposal(H, round_, pol, block_id, 1, bytes(64)))


def votes(m: Machine, voters: list[int], vote_type: VoteType, round_: int, block_id: bytes) -> list[Action]:
    out: list[Action] = []
    for i in voters:
        out += m.step(vote(i, vote_type, round_, block_id))
    return out


def observer() -> tuple[Machine, int]:
    """A validator that is not the proposer of rounds 0 and 1, started."""
    for i in range(4):
        m = machine_for(i)
        if ADDRESSES[i] not in (m.proposer(0), m.proposer(1), m.proposer(2)):
            m.step(Start())
            return m, i
    m = machine_for(someone_not_proposing(machine_for(0), 0))
    m.step(Start())
    return m, ADDRESSES.index(m.me or b"")


def others(me: int) -> list[int]:
    return [i for i in range(4) if i != me]


def test_the_proposer_asks_for_a_value_and_proposes_it() -> None:
    proposer = ADDRESSES.index(machine_for(0).proposer(0))
    m = machine_for(proposer)
    assert m.step(Start()) == [GetValue(0), ScheduleTimeout(Timeout.PROPOSE, 0, 3_000)]  # L14, L18, L21
    assert m.step(ValueIn(0, A)) == [Propose(0, A, None)]  # L19
    assert m.step(proposal(0, A)) == [CastVote(VoteType.PREVOTE, 0, A)]  # L22-L24


def test_a_round_that_goes_well_decides() -> None:
    m, me = observer()
    assert m.step(proposal(0, A)) == [FetchBody(A)]
    assert m.step(BodyIn(A, True)) == [CastVote(VoteType.PREVOTE, 0, A)]  # L24
    actions = votes(m, others(me), VoteType.PREVOTE, 0, A)
    assert CastVote(VoteType.PRECOMMIT, 0, A) in actions  # L36-L40
    assert (m.locked_value, m.locked_round, m.valid_value, m.valid_round) == (A, 0, A, 0)
    actions = votes(m, others(me), VoteType.PRECOMMIT, 0, A)
    decided = [a for a in actions if isinstance(a, Decide)]
    assert len(decided) == 1 and decided[0].block_id == A  # L49-L51
    assert sum(1 for s in decided[0].commit.signatures if s.signature) == 3
    assert m.step(vote(me, VoteType.PRECOMMIT, 0, A)) == []  # decided: nothing more


def test_an_invalid_block_gets_a_nil_prevote() -> None:
    m, _ = observer()
    m.step(proposal(0, A))
    assert m.step(BodyIn(A, False)) == [CastVote(VoteType.PREVOTE, 0, NIL)]  # L26


def test_timeouts_vote_nil_then_move_to_the_next_round() -> None:
    m, me = observer()
    assert m.step(TimeoutIn(Timeout.PROPOSE, 0)) == [CastVote(VoteType.PREVOTE, 0, NIL)]  # L57-L60
    assert m.step(TimeoutIn(Timeout.PROPOSE, 0)) == []
    actions = votes(m, [*others(me)[:2], me], VoteType.PREVOTE, 0, A)
    assert ScheduleTimeout(Timeout.PREVOTE, 0, 1_000) in actions  # L34-L35
    assert m.step(TimeoutIn(Timeout.PREVOTE, 0)) == [CastVote(VoteType.PRECOMMIT, 0, NIL)]  # L61-L64
    actions = votes(m, others(me), VoteType.PRECOMMIT, 0, NIL)
    assert ScheduleTimeout(Timeout.PRECOMMIT, 0, 1_000) in actions  # L47-L48
    actions = m.step(TimeoutIn(Timeout.PRECOMMIT, 0))  # L65-L67
    assert ScheduleTimeout(Timeout.PROPOSE, 1, 3_500) in actions
    assert (m.round, m.round_step) == (1, Step.PROPOSE)


def test_a_nil_quorum_of_prevotes_gets_a_nil_precommit() -> None:
    m, me = observer()
    m.step(TimeoutIn(Timeout.PROPOSE, 0))
    actions = votes(m, others(me), VoteType.PREVOTE, 0, NIL)
    assert CastVote(VoteType.PRECOMMIT, 0, NIL) in actions  # L44-L46


def lock_on_a_in_round_0(m: Machine, me: int) -> None:
    m.step(proposal(0, A))
    m.step(BodyIn(A, True))
    votes(m, others(me), VoteType.PREVOTE, 0, A)
    assert (m.locked_value, m.locked_round) == (A, 0)
    votes(m, others(me), VoteType.PRECOMMIT, 0, NIL)
    m.step(TimeoutIn(Timeout.PRECOMMIT, 0))
    assert m.round == 1


def test_a_locked_validator_prevotes_nil_for_another_block() -> None:
    m, me = observer()
    lock_on_a_in_round_0(m, me)
    m.step(BodyIn(B, True))
    assert m.step(proposal(1, B)) == [CastVote(VoteType.PREVOTE, 1, NIL)]  # L23: locked on A, L26


def test_a_locked_validator_prevotes_its_block_again() -> None:
    m, me = observer()
    lock_on_a_in_round_0(m, me)
    assert m.step(proposal(1, A, pol=0)) == [CastVote(VoteType.PREVOTE, 1, A)]  # L28-L30


def test_a_newer_proof_of_lock_unlocks() -> None:
    m, me = observer()
    lock_on_a_in_round_0(m, me)
    m.step(BodyIn(B, True))
    m.step(TimeoutIn(Timeout.PROPOSE, 1))
    votes(m, others(me), VoteType.PREVOTE, 1, B)  # +2/3 prevotes for B in round 1
    votes(m, others(me), VoteType.PRECOMMIT, 1, NIL)
    m.step(TimeoutIn(Timeout.PRECOMMIT, 1))
    assert m.round == 2
    assert m.step(proposal(2, B, pol=1)) == [CastVote(VoteType.PREVOTE, 2, B)]  # L29: 0 <= 1


def test_an_older_proof_of_lock_does_not_unlock() -> None:
    m, me = observer()
    lock_on_a_in_round_0(m, me)
    m.step(BodyIn(B, True))
    m.step(TimeoutIn(Timeout.PROPOSE, 1))
    votes(m, others(me), VoteType.PREVOTE, 1, NIL)
    votes(m, others(me), VoteType.PRECOMMIT, 1, NIL)
    m.step(TimeoutIn(Timeout.PRECOMMIT, 1))
    # A proof of lock for B from round 0 does not exist; one claimed there needs +2/3
    # prevotes for B at round 0, which this validator never saw: no prevote yet (L28).
    assert m.step(proposal(2, B, pol=0)) == []
    assert m.round_step == Step.PROPOSE


def test_f_plus_one_votes_from_a_later_round_skip_ahead() -> None:
    m, me = observer()
    first, second = others(me)[:2]
    assert votes(m, [first], VoteType.PREVOTE, 7, NIL) == []
    assert m.round == 0
    actions = votes(m, [second], VoteType.PRECOMMIT, 7, NIL)  # L55: 20 of 40 > 1/3
    assert m.round == 7
    assert ScheduleTimeout(Timeout.PROPOSE, 7, 3_000 + 7 * 500) in actions


def test_equivocation_is_reported_once() -> None:
    m, me = observer()
    other = others(me)[0]
    m.step(vote(other, VoteType.PREVOTE, 0, A))
    first = m.step(vote(other, VoteType.PREVOTE, 0, B))
    assert len(first) == 1 and isinstance(first[0], ReportEvidence)
    assert first[0].evidence.vote_a.block_id < first[0].evidence.vote_b.block_id
    assert m.step(vote(other, VoteType.PREVOTE, 0, B)) == []


def test_a_quorum_for_an_unknown_block_fetches_it_then_decides() -> None:
    m, me = observer()
    actions = votes(m, others(me), VoteType.PRECOMMIT, 3, A)
    assert FetchBody(A) in actions
    decided = m.step(BodyIn(A, True))
    assert len(decided) == 1 and isinstance(decided[0], Decide) and decided[0].round == 3


def test_messages_of_other_heights_and_far_rounds_are_ignored() -> None:
    m, me = observer()
    other = others(me)[0]
    wrong_height = Vote(VoteType.PREVOTE, H + 1, 0, A, 1, ADDRESSES[other], other, bytes(64))
    assert m.step(VoteIn(wrong_height)) == []
    assert m.step(vote(other, VoteType.PREVOTE, 5_000, A)) == []
    assert 5_000 not in m.prevotes
