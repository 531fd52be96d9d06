"""A deterministic, seeded simulator of the consensus state machine.

``n`` validators run the real :class:`consensus.machine.Machine` over a simulated
network that delays, reorders, duplicates and loses messages, splits into partitions
that heal, and crashes validators, which restart by replaying their write-ahead log
(only what was synced: everything up to their last signature). One validator may be
Byzantine: it proposes two blocks to the two halves of the network and sends each half a
different vote. Peers gossip their messages again every ``GOSSIP_MS``, and a validator
that is behind gets the commit of its height from a peer that is ahead (block sync).

Values are stand-in blocks: an id, whether it is valid, and the evidence it carries.
:meth:`Simulation.run` returns what every honest validator decided and every property
violation it saw: two different decisions at one height (agreement), a decided block
that is invalid (validity), an honest validator signing two different messages for one
height, round and step, and a failure to decide once the faults are over (liveness).
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from chain.crypto import PrivateKey, address_of
from chain.types import CommitFlag, DuplicateVoteEvidence, Proposal, Vote, VoteType, sha256
from consensus.machine import (
    BodyIn,
    CastVote,
    Decide,
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
    ValueIn,
    VoteIn,
)
from consensus.proposer import Priorities, Voter, initial, next_height

GOSSIP_MS = 500
NEXT_HEIGHT_DELAY_MS = 50
EXTRA_HEIGHTS = 10
"""Heights run past the target while the evidence of an equivocation is not committed."""
LIVENESS_BOUND_MS = 120_000
"""Once the faults are over, every honest validator decides within this (about ten
rounds of the timeouts that faults can have grown)."""
_STEP_OF = {VoteType.PREVOTE: 2, VoteType.PRECOMMIT: 3}


@dataclass(frozen=True)
class SimBlock:
    block_id: bytes
    height: int
    valid: bool
    evidence: tuple[DuplicateVoteEvidence, ...]


@dataclass
class Faults:
    """What goes wrong, and until when (ms of simulated time)."""

    max_delay_ms: int = 200
    loss: float = 0.0
    duplicate: float = 0.0
    partitions: list[tuple[int, int, frozenset[int]]] = field(default_factory=list)
    crashes: list[tuple[int, int, int]] = field(default_factory=list)  # node, at, back at
    byzantine: int | None = None
    until_ms: int = 0
    invalid_proposals: bool = False


@dataclass
class Node:
    index: int
    key: PrivateKey
    address: bytes
    byzantine: bool
    height: int = 1
    machine: Machine | None = None
    crashed: bool = False
    epoch: int = 0
    # Durable: the signer's log (h, r, step) -> block id, the synced WAL of the height,
    # the decisions and their commits.
    signed: dict[tuple[int, int, int], tuple[bytes, Any]] = field(default_factory=dict)
    wal: list[Event] = field(default_factory=list)
    wal_synced: int = 0
    decided: dict[int, Decide] = field(default_factory=dict)
    # Volatile.
    evidence_pool: list[DuplicateVoteEvidence] = field(default_factory=list)
    own_messages: list[tuple[str, Any]] = field(default_factory=list)
    made: set[bytes] = field(default_factory=set)
    replaying: bool = False
    decided_at: list[int] = field(default_factory=list)


class Simulation:
    def __init__(self, seed: int, n: int, heights: int, faults: Faults) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.heights = heights
        self.faults = faults
        keys = [PrivateKey.from_seed(sha256(b"sim" + bytes([i]))) for i in range(n)]
        self.nodes = [Node(i, k, address_of(k.public_key), i == faults.byzantine) for i, k in enumerate(keys)]
        self.voters: list[Voter] = [(node.address, 10) for node in self.nodes]
        self.priorities: dict[int, Priorities] = {1: initial(self.voters)}
        self.blocks: dict[bytes, SimBlock] = {}
        self.queue: list[tuple[int, int, int, tuple[Any, ...]]] = []
        self.seq = 0
        self.now = 0
        self.violations: list[str] = []
        self.honest_signatures: dict[tuple[int, int, int, int], bytes] = {}
        self.rounds: dict[int, int] = {}

    # --- plumbing ------------------------------------------------------------------

    def priorities_at(self, height: int) -> Priorities:
        while height not in self.priorities:
            top = max(self.priorities)
            self.priorities[top + 1] = next_height(self.priorities[top], self.voters)
        return self.priorities[height]

    def at(self, delay: int, dest: int, item: tuple[Any, ...]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (self.now + delay, self.seq, dest, item))

    def connected(self, a: int, b: int) -> bool:
        for start, end, group in self.faults.partitions:
            if start <= self.now < end and ((a in group) != (b in group)):
                return False
        return True

    def send(self, sender: int, dest: int, message: tuple[Any, ...]) -> None:
        if dest == sender:
            return
        faulty = self.now < self.faults.until_ms
        copies = 1
        if faulty and self.rng.random() < self.faults.loss:
            copies = 0
        elif faulty and self.rng.random() < self.faults.duplicate:
            copies = 2
        for _ in range(copies):
            delay = 1 + self.rng.randrange(self.faults.max_delay_ms if faulty else 20)
            self.at(delay, dest, ("msg", sender, message))

    def broadcast(self, sender: int, message: tuple[Any, ...], only: set[int] | None = None) -> None:
        for node in self.nodes:
            if only is None or node.index in only:
                self.send(sender, node.index, message)

    # --- a validator's driver ------------------------------------------------------

    def start_height(self, node: Node) -> None:
        node.machine = Machine(node.height, self.priorities_at(node.height), node.address)
        node.wal = []
        node.wal_synced = 0
        node.own_messages = []
        self.feed(node, Start())

    def feed(self, node: Node, event: Event) -> None:
        """WAL, then the machine, then the actions."""
        machine = node.machine
        if machine is None:
            return
        if not node.replaying:
            node.wal.append(event)
        for action in machine.step(event):
            if node.machine is not machine:
                break  # a vote fed back decided the height meanwhile
            self.act(node, action)

    def sync_wal(self, node: Node) -> None:
        node.wal_synced = len(node.wal)

    def sign(self, node: Node, h: int, r: int, step: int, block_id: bytes, make: Any) -> Any | None:
        """The signer: the stored message when this exact one was signed, ``None`` (a
        refusal) for anything that goes back or differs."""
        key = (h, r, step)
        if key in node.signed:
            stored_id, message = node.signed[key]
            if stored_id == block_id:
                return message
            self.violations.append(f"node {node.index} tried to sign a second message at {key}")
            return None
        if node.signed and not node.byzantine and max(node.signed) > key:
            self.violations.append(f"node {node.index} tried to sign {key} after {max(node.signed)}")
            return None
        message = make()
        node.signed[key] = (block_id, message)
        if not node.byzantine:
            seen = self.honest_signatures.setdefault((node.index, h, r, step), block_id)
            if seen != block_id:
                self.violations.append(f"node {node.index} signed two messages at {key}")
        return message

    def act(self, node: Node, action: Any) -> None:
        machine = node.machine
        assert machine is not None
        h = machine.height
        if isinstance(action, GetValue):
            if not node.replaying:
                block = self.new_block(node, h, action.round)
                self.feed(node, ValueIn(action.round, block.block_id))
        elif isinstance(action, Propose):
            self.propose(node, h, action)
        elif isinstance(action, CastVote):
            self.vote(node, h, action)
        elif isinstance(action, ScheduleTimeout):
            self.at(action.duration_ms, node.index, ("timeout", node.epoch, h, action.kind, action.round))
        elif isinstance(action, FetchBody):
            self.broadcast(node.index, ("fetch", action.block_id))
        elif isinstance(action, ReportEvidence):
            if action.evidence not in node.evidence_pool:
                node.evidence_pool.append(action.evidence)
        elif isinstance(action, Decide):
            self.decide(node, h, action)

    def new_block(self, node: Node, h: int, round_: int) -> SimBlock:
        committed = {e for d in node.decided.values() for e in self.blocks[d.block_id].evidence}
        evidence = tuple(e for e in node.evidence_pool if e not in committed)
        valid = not (node.byzantine and self.faults.invalid_proposals and self.rng.random() < 0.5)
        block_id = sha256(b"%d/%d/%d/%d" % (h, round_, node.index, self.rng.randrange(1 << 30)))
        block = SimBlock(block_id, h, valid, evidence)
        self.blocks[block_id] = block
        node.made.add(block_id)
        return block

    def propose(self, node: Node, h: int, action: Propose) -> None:
        def make() -> Proposal:
            return Proposal(h, action.round, action.pol_round, action.block_id, self.now, bytes(64))
        proposal = self.sign(node, h, action.round, 1, action.block_id, make)
        if proposal is None:
            return
        self.sync_wal(node)
        node.own_messages.append(("proposal", proposal))
        if node.byzantine:
            other = self.new_block(node, h, action.round)
            twin = Proposal(h, action.round, None, other.block_id, self.now, bytes(64))
            half = self.some_nodes()
            self.broadcast(node.index, ("proposal", proposal), half)
            self.broadcast(node.index, ("proposal", twin), set(range(len(self.nodes))) - half)
        else:
            self.broadcast(node.index, ("proposal", proposal))
        self.feed(node, ProposalIn(proposal))

    def vote(self, node: Node, h: int, action: CastVote) -> None:
        def make() -> Vote:
            unsigned = Vote(action.vote_type, h, action.round, action.block_id, self.now, node.address,
                            node.index, b"")
            return dataclasses.replace(unsigned, signature=node.key.sign(repr(unsigned).encode()))
        vote = self.sign(node, h, action.round, _STEP_OF[action.vote_type], action.block_id, make)
        if vote is None:
            return
        self.sync_wal(node)
        node.own_messages.append(("vote", vote))
        if node.byzantine:
            other_id = b"" if action.block_id else sha256(b"byzantine%d" % self.rng.randrange(1 << 30))
            twin = Vote(vote.type, h, vote.round, other_id, self.now, node.address, node.index,
                        node.key.sign(b"twin" + repr(vote).encode()))
            half = self.some_nodes()
            self.broadcast(node.index, ("vote", vote), set(range(len(self.nodes))) - half)
            self.broadcast(node.index, ("vote", twin), half)
        else:
            self.broadcast(node.index, ("vote", vote))
        self.feed(node, VoteIn(vote))

    def some_nodes(self) -> set[int]:
        """A random part of the network: whom the Byzantine validator tells one thing."""
        return {i for i in range(len(self.nodes)) if self.rng.random() < 0.5}

    def decide(self, node: Node, h: int, decision: Decide) -> None:
        node.decided[h] = decision
        node.decided_at.append(self.now)
        block = self.blocks[decision.block_id]
        if not block.valid:
            self.violations.append(f"node {node.index} decided invalid block at height {h}")
        for other in self.nodes:
            theirs = other.decided.get(h)
            if theirs is not None and not other.byzantine and theirs.block_id != decision.block_id:
                self.violations.append(f"nodes {node.index} and {other.index} decided differently at {h}")
        if not node.byzantine:
            self.rounds[h] = max(self.rounds.get(h, 0), decision.round)
        node.machine = None
        node.height = h + 1
        node.wal = []
        node.wal_synced = 0
        if node.height <= self.heights + EXTRA_HEIGHTS:
            self.at(NEXT_HEIGHT_DELAY_MS, node.index, ("next", node.epoch, node.height))

    def deliver(self, node: Node, sender: int, message: tuple[Any, ...]) -> None:
        kind = message[0]
        machine = node.machine
        if kind == "status":
            decision = node.decided.get(message[1])
            if decision is not None:
                self.send(node.index, sender, ("decided", message[1], decision))
            return
        if kind == "decided":
            self.synced(node, message[1], message[2])
            return
        if kind == "fetch":
            if message[1] in self.blocks and self.knows(node, message[1]):
                self.send(node.index, sender, ("body", message[1]))
            return
        if machine is None:
            return
        if kind == "body":
            block = self.blocks[message[1]]
            if block.height == node.height:
                self.feed(node, BodyIn(block.block_id, block.valid))
        elif kind == "proposal":
            proposal: Proposal = message[1]
            from_proposer = machine.proposer(proposal.round) == self.nodes[sender].address
            if proposal.height == node.height and from_proposer:
                self.feed(node, ProposalIn(proposal))
                self.send(node.index, sender, ("fetch", proposal.block_id))
        elif kind == "vote":
            vote: Vote = message[1]
            if vote.height == node.height:
                self.feed(node, VoteIn(vote))

    def synced(self, node: Node, height: int, decision: Decide) -> None:
        """Block sync: a peer's decision with its commit, checked as a syncing node
        checks it (more than 2/3 of the power signed the block, and the block is valid)."""
        if height != node.height or node.machine is None:
            return
        signed = sum(self.voters[i][1] for i, e in enumerate(decision.commit.signatures)
                     if e.flag == CommitFlag.COMMIT)
        if 3 * signed <= 2 * sum(p for _, p in self.voters) or not self.blocks[decision.block_id].valid:
            self.violations.append(f"node {node.index} was sent a bad commit for height {height}")
            return
        self.decide(node, height, decision)

    def knows(self, node: Node, block_id: bytes) -> bool:
        machine = node.machine
        if block_id in node.made or any(d.block_id == block_id for d in node.decided.values()):
            return True
        return machine is not None and block_id in machine.bodies

    def gossip(self, node: Node) -> None:
        self.broadcast(node.index, ("status", node.height))
        for kind, message in node.own_messages[-6:]:
            self.broadcast(node.index, (kind, message))

    def crash(self, node: Node) -> None:
        node.crashed = True
        node.epoch += 1
        node.machine = None
        node.wal = node.wal[:node.wal_synced]  # what was not synced is lost
        node.evidence_pool = []
        node.own_messages = []

    def restart(self, node: Node) -> None:
        node.crashed = False
        wal = node.wal
        node.machine = Machine(node.height, self.priorities_at(node.height), node.address)
        node.replaying = True
        for event in wal:
            self.feed(node, event)
            if node.machine is None:
                break
        node.replaying = False
        if node.machine is not None and node.machine.round < 0:
            self.feed(node, Start())

    # --- the run -------------------------------------------------------------------

    def run(self, max_ms: int = 600_000) -> Simulation:
        for node in self.nodes:
            self.start_height(node)
        for node_index, at, back in self.faults.crashes:
            self.seq += 1
            heapq.heappush(self.queue, (at, self.seq, node_index, ("crash",)))
            self.seq += 1
            heapq.heappush(self.queue, (back, self.seq, node_index, ("restart",)))
        for node in self.nodes:
            self.at(GOSSIP_MS, node.index, ("gossip",))
        honest = [n for n in self.nodes if not n.byzantine]
        while self.queue:
            when, _, dest, item = heapq.heappop(self.queue)
            self.now = when
            if when > max_ms or self.done(honest):
                break
            node = self.nodes[dest]
            kind = item[0]
            if kind == "crash":
                self.crash(node)
            elif kind == "restart":
                self.restart(node)
            elif kind == "gossip":
                if not node.crashed:
                    self.gossip(node)
                self.at(GOSSIP_MS, node.index, ("gossip",))
            elif node.crashed:
                continue
            elif kind == "timeout":
                _, epoch, h, timeout_kind, round_ = item
                if epoch == node.epoch and h == node.height:
                    self.feed(node, TimeoutIn(timeout_kind, round_))
            elif kind == "next":
                if item[1] == node.epoch and item[2] == node.height and node.machine is None:
                    self.start_height(node)
            elif kind == "msg" and self.connected(item[1], dest):
                self.deliver(node, item[1], item[2])
        for node in honest:
            if node.height <= self.heights:
                self.violations.append(
                    f"node {node.index} stopped at height {node.height} (of {self.heights}) by "
                    f"{self.now} ms, {self.now - self.faults.until_ms} ms after the faults ended")
            after = [t for t in node.decided_at if t >= self.faults.until_ms]
            if after and after[0] > self.faults.until_ms + LIVENESS_BOUND_MS:
                self.violations.append(f"node {node.index} first decided {after[0] - self.faults.until_ms} "
                                       "ms after the faults ended")
        return self

    def done(self, honest: list[Node]) -> bool:
        """Every honest validator is past the target height, and the evidence of any
        equivocation seen is committed (or the extra heights are used up)."""
        if not all(n.height > self.heights for n in honest):
            return False
        byz = self.faults.byzantine
        if byz is None or not self.equivocation_seen() or self.evidence_committed_against(byz):
            return True
        return all(n.height > self.heights + EXTRA_HEIGHTS for n in honest)

    def equivocation_seen(self) -> bool:
        """Whether an honest validator saw the Byzantine one's two votes (and can thus
        have proposed the evidence) before the run ended."""
        return any(node.evidence_pool or node.crashed for node in self.nodes if not node.byzantine)

    def evidence_committed_against(self, index: int) -> bool:
        address = self.nodes[index].address
        return any(e.vote_a.validator_address == address
                   for node in self.nodes if not node.byzantine
                   for d in node.decided.values() for e in self.blocks[d.block_id].evidence)
