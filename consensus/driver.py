"""The consensus driver: the trio task that runs the state machine of each height.

It takes messages from the network and its own timers, checks their signatures, writes
them to the WAL, steps the :class:`~consensus.machine.Machine`, and carries out what it
asks: build a block (the chain's), sign with the double-sign guard, write the node's own
proposals and votes to the WAL with an fsync before they are sent, publish, start
timers, fetch bodies. A decided block is committed by the chain, then the height's end
is marked in the WAL and the next height starts.

Restarting in the middle of a height, it replays the WAL of that height first; the
node's own proposals and votes found there are reused, never signed again.

Block time (§7.8): a height starts (and so its proposer proposes) ``block_time_ms`` after
its header time (the BFT time of the previous commit), less the time the height before
took from its start to its decision here (at most half a block time); and this node's
votes carry a time no earlier than the header time plus ``block_time_ms``. So heights
begin about every ``block_time_ms`` however long each takes to decide, and header times
are never closer than that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import logging
from collections.abc import Callable
from typing import Protocol

import trio

from chain.commits import proposal_sign_bytes, vote_sign_bytes
from chain.crypto import SignedItem, address_of, verify
from chain.errors import BizraError, DecodeError
from chain.params import Params
from chain.service import TaskStatus
from chain.types import Block, Commit, DuplicateVoteEvidence, Proposal, SetMember, Vote, VoteType
from consensus.machine import (
    MAX_ROUNDS_AHEAD,
    Action,
    BodyIn,
    CastVote,
    Event,
    FetchBody,
    GetValue,
    Machine,
    ProposalIn,
    Propose,
    ReportEvidence,
    ScheduleTimeout,
    Start,
    TimeoutIn,
    Timeouts,
    ValueIn,
    VoteIn,
)
from consensus.messages import (
    BlockMessage,
    Message,
    PeerMessage,
    ProposalMessage,
    TimeoutRecord,
    VoteMessage,
    decode_message,
    encode_message,
)
from consensus.proposer import Priorities
from consensus.signer import DoubleSignError, FileSigner
from consensus.wal import Wal

log = logging.getLogger(__name__)

MAX_BUFFERED_NEXT_HEIGHT = 10_000
"""Messages of the next height kept while this one finishes."""
MAX_SCREENED = 20_000
"""Signatures checked by :meth:`Driver.screen` remembered for the height, so that the
driver does not check them again."""
SET_CACHE = 3
"""Validator sets (of the heights around this one) kept for :meth:`Driver.screen`."""


class Screened(enum.Enum):
    """What :meth:`Driver.screen` makes of a peer's message."""

    VALID = "valid"
    """Of this height or the next, within reach, signed by whom it must be: pass it on."""
    IRRELEVANT = "irrelevant"
    """Nothing to do with what this node decides now (or nothing to check it against)."""
    FORGED = "forged"
    """A signature that is not its signer's: its sender made or altered it."""
def _screen_key(message: bytes, signature: bytes) -> bytes:
    return hashlib.sha256(message + signature).digest()


KEEP_DECIDED = 4
"""Recent decided heights whose block and commit are kept to help peers catch up
(further behind, a peer needs block sync)."""
CATCH_UP_INTERVAL_S = 1.0
REGOSSIP_INTERVAL_S = 2.0
"""How often the node's own proposal and votes of its current round (and of the rounds
it is locked on or holds a valid block from) are sent again: a message lost on the way
is not lost for good, and peers learn where a node is stuck."""
BUILD_AHEAD_MIN_S = 0.25
"""A round-0 proposer builds its block at least this long before its height starts,
and ``LEAD_MARGIN`` times as long before as the chain expects the build of what is
pending to take (at most half a block time); the build may take that long at most, so
that the proposal leaves as the height starts."""
LEAD_MARGIN = 1.5
LEAD_RECHECK_S = 0.1
"""While waiting to build ahead, how often the expected build time is asked again (it
grows as txs arrive)."""
BUILD_SHARE = 0.25
"""Of the propose timeout, what a block built when its round starts may take at most:
its proposal must still reach the other validators, and be executed by them, in time."""


@dataclasses.dataclass(slots=True)
class _BuiltAhead:
    """The round-0 block of ``height``, built before the height starts: set once ``done``."""

    height: int
    done: trio.Event = dataclasses.field(default_factory=trio.Event)
    block: Block | None = None


