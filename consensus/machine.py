"""The Tendermint consensus state machine for one height: Algorithm 1 of Buchman, Kwon
and Milosevic, "The latest gossip on BFT consensus" (2018). Comments ``# L22`` cite the
paper's lines.

Pure: no I/O, no clock, no randomness. The driver feeds it events (:meth:`Machine.step`)
and carries out the actions it returns, in order. What the driver guarantees:

- a :class:`ProposalIn` is signed by the proposer of its round (:meth:`Machine.proposer`)
  and a :class:`VoteIn` by the validator its index names, for this height;
- a :class:`BodyIn` says whether the block with that id is valid against the state
  (the paper's ``valid(v)``), once its body is known;
- a :class:`ValueIn` is the block this validator built when asked (:class:`GetValue`);
- the proposals and votes the machine asks for are signed (with the double-sign guard)
  and fed back in, as everyone else's are.

Values are block ids; ``b""`` is nil. The machine ends at a :class:`Decide`; the next
height is a new machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum

from chain.params import Params
from chain.types import Commit, DuplicateVoteEvidence, Proposal, Vote, VoteType
from consensus.proposer import Priorities, Voter, advance
from consensus.votes import Added, VoteSet, more_than_one_third

NIL = b""
MAX_ROUNDS_AHEAD = 1_000
"""Messages for rounds further ahead than this are dropped (they could not make this
node skip ahead anyway without f+1 power behind them, and they would cost memory)."""


class Step(IntEnum):
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


class Timeout(Enum):
    PROPOSE = "propose"
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Timeouts in ms, growing by their delta each round (§7)."""

    propose_ms: int = 3_000
    propose_delta_ms: int = 500
    prevote_ms: int = 1_000
    prevote_delta_ms: int = 500
    precommit_ms: int = 1_000
    precommit_delta_ms: int = 500

    @classmethod
    def from_params(cls, params: Params) -> Timeouts:
        return cls(params.timeout_propose_ms, params.timeout_propose_delta_ms,
                   params.timeout_prevote_ms, params.timeout_prevote_delta_ms,
                   params.timeout_precommit_ms, params.timeout_precommit_delta_ms)

    def duration_ms(self, kind: Timeout, round_: int) -> int:
        if kind is Timeout.PROPOSE:
            return self.propose_ms + round_ * self.propose_delta_ms
        if kind is Timeout.PREVOTE:
            return self.prevote_ms + round_ * self.prevote_delta_ms
        return self.precommit_ms + round_ * self.precommit_delta_ms


# --- events ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Start the height at round 0 (L10)."""


@dataclass(frozen=True, slots=True)
class ProposalIn:
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class BodyIn:
    """The body of ``block_id`` is known, and is ``valid`` or not."""

    block_id: bytes
    valid: bool


@dataclass(frozen=True, slots=True)
class VoteIn:
    vote: Vote


@dataclass(frozen=True, slots=True)
class TimeoutIn:
    kind: Timeout
    round: int


@dataclass(frozen=True, slots=True)
class ValueIn:
    """The block this validator built for ``round`` (L18 ``getValue()``); valid."""

    round: int
    block_id: bytes


Event = Start | ProposalIn | BodyIn | VoteIn | TimeoutIn | ValueIn


# --- actions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetValue:
    """Build a block for ``round`` and hand it back as :class:`ValueIn`."""

    round: int


@dataclass(frozen=True, slots=True)
class Propose:
    """Sign and broadcast ``PROPOSAL(height, round, block_id, pol_round)``."""

    round: int
    block_id: bytes
    pol_round: int | None


@dataclass(frozen=True, slots=True)
class CastVote:
    """Sign and broadcast a vote (``block_id`` empty: nil)."""

    vote_type: VoteType
    round: int
    block_id: bytes


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    kind: Timeout
    round: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class FetchBody:
    """Get the body of ``block_id`` (it was proposed, or has a quorum behind it)."""

    block_id: bytes


@dataclass(frozen=True, slots=True)
class Decide:
    """``block_id`` is decided at ``round``; ``commit`` is its certificate."""

    round: int
    block_id: bytes
    commit: Commit


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    evidence: DuplicateVoteEvidence


Action = GetValue | Propose | CastVote | ScheduleTimeout | FetchBody | Decide | ReportEvidence


