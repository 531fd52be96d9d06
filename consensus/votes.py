"""The votes of one height, round and type, tallied by voting power.

A validator's first vote counts toward "any vote" tallies. A second, different vote of
the same validator for the same height, round and type is equivocation: it becomes
evidence, and it still counts toward its own block's tally (the paper's "2f + 1
PREVOTE for id(v)" counts messages for ``v`` from distinct validators, whatever else
they sent), so a node that saw an equivocator's other vote first can still see the
quorum everyone else saw. At most two votes per validator are kept, which bounds what
an equivocator can make a node store. Quorum arithmetic is integer: "more than 2/3" is
``3 × power > 2 × total``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from chain.types import Commit, CommitFlag, CommitSig, DuplicateVoteEvidence, Vote, VoteType
from consensus.proposer import Voter


def more_than_two_thirds(power: int, total: int) -> bool:
    return 3 * power > 2 * total


def more_than_one_third(power: int, total: int) -> bool:
    return 3 * power > total


class Added(Enum):
    """What :meth:`VoteSet.add` did with a vote."""

    NEW = "new"
    DUPLICATE = "duplicate"  # the same vote again: nothing changes
    CONFLICT = "conflict"  # another vote of the same validator: evidence, not counted


@dataclass(frozen=True, slots=True)
class AddResult:
    added: Added
    evidence: DuplicateVoteEvidence | None = None


def evidence_of(first: Vote, second: Vote) -> DuplicateVoteEvidence:
    """The evidence two conflicting votes make, in canonical order (by block id)."""
    a, b = (first, second) if first.block_id < second.block_id else (second, first)
    return DuplicateVoteEvidence(a, b)


class VoteSet:
    """The votes of type ``vote_type`` at ``height`` and ``round`` from the set
    ``voters`` (index ``i`` is the validator at ``voters[i]``).

    :meth:`add` trusts that the vote's signature was checked and that it is for this
    height, round and type from the validator its index names (see :meth:`accepts`).
    """

    __slots__ = ("_by_block", "_kept", "_power", "_votes", "height", "round", "total", "vote_type",
                 "voters")

    def __init__(self, height: int, round_: int, vote_type: VoteType, voters: Sequence[Voter]) -> None:
        self.height = height
        self.round = round_
        self.vote_type = vote_type
        self.voters = voters
        self.total = sum(power for _, power in voters)
        self._votes: list[Vote | None] = [None] * len(voters)
        self._by_block: dict[bytes, dict[int, Vote]] = {}
        self._kept = [0] * len(voters)
        self._power = 0

    def accepts(self, vote: Vote) -> str | None:
        """Why ``vote`` does not belong in this set, or ``None`` if it does."""
        if (vote.height, vote.round, vote.type) != (self.height, self.round, self.vote_type):
            return (f"vote for height {vote.height} round {vote.round} type {vote.type.name} "
                    f"in the set of height {self.height} round {self.round} {self.vote_type.name}")
        if not 0 <= vote.validator_index < len(self.voters):
            return f"validator index {vote.validator_index} is outside a set of {len(self.voters)}"
        if self.voters[vote.validator_index][0] != vote.validator_address:
            return f"validator index {vote.validator_index} is not address {vote.validator_address.hex()}"
        return None

    def add(self, vote: Vote) -> AddResult:
        """Count ``vote`` (see the module docstring)."""
        index = vote.validator_index
        first = self._votes[index]
        for_block = self._by_block.setdefault(vote.block_id, {})
        if index in for_block:
            return AddResult(Added.DUPLICATE)
        if first is None:
            self._votes[index] = vote
            self._power += self.voters[index][1]
            for_block[index] = vote
            self._kept[index] = 1
            return AddResult(Added.NEW)
        if self._kept[index] < 2:
            for_block[index] = vote
            self._kept[index] += 1
        return AddResult(Added.CONFLICT, evidence_of(first, vote))

    @property
    def power(self) -> int:
        """The power of every validator that voted, whatever for."""
        return self._power

    def power_for(self, block_id: bytes) -> int:
        """The power that voted for ``block_id`` (``b""``: nil)."""
        votes = self._by_block.get(block_id)
        return 0 if votes is None else sum(self.voters[i][1] for i in votes)

    def has_quorum_any(self) -> bool:
        """More than 2/3 of the power voted (for anything)."""
        return more_than_two_thirds(self._power, self.total)

    def has_quorum_for(self, block_id: bytes) -> bool:
        """More than 2/3 of the power voted for ``block_id`` (``b""``: nil)."""
        return more_than_two_thirds(self.power_for(block_id), self.total)

    def quorum_value(self) -> bytes | None:
        """The value (a block id, or ``b""`` for nil) more than 2/3 voted for, if any."""
        for block_id in self._by_block:
            if more_than_two_thirds(self.power_for(block_id), self.total):
                return block_id
        return None

    def vote_of(self, index: int) -> Vote | None:
        return self._votes[index]

    def votes(self) -> list[Vote]:
        return [v for v in self._votes if v is not None]

    def make_commit(self, block_id: bytes) -> Commit:
        """The commit certificate of ``block_id`` from these precommits: per validator in
        set order, its precommit for the block (COMMIT), for nil (NIL), else ABSENT."""
        if self.vote_type != VoteType.PRECOMMIT or not self.has_quorum_for(block_id) or not block_id:
            raise ValueError("a commit needs more than 2/3 of precommits for one block")
        sigs = []
        for_block = self._by_block[block_id]
        for index, first in enumerate(self._votes):
            vote = for_block.get(index)
            if vote is not None:
                sigs.append(CommitSig(CommitFlag.COMMIT, vote.timestamp_ns, vote.signature))
            elif first is not None and not first.block_id:
                sigs.append(CommitSig(CommitFlag.NIL, first.timestamp_ns, first.signature))
            else:
                sigs.append(CommitSig(CommitFlag.ABSENT, 0, b""))
        return Commit(self.height, self.round, block_id, tuple(sigs))