class Chain(Protocol):
    """The chain consensus decides blocks for (the node's store and state, or a test's)."""

    @property
    def height(self) -> int:
        """The last committed height."""

    def members(self, height: int) -> list[SetMember]:
        """The validator set of ``height``."""

    def priorities(self, height: int) -> Priorities:
        """The proposer priorities of ``height`` (the next one to decide)."""

    def next_block_time(self) -> int:
        """The header time of the next block (ns): the BFT time of the last commit."""

    async def build_block(self, round_: int, proposer: bytes, evidence: list[DuplicateVoteEvidence], *,
                          within_s: float | None = None) -> Block:
        """A block for the next height, proposed by ``proposer`` at ``round_``; with
        ``within_s``, built in about that many seconds at most (it takes fewer txs than
        it could rather than be late)."""

    async def build_meanwhile(self, proposer: bytes, evidence: list[DuplicateVoteEvidence]) -> None:
        """Until cancelled, prepare the next height's round-0 block of ``proposer`` with
        ``evidence`` as txs arrive, so that its :meth:`build_block` takes less time (a
        chain may do nothing here)."""

    def build_estimate_s(self) -> float:
        """How long a round-0 build would take now (seconds), from what is pending and
        how long the last build took."""

    async def validate(self, block: Block) -> bool:
        """Whether ``block`` can be the next block (every rule of the state transition)."""

    async def commit(self, block: Block, commit: Commit, decided_in_s: float | None = None) -> None:
        """Make ``block``, decided with ``commit``, the last committed block;
        ``decided_in_s``: how long its height took from its start to the decision (None
        when it was not all seen here, as after a restart)."""