class Machine:
    """The consensus of one height, for validator ``me`` (``None``: an observer that
    follows and decides but never proposes or votes)."""

    def __init__(self, height: int, priorities: Priorities, me: bytes | None,
                 timeouts: Timeouts = Timeouts()) -> None:
        self.height = height
        self.voters: Sequence[Voter] = list(zip(priorities.addresses, priorities.powers, strict=True))
        self.total = priorities.total_power
        self._priorities = {0: priorities}
        self.me = me
        self.timeouts = timeouts
        # L2-L9
        self.round = -1
        self.round_step = Step.PROPOSE
        self.locked_value: bytes | None = None
        self.locked_round = -1
        self.valid_value: bytes | None = None
        self.valid_round = -1
        self.decision: Decide | None = None
        # The message log.
        self.proposals: dict[int, Proposal] = {}
        self.bodies: dict[bytes, bool] = {}
        self.prevotes: dict[int, VoteSet] = {}
        self.precommits: dict[int, VoteSet] = {}
        self._senders: dict[int, set[int]] = {}
        # "for the first time" conditions, by round.
        self._prevote_timeout: set[int] = set()
        self._precommit_timeout: set[int] = set()
        self._line36: set[int] = set()
        self._fetching: set[bytes] = set()
        self._asked_value: set[int] = set()
        self.evidence: list[DuplicateVoteEvidence] = []

    # --- queries -------------------------------------------------------------------

    def proposer(self, round_: int) -> bytes:
        """The address of the proposer of ``round_`` at this height."""
        prios = self._priorities.get(round_)
        if prios is None:
            prios = advance(self._priorities[0], round_)
            self._priorities[round_] = prios
        return prios.proposer_address()

    def wants(self, block_id: bytes) -> bool:
        """Whether the body of ``block_id`` matters here: it was proposed, or asked for."""
        return block_id in self._fetching or any(p.block_id == block_id for p in self.proposals.values())

    def index_of(self, address: bytes) -> int | None:
        for i, (a, _) in enumerate(self.voters):
            if a == address:
                return i
        return None

    # --- the transition ------------------------------------------------------------

    def step(self, event: Event) -> list[Action]:
        """Apply ``event``; return the actions to carry out, in order."""
        if self.decision is not None:
            return []
        out: list[Action] = []
        if isinstance(event, Start):
            if self.round < 0:
                self._start_round(0, out)  # L10
        elif isinstance(event, ProposalIn):
            self._on_proposal(event.proposal, out)
        elif isinstance(event, BodyIn):
            self.bodies.setdefault(event.block_id, event.valid)
        elif isinstance(event, VoteIn):
            self._on_vote(event.vote, out)
        elif isinstance(event, TimeoutIn):
            self._on_timeout(event, out)
        elif isinstance(event, ValueIn):
            self._on_value(event, out)
        if self.round >= 0:
            self._apply_rules(out)
        return out

    def too_far(self, round_: int) -> bool:
        """Whether ``round_`` is more than ``MAX_ROUNDS_AHEAD`` rounds beyond this one:
        messages of it are dropped, before any work for them."""
        return round_ > max(self.round, 0) + MAX_ROUNDS_AHEAD

    def _on_proposal(self, proposal: Proposal, out: list[Action]) -> None:
        r = proposal.round
        if proposal.height != self.height or r in self.proposals or self.too_far(r):
            return
        if proposal.pol_round is not None and proposal.pol_round >= r:
            return  # malformed: a proof of lock from this round or later
        self.proposals[r] = proposal
        if proposal.block_id not in self.bodies:
            self._fetch(proposal.block_id, out)

    def _on_vote(self, vote: Vote, out: list[Action]) -> None:
        if vote.height != self.height or self.too_far(vote.round):
            return
        sets = self.prevotes if vote.type == VoteType.PREVOTE else self.precommits
        vote_set = sets.get(vote.round)
        if vote_set is None:
            vote_set = sets[vote.round] = VoteSet(self.height, vote.round, vote.type, self.voters)
        if vote_set.accepts(vote) is not None:
            return
        result = vote_set.add(vote)
        if result.added is Added.CONFLICT and result.evidence is not None:
            if result.evidence not in self.evidence:
                self.evidence.append(result.evidence)
                out.append(ReportEvidence(result.evidence))
        elif result.added is Added.NEW:
            self._senders.setdefault(vote.round, set()).add(vote.validator_index)

    def _on_timeout(self, event: TimeoutIn, out: list[Action]) -> None:
        if event.round != self.round:
            return
        if event.kind is Timeout.PROPOSE and self.round_step == Step.PROPOSE:  # L57
            self._vote(VoteType.PREVOTE, NIL, out)  # L59
            self.round_step = Step.PREVOTE  # L60
        elif event.kind is Timeout.PREVOTE and self.round_step == Step.PREVOTE:  # L61
            self._vote(VoteType.PRECOMMIT, NIL, out)  # L63
            self.round_step = Step.PRECOMMIT  # L64
        elif event.kind is Timeout.PRECOMMIT:  # L65
            self._start_round(self.round + 1, out)  # L67

    def _on_value(self, event: ValueIn, out: list[Action]) -> None:
        self.bodies[event.block_id] = True
        if (event.round == self.round and self.round_step == Step.PROPOSE
                and self.round not in self.proposals and self._is_proposer(self.round)):
            out.append(Propose(self.round, event.block_id, None))  # L18-L19

    def _is_proposer(self, round_: int) -> bool:
        return self.me is not None and self.proposer(round_) == self.me

    def _vote(self, vote_type: VoteType, block_id: bytes, out: list[Action]) -> None:
        if self.me is not None and self.index_of(self.me) is not None:
            out.append(CastVote(vote_type, self.round, block_id))

    def _fetch(self, block_id: bytes, out: list[Action]) -> None:
        if block_id not in self._fetching:
            self._fetching.add(block_id)
            out.append(FetchBody(block_id))

    def _start_round(self, round_: int, out: list[Action]) -> None:  # L11
        self.round = round_  # L12
        self.round_step = Step.PROPOSE  # L13
        if self._is_proposer(round_):  # L14
            if self.valid_value is not None:  # L15
                # L16, L19
                pol = self.valid_round if self.valid_round >= 0 else None
                out.append(Propose(round_, self.valid_value, pol))
            elif round_ not in self._asked_value:
                self._asked_value.add(round_)
                out.append(GetValue(round_))  # L18
        # L21; CometBFT schedules it on the proposer too, so a proposer that cannot build
        # a block in time does not stall its own round.
        out.append(ScheduleTimeout(Timeout.PROPOSE, round_,
                                   self.timeouts.duration_ms(Timeout.PROPOSE, round_)))

    def _valid(self, block_id: bytes) -> bool | None:
        """``valid(v)``: ``None`` while the body is unknown."""
        return self.bodies.get(block_id)

    def _apply_rules(self, out: list[Action]) -> None:
        """Fire every rule whose condition holds, until none does."""
        while self.decision is None and self._fire_one(out):
            pass

    def _fire_one(self, out: list[Action]) -> bool:
        r = self.round
        proposal = self.proposals.get(r)
        prevotes = self.prevotes.get(r)
        precommits = self.precommits.get(r)
        if self.round_step == Step.PROPOSE and proposal is not None:
            v = proposal.block_id
            valid = self._valid(v)
            vr = proposal.pol_round
            if valid is not None and vr is None:  # L22
                ok = valid and (self.locked_round == -1 or self.locked_value == v)  # L23
                self._vote(VoteType.PREVOTE, v if ok else NIL, out)  # L24, L26
                self.round_step = Step.PREVOTE  # L27
                return True
            if valid is not None and vr is not None:  # L28
                pol = self.prevotes.get(vr)
                if pol is not None and pol.has_quorum_for(v):
                    ok = valid and (self.locked_round <= vr or self.locked_value == v)  # L29
                    self._vote(VoteType.PREVOTE, v if ok else NIL, out)  # L30, L32
                    self.round_step = Step.PREVOTE  # L33
                    return True
        if (self.round_step == Step.PREVOTE and prevotes is not None and prevotes.has_quorum_any()
                and r not in self._prevote_timeout):  # L34
            self._prevote_timeout.add(r)
            out.append(ScheduleTimeout(Timeout.PREVOTE, r, self.timeouts.duration_ms(Timeout.PREVOTE, r)))
            return True
        if prevotes is not None and r not in self._line36 and self.round_step >= Step.PREVOTE:
            v = prevotes.quorum_value() or NIL
            if v and proposal is not None and proposal.block_id == v and self._valid(v):  # L36
                self._line36.add(r)
                if self.round_step == Step.PREVOTE:  # L37
                    self.locked_value, self.locked_round = v, r  # L38, L39
                    self._vote(VoteType.PRECOMMIT, v, out)  # L40
                    self.round_step = Step.PRECOMMIT  # L41
                self.valid_value, self.valid_round = v, r  # L42, L43
                return True
            if v and v not in self.bodies:
                self._fetch(v, out)
        if self.round_step == Step.PREVOTE and prevotes is not None and prevotes.has_quorum_for(NIL):  # L44
            self._vote(VoteType.PRECOMMIT, NIL, out)  # L45
            self.round_step = Step.PRECOMMIT  # L46
            return True
        if precommits is not None and precommits.has_quorum_any() and r not in self._precommit_timeout:  # L47
            self._precommit_timeout.add(r)
            out.append(ScheduleTimeout(Timeout.PRECOMMIT, r,
                                       self.timeouts.duration_ms(Timeout.PRECOMMIT, r)))
            return True
        for round_, vote_set in self.precommits.items():  # L49
            decided = vote_set.quorum_value()
            if not decided:
                continue
            valid = self._valid(decided)
            if valid is None:
                self._fetch(decided, out)
            elif valid:  # L50
                # L51; L52-L54 (the next height) are the driver's: a new machine.
                self.decision = Decide(round_, decided, vote_set.make_commit(decided))
                out.append(self.decision)
                return True
        for round_ in sorted(self._senders, reverse=True):  # L55
            if round_ <= r:
                break
            power = sum(self.voters[i][1] for i in self._senders[round_])
            if more_than_one_third(power, self.total):
                self._start_round(round_, out)  # L56
                return True
        return False
