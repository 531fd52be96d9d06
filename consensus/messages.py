"""What consensus sends to its peers and writes to its WAL, and their encoding.

``[0, proposal, block]``: a proposal with its block; ``[1, vote]``: a vote;
``[2, block]``: a block body (an answer to a fetch); ``[3, kind, round]``: a timeout
(WAL only). Canonical CBOR, decoded strictly: anything else is a DecodeError.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.codec import dumps, expect_array, expect_uint, loads_canonical
from chain.errors import DecodeError
from chain.types import Block, Proposal, Vote
from consensus.machine import Timeout

_PROPOSAL, _VOTE, _BLOCK, _TIMEOUT = 0, 1, 2, 3
_TIMEOUT_KINDS = list(Timeout)


@dataclass(frozen=True, slots=True)
class ProposalMessage:
    proposal: Proposal
    block: Block


@dataclass(frozen=True, slots=True)
class VoteMessage:
    vote: Vote


@dataclass(frozen=True, slots=True)
class BlockMessage:
    block: Block


@dataclass(frozen=True, slots=True)
class TimeoutRecord:
    kind: Timeout
    round: int


PeerMessage = ProposalMessage | VoteMessage | BlockMessage
"""What validators and nodes send each other."""
Message = PeerMessage | TimeoutRecord
"""What the WAL records: peers' messages and timeouts."""


def encode_message(message: Message) -> bytes:
    if isinstance(message, ProposalMessage):
        return dumps([_PROPOSAL, message.proposal.to_cbor(), message.block.to_cbor()])
    if isinstance(message, VoteMessage):
        return dumps([_VOTE, message.vote.to_cbor()])
    if isinstance(message, BlockMessage):
        return dumps([_BLOCK, message.block.to_cbor()])
    return dumps([_TIMEOUT, _TIMEOUT_KINDS.index(message.kind), message.round])


def decode_message(data: bytes) -> Message:
    """Raises DecodeError saying what is wrong."""
    obj = loads_canonical(data, "consensus message")
    if type(obj) is not list or not obj:
        raise DecodeError("consensus message: expected a non-empty array")
    kind = obj[0]
    if type(kind) is not int:  # true == 1 and 1.0 == 1: one message, one encoding
        raise DecodeError(f"consensus message: the kind must be an integer, not {kind!r}")
    if kind == _PROPOSAL:
        _, proposal, block = expect_array(obj, 3, "proposal message")
        return ProposalMessage(Proposal.from_cbor(proposal), Block.from_cbor(block))
    if kind == _VOTE:
        _, vote = expect_array(obj, 2, "vote message")
        return VoteMessage(Vote.from_cbor(vote))
    if kind == _BLOCK:
        _, block = expect_array(obj, 2, "block message")
        return BlockMessage(Block.from_cbor(block))
    if kind == _TIMEOUT:
        _, which, round_ = expect_array(obj, 3, "timeout record")
        index = expect_uint(which, "timeout kind", len(_TIMEOUT_KINDS) - 1)
        return TimeoutRecord(_TIMEOUT_KINDS[index], expect_uint(round_, "timeout round"))
    raise DecodeError(f"consensus message: unknown kind {kind!r}")