class ConsensusNetwork(Protocol):
    """How the driver reaches its peers."""

    async def publish(self, message: PeerMessage) -> None: ...

    async def request_block(self, block_id: bytes) -> None:
        """Ask peers for the body of ``block_id``; it comes back as a :class:`BlockMessage`."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Timer:
    height: int
    record: TimeoutRecord


class Driver:
    """Runs consensus for ``chain``; the validator with ``signer`` (``None``: follow
    without voting). Feed it peers' messages with :meth:`deliver`."""

    def __init__(self, chain: Chain, network: ConsensusNetwork, wal: Wal, signer: FileSigner | None,
                 address: bytes | None, chain_id: str, params: Params,
                 clock_ns: Callable[[], int]) -> None:
        self.chain = chain
        self.chain_id = chain_id
        self.network = network
        self.wal = wal
        self.signer = signer
        self.address = address if signer is not None else None
        self.params = params
        self.timeouts = Timeouts.from_params(params)
        self.clock_ns = clock_ns
        self._inbox_send, self._inbox = trio.open_memory_channel[Message | _Timer](1024)
        self._nursery: trio.Nursery | None = None
        self.machine: Machine | None = None
        self._blocks: dict[bytes, Block] = {}
        self._validated: set[bytes] = set()
        self._pubkeys: dict[bytes, bytes] = {}
        self._own_votes: dict[tuple[int, VoteType], Vote] = {}
        self._own_proposals: dict[int, ProposalMessage] = {}
        self._next_height: list[Message] = []
        self._replaying = False
        self._header_time = 0
        """This node's header time of the height being decided (its last commit's BFT time)."""
        self._built_ahead: _BuiltAhead | None = None
        self._decided_in: tuple[int, float] | None = None
        """The last height this driver saw whole, from its start to its decision: its
        number and the seconds it took."""
        self.evidence: list[DuplicateVoteEvidence] = []
        self.committed_rounds: dict[int, int] = {}
        self._decided: dict[int, tuple[Block, Commit, list[bytes]]] = {}
        self._helped: dict[int, float] = {}
        self._screened: set[bytes] = set()
        self._sets: dict[int, dict[bytes, tuple[int, bytes]]] = {}

    def known_block(self, block_id: bytes) -> Block | None:
        """A block of the current height this node holds (proposed, or fetched), for
        peers that ask for it by id; or one it decided recently."""
        block = self._blocks.get(block_id)
        if block is None:
            block = next((b for b, _, _ in self._decided.values() if b.block_id() == block_id), None)
        return block

    def screen(self, message: PeerMessage | Proposal) -> Screened | SignedItem:
        """Check a peer's message before it is forwarded or delivered, cheapest test
        first: its height within one of the one being decided, its round within
        ``MAX_ROUNDS_AHEAD`` of this node's, and its signer (a vote's a member of its
        height's validator set at its index, a proposal's its round's proposer). Only a
        proposal of the height being decided can be checked (a proposer depends on the
        rounds before), so others are IRRELEVANT; so is every message while no height is
        being decided. A body alone carries no signature: it is VALID when it is of the
        height being decided (consensus takes it only if it was proposed or asked for).

        A message that passes returns the ``(public_key, sign_bytes, signature)`` left to
        check; the caller checks it (off the event loop, in a batch) and reports a valid
        one with :meth:`vouch`, so the driver does not check it again. A signature vouched
        for already makes the message VALID at once."""
        machine = self.machine
        if machine is None:
            return Screened.IRRELEVANT
        if isinstance(message, BlockMessage):
            return Screened.VALID if message.block.header.height == machine.height else Screened.IRRELEVANT
        proposal = message.proposal if isinstance(message, ProposalMessage) else message
        if isinstance(proposal, Proposal):
            if proposal.height != machine.height or machine.too_far(proposal.round):
                return Screened.IRRELEVANT
            pubkey = self._pubkeys[machine.proposer(proposal.round)]
            return self._to_check(pubkey, proposal_sign_bytes(self.chain_id, proposal), proposal.signature)
        assert isinstance(message, VoteMessage)
        vote = message.vote
        if abs(vote.height - machine.height) > 1 or vote.round > max(machine.round, 0) + MAX_ROUNDS_AHEAD:
            return Screened.IRRELEVANT
        members = self._set_of(vote.height)
        if not members:
            return Screened.IRRELEVANT
        signer = members.get(vote.validator_address)
        if signer is None or signer[0] != vote.validator_index:
            return Screened.FORGED  # no member signs so: the sender made it up
        return self._to_check(signer[1], vote_sign_bytes(self.chain_id, vote), vote.signature)

    def vouch(self, checked: SignedItem) -> None:
        """``checked``, returned by :meth:`screen`, has a valid signature."""
        if len(self._screened) < MAX_SCREENED:
            self._screened.add(_screen_key(checked[1], checked[2]))

    def _to_check(self, pubkey: bytes, message: bytes, signature: bytes) -> Screened | SignedItem:
        if _screen_key(message, signature) in self._screened:
            return Screened.VALID
        return (pubkey, message, signature)

    def _checked(self, pubkey: bytes, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` over ``message`` is ``pubkey``'s: vouched for after
        :meth:`screen`, or checked now."""
        return _screen_key(message, signature) in self._screened or verify(pubkey, message, signature)

    def _set_of(self, height: int) -> dict[bytes, tuple[int, bytes]]:
        """The validator set of ``height`` by address: each member's index and key
        (empty when the height's set is not known here)."""
        known = self._sets.get(height)
        if known is None:
            try:
                members = self.chain.members(height)
            except BizraError:
                members = []
            known = {address_of(m.pubkey): (i, m.pubkey) for i, m in enumerate(members)}
            self._sets[height] = known
            while len(self._sets) > SET_CACHE:
                del self._sets[min(self._sets)]
        return known

    async def deliver(self, message: Message) -> None:
        """A peer's message (back-pressure: waits while the inbox is full). Once the
        driver has stopped, messages are dropped: a sender never waits on a driver
        that will not read again (the node replaces it when it syncs)."""
        with contextlib.suppress(trio.BrokenResourceError):
            await self._inbox_send.send(message)

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Decide heights, one after the other, until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._regossip)
                task_status.started()
                while True:
                    await self._run_height(self.chain.height + 1)
        finally:
            self._inbox.close()

    async def _regossip(self) -> None:
        while True:
            await trio.sleep(REGOSSIP_INTERVAL_S)
            machine = self.machine
            if machine is None or machine.decision is not None or self._replaying:
                continue
            current = machine.round
            own = self._own_proposals.get(current)
            if own is not None:
                await self.network.publish(own)
            # With its votes of the rounds it is locked on and holds a valid block from:
            # a peer that missed that round's prevotes cannot accept the block when it
            # is proposed again, and while some validators stay locked on it no other
            # block gets a polka (CometBFT's reactor sends a peer the prevotes of a
            # proposal's POL round for this reason).
            pol_rounds = {machine.locked_round, machine.valid_round}
            for (round_, _), vote in list(self._own_votes.items()):
                if round_ >= current - 1 or round_ in pol_rounds:
                    await self.network.publish(VoteMessage(vote))

    # --- one height ----------------------------------------------------------------

    async def _run_height(self, height: int) -> None:
        members = self.chain.members(height)
        self._pubkeys = {address_of(m.pubkey): m.pubkey for m in members}
        me = self.address if self.address in self._pubkeys else None
        self.machine = machine = Machine(height, self.chain.priorities(height), me, self.timeouts)
        self._blocks, self._validated = {}, set()
        self._own_votes, self._own_proposals = {}, {}
        self._screened = set()
        header_time = self.chain.next_block_time()
        self._header_time = header_time
        await self._replay(height)
        started: float | None = None
        if machine.round < 0:
            start_at = self._start_at(height, header_time)
            if self.address is not None and machine.proposer(0) == self.address \
                    and 0 not in self._own_proposals:
                self._built_ahead = ahead = _BuiltAhead(height)
                assert self._nursery is not None
                self._nursery.start_soon(self._build_ahead, ahead, start_at)
            wait = start_at - self.clock_ns()
            if wait > 0:
                await trio.sleep(wait / 1e9)
            started = trio.current_time()
            await self._feed(Start())
        buffered, self._next_height = self._next_height, []
        for message in buffered:
            await self._handle(message)
        while machine.decision is None:
            await self._handle(await self._inbox.receive())
        decision = machine.decision
        block = self._blocks[decision.block_id]
        decided_in = None if started is None else trio.current_time() - started
        await self.chain.commit(block, decision.commit, decided_in)
        self._decided_in = None if decided_in is None else (height, decided_in)
        self.wal.end_height(height)
        # Evidence another proposer committed goes, and evidence too old to commit; the
        # chain leaves out, block by block, what it cannot carry (already punished).
        oldest = height - self.params.evidence_max_age
        self.evidence = [e for e in self.evidence if e not in block.evidence and e.vote_a.height > oldest]
        self._decided[height] = (block, decision.commit, [a for a, _ in machine.voters])
        self._decided.pop(height - KEEP_DECIDED, None)
        self._helped.pop(height - KEEP_DECIDED, None)
        self.committed_rounds[height] = decision.round
        log.info("committed", extra={"height": height, "round": decision.round, "txs": len(block.txs),
                                     "block_id": decision.block_id.hex()})

    def _start_at(self, height: int, header_time: int) -> int:
        """When ``height``, whose header time is ``header_time``, starts (ns):
        ``block_time_ms`` after it, less how long the height before took to decide here
        (at most half a block time). Its commit's time, the next header time, then falls
        about ``block_time_ms`` after this one; votes are never timed earlier than that."""
        block_time = self.params.block_time_ms * 1_000_000
        decided = self._decided_in
        took = 0 if decided is None or decided[0] != height - 1 else int(decided[1] * 1e9)
        return header_time + block_time - min(took, block_time // 2)

    async def _replay(self, height: int) -> None:
        records = self.wal.messages_of(height) or []
        messages = []
        for raw in records:
            try:
                messages.append(decode_message(raw))
            except DecodeError as exc:
                log.error("unreadable WAL record skipped", extra={"height": height, "error": str(exc)})
        for m in messages:
            if isinstance(m, VoteMessage) and m.vote.validator_address == self.address:
                self._own_votes[(m.vote.round, m.vote.type)] = m.vote
            elif isinstance(m, ProposalMessage) and self.address is not None and (
                    self._is_own_proposal(m.proposal)):
                self._own_proposals[m.proposal.round] = m
        if not messages:
            return
        self._replaying = True
        try:
            assert self.machine is not None
            await self._feed(Start())
            for m in messages:
                await self._handle(m, from_wal=True)
        finally:
            self._replaying = False
        log.info("replayed the WAL", extra={"height": height, "records": len(messages)})

    def _is_own_proposal(self, proposal: Proposal) -> bool:
        assert self.machine is not None
        return self.machine.proposer(proposal.round) == self.address

    # --- inputs --------------------------------------------------------------------

    async def _handle(self, message: Message | _Timer, *, from_wal: bool = False) -> None:
        machine = self.machine
        assert machine is not None
        if isinstance(message, _Timer):
            if message.height == machine.height:
                self.wal.write(encode_message(message.record))
                await self._feed(TimeoutIn(message.record.kind, message.record.round))
            return
        if isinstance(message, TimeoutRecord):
            if from_wal:
                await self._feed(TimeoutIn(message.kind, message.round))
            return
        height = (message.proposal.height if isinstance(message, ProposalMessage)
                  else message.vote.height if isinstance(message, VoteMessage)
                  else message.block.header.height)
        if height == machine.height + 1:
            # Bodies are not kept: the next height's proposals bring theirs, or fetch them.
            if len(self._next_height) < MAX_BUFFERED_NEXT_HEIGHT and not isinstance(message, BlockMessage):
                self._next_height.append(message)
            return
        if height < machine.height:
            await self._help_catch_up(height)
            return
        if height != machine.height:
            return
        problem = self._check(message)
        if problem is not None:
            log.warning("consensus message refused", extra={"height": height, "problem": problem})
            return
        if not from_wal:
            self.wal.write(encode_message(message))
        if isinstance(message, ProposalMessage):
            self._blocks.setdefault(message.proposal.block_id, message.block)
            await self._feed(ProposalIn(message.proposal))
            await self._validate(message.block)
        elif isinstance(message, VoteMessage):
            await self._feed(VoteIn(message.vote))
        else:
            self._blocks.setdefault(message.block.block_id(), message.block)
            await self._validate(message.block)

    def _check(self, message: PeerMessage) -> str | None:
        """Why a message of this height is refused, or None."""
        machine = self.machine
        assert machine is not None
        if isinstance(message, ProposalMessage):
            p = message.proposal
            if machine.too_far(p.round):
                return f"proposal of round {p.round}, more than {MAX_ROUNDS_AHEAD} rounds ahead"
            if message.block.block_id() != p.block_id:
                return "the proposal's block is not the one it names"
            proposer = machine.proposer(p.round)
            if not self._checked(self._pubkeys[proposer], proposal_sign_bytes(self.chain_id, p), p.signature):
                return f"proposal of round {p.round} not signed by its proposer"
            return None
        if isinstance(message, VoteMessage):
            v = message.vote
            if machine.too_far(v.round):
                return f"vote of round {v.round}, more than {MAX_ROUNDS_AHEAD} rounds ahead"
            pubkey = self._pubkeys.get(v.validator_address)
            if pubkey is None:
                return "vote from outside the validator set"
            index = machine.index_of(v.validator_address)
            if index != v.validator_index:
                return "vote with a wrong validator index"
            if not self._checked(pubkey, vote_sign_bytes(self.chain_id, v), v.signature):
                return "vote with an invalid signature"
            return None
        if not machine.wants(message.block.block_id()):
            return "a block nobody proposed or asked for"
        return None

    async def _help_catch_up(self, height: int) -> None:
        """A peer still at ``height`` (it sent a message of it): publish the precommits
        that decided it and the block, at most once per ``CATCH_UP_INTERVAL_S`` (CometBFT's
        consensus reactor does this for peers one height behind)."""
        decided = self._decided.get(height)
        now = trio.current_time()
        if decided is None or now - self._helped.get(height, -CATCH_UP_INTERVAL_S) < CATCH_UP_INTERVAL_S:
            return
        self._helped[height] = now
        block, commit, members = decided
        for index, entry in enumerate(commit.signatures):
            if entry.signature:
                await self.network.publish(VoteMessage(commit.vote_for(index, members[index])))
        await self.network.publish(BlockMessage(block))  # after the votes that make it wanted

    async def _validate(self, block: Block) -> None:
        block_id = block.block_id()
        if block_id in self._validated:
            return
        self._validated.add(block_id)
        valid = await self.chain.validate(block)
        await self._feed(BodyIn(block_id, valid))

    # --- the machine and its actions -----------------------------------------------

    async def _feed(self, event: Event) -> None:
        machine = self.machine
        assert machine is not None
        round_ = machine.round
        for action in machine.step(event):
            await self._act(action)
        if machine.round > max(round_, 0) and not self._replaying:
            log.info("round started", extra={"height": machine.height, "round": machine.round,
                                             "after": type(event).__name__})

    async def _act(self, action: Action) -> None:
        machine = self.machine
        assert machine is not None and self._nursery is not None
        if isinstance(action, GetValue):
            own = self._own_proposals.get(action.round)
            if own is not None:
                self._blocks[own.proposal.block_id] = own.block
                await self._feed(ValueIn(action.round, own.proposal.block_id))
            elif not self._replaying and self.address is not None:
                ahead = self._built_ahead
                if action.round == 0 and ahead is not None and ahead.height == machine.height:
                    await ahead.done.wait()
                    assert ahead.block is not None
                    block = ahead.block
                else:
                    block = await self._build(action.round,
                                              self.params.timeout_propose_ms * BUILD_SHARE / 1000)
                self._blocks[block.block_id()] = block
                self._validated.add(block.block_id())
                await self._feed(ValueIn(action.round, block.block_id()))
        elif isinstance(action, Propose):
            await self._propose(action)
        elif isinstance(action, CastVote):
            await self._vote(action)
        elif isinstance(action, ScheduleTimeout):
            self._nursery.start_soon(self._timer, machine.height, action)
        elif isinstance(action, FetchBody):
            if not self._replaying:
                await self.network.request_block(action.block_id)
        elif isinstance(action, ReportEvidence) and action.evidence not in self.evidence:
            self.evidence.append(action.evidence)

    async def _build(self, round_: int, within_s: float) -> Block:
        assert self.address is not None
        return await self.chain.build_block(round_, self.address, list(self.evidence), within_s=within_s)

    async def _build_ahead(self, ahead: _BuiltAhead, start_at: int) -> None:
        """Build the round-0 block of ``ahead.height`` a little before the height starts
        (``start_at``, ns), so that its proposal leaves as the height starts: its state is
        the last block's, and the txs that come after go in the next one. Until then the
        chain prepares it as txs arrive (:meth:`Chain.build_meanwhile`). The build
        starts once the time left is its lead (``BUILD_AHEAD_MIN_S``), which follows
        the build time the chain expects as txs arrive: a lead from the last build's
        time alone made a long build start the next one early, with few txs, and a short
        one late, with many (block sizes swung from height to height)."""
        assert self.address is not None
        half = self.params.block_time_ms / 2000
        async with trio.open_nursery() as meanwhile:
            meanwhile.start_soon(self.chain.build_meanwhile, self.address, list(self.evidence))
            while True:
                lead = min(max(BUILD_AHEAD_MIN_S, LEAD_MARGIN * self.chain.build_estimate_s()), half)
                wait = (start_at - self.clock_ns()) / 1e9 - lead
                if wait <= 0:
                    break
                await trio.sleep(min(wait, LEAD_RECHECK_S))
            meanwhile.cancel_scope.cancel()
        ahead.block = await self._build(0, lead)
        ahead.done.set()

    def _vote_time_floor(self, block_id: bytes) -> int:
        """The earliest time of a vote for ``block_id`` (empty: nil): ``block_time_ms``
        after the header time of that block (each node's own last commit can differ from
        the one the proposer put in the block, and with it its median time), or of the
        height, by this node's last commit, for nil."""
        block = self._blocks.get(block_id)
        header_time = self._header_time if block is None else block.header.time_ns
        return header_time + self.params.block_time_ms * 1_000_000

    async def _timer(self, height: int, action: ScheduleTimeout) -> None:
        await trio.sleep(action.duration_ms / 1000)
        await self._inbox_send.send(_Timer(height, TimeoutRecord(action.kind, action.round)))

    async def _propose(self, action: Propose) -> None:
        machine = self.machine
        assert machine is not None and self.signer is not None
        message = self._own_proposals.get(action.round)
        if message is None or message.proposal.block_id != action.block_id:
            unsigned = Proposal(machine.height, action.round, action.pol_round, action.block_id,
                                max(self.clock_ns(), self._header_time + 1_000_000), b"")
            try:
                signed = self.signer.sign_proposal(unsigned)
            except DoubleSignError as exc:
                log.error("refused to sign a proposal", extra={"error": str(exc)})
                return
            message = ProposalMessage(signed, self._blocks[action.block_id])
            self._own_proposals[action.round] = message
            self.wal.write_sync(encode_message(message))
        await self.network.publish(message)
        await self._feed(ProposalIn(message.proposal))

    async def _vote(self, action: CastVote) -> None:
        machine = self.machine
        assert machine is not None and self.signer is not None and self.address is not None
        vote = self._own_votes.get((action.round, action.vote_type))
        if vote is None or vote.block_id != action.block_id:
            index = machine.index_of(self.address)
            assert index is not None
            unsigned = Vote(action.vote_type, machine.height, action.round, action.block_id,
                            max(self.clock_ns(), self._vote_time_floor(action.block_id)), self.address,
                            index, b"")
            try:
                vote = self.signer.sign_vote(unsigned)
            except DoubleSignError as exc:
                log.error("refused to sign a vote", extra={"error": str(exc)})
                return
            self._own_votes[(action.round, action.vote_type)] = vote
            self.wal.write_sync(encode_message(VoteMessage(vote)))
        await self.network.publish(VoteMessage(vote))
        await self._feed(VoteIn(vote))
