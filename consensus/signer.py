"""The validator's signing key behind its double-sign guard (CometBFT's FilePV).

Before a signature leaves the process, the signer records what it signed, durably: the
height, round and step, the sign bytes and the signature go to a small JSON file
(``priv_validator_state.json``-like), written to a temp file, fsynced and renamed over
the old one, and the directory fsynced. It then refuses anything that would go back in
(height, round, step), and anything at the same (height, round, step) with other sign
bytes; the same sign bytes again get the same signature (a restart that replays its
WAL asks again). So a validator never signs two different messages for one height,
round and step, even across a crash at any instant: if the state reached the disk the
guard holds, and if it did not, the signature never left.

Steps are CometBFT's: 1 proposal, 2 prevote, 3 precommit. As in CometBFT, a request at
the last (height, round, step) that differs from what was signed only in its timestamp
gets the earlier message back, timestamp and signature: a validator killed after
signing but before its WAL had the vote asks again on restart, with a new timestamp,
and that step's vote is not lost.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chain.codec import loads_canonical
from chain.commits import proposal_sign_bytes, vote_sign_bytes
from chain.crypto import PrivateKey
from chain.errors import BizraError, DecodeError
from chain.sizes import SIGNATURE_LEN
from chain.types import Proposal, Vote, VoteType

STEP_PROPOSAL = 1
STEP_PREVOTE = 2
STEP_PRECOMMIT = 3
_STEP_NAMES = {STEP_PROPOSAL: "proposal", STEP_PREVOTE: "prevote", STEP_PRECOMMIT: "precommit"}


class DoubleSignError(BizraError):
    """A request to sign something that could make this validator sign twice."""


class SignerStateError(BizraError):
    """The signer's state file cannot be read: the node must not sign until it can."""


@dataclass(frozen=True, slots=True)
class SignerState:
    """The last thing signed: ``(height, round, step)``, its sign bytes and signature.
    Height 0 means nothing yet."""

    height: int = 0
    round: int = 0
    step: int = 0
    sign_bytes: bytes = b""
    signature: bytes = b""

    @property
    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, self.step)


def _describe(hrs: tuple[int, int, int]) -> str:
    return f"height {hrs[0]} round {hrs[1]} step {_STEP_NAMES.get(hrs[2], hrs[2])}"


def load_state(path: Path) -> SignerState:
    """The state in ``path``; a missing file is the state of a validator that never
    signed. Raises SignerStateError, naming the file, for anything unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return SignerState()
    except OSError as exc:
        raise SignerStateError(f"cannot read the signer state {path}: {exc}") from None
    try:
        doc = json.loads(raw)
        fields = {"height", "round", "step", "sign_bytes", "signature"}
        if not isinstance(doc, dict) or set(doc) != fields:
            raise ValueError(f"expected exactly the fields {sorted(fields)}")
        height, round_, step = doc["height"], doc["round"], doc["step"]
        if not all(type(n) is int and n >= 0 for n in (height, round_, step)):
            raise ValueError("height, round and step must be non-negative integers")
        if step not in (0, *_STEP_NAMES):
            raise ValueError(f"unknown step {step}")
        state = SignerState(height, round_, step, bytes.fromhex(doc["sign_bytes"]),
                            bytes.fromhex(doc["signature"]))
    except (ValueError, TypeError) as exc:
        raise SignerStateError(f"the signer state {path} is not valid ({exc}); it was left as it "
                               "is: restore it, or remove it only if this key never signed") from None
    if state.height and len(state.signature) != SIGNATURE_LEN:
        raise SignerStateError(f"the signer state {path} has a signature of {len(state.signature)} bytes")
    return state


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_state(path: Path, state: SignerState) -> None:
    """Write ``state`` to ``path`` atomically and durably (temp file, fsync, rename,
    fsync of the directory)."""
    doc = {"height": state.height, "round": state.round, "step": state.step,
           "sign_bytes": state.sign_bytes.hex(), "signature": state.signature.hex()}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(doc, indent=2).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class FileSigner:
    """Signs votes and proposals of chain ``chain_id`` with ``key``, guarded by the
    state file ``state_path`` (see the module docstring). Not thread-safe: one driver
    signs."""

    def __init__(self, key: PrivateKey, state_path: Path, chain_id: str) -> None:
        self._key = key
        self.path = state_path
        self.chain_id = chain_id
        leftover = state_path.with_name(state_path.name + ".tmp")
        if leftover.exists():
            leftover.unlink()  # a crash before the rename: that signature never left
        self.state = load_state(state_path)

    def sign_vote(self, vote: Vote) -> Vote:
        """``vote`` signed (its own signature field is ignored); see the module docstring
        for when its timestamp is the earlier one."""
        step = STEP_PREVOTE if vote.type == VoteType.PREVOTE else STEP_PRECOMMIT

        def at(ts: int) -> bytes:
            return vote_sign_bytes(self.chain_id, dataclasses.replace(vote, timestamp_ns=ts))

        ts, signature = self._sign((vote.height, vote.round, step), vote.timestamp_ns, at)
        return dataclasses.replace(vote, timestamp_ns=ts, signature=signature)

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        """``proposal`` signed (its own signature field is ignored); see the module
        docstring for when its timestamp is the earlier one."""

        def at(ts: int) -> bytes:
            return proposal_sign_bytes(self.chain_id, dataclasses.replace(proposal, timestamp_ns=ts))

        ts, signature = self._sign((proposal.height, proposal.round, STEP_PROPOSAL),
                                   proposal.timestamp_ns, at)
        return dataclasses.replace(proposal, timestamp_ns=ts, signature=signature)

    def _sign(self, hrs: tuple[int, int, int], ts: int,
              sign_bytes_at: Callable[[int], bytes]) -> tuple[int, bytes]:
        """The timestamp and signature of the message whose sign bytes with timestamp
        ``ts`` are ``sign_bytes_at(ts)``."""
        last = self.state
        message = sign_bytes_at(ts)
        if hrs == last.hrs:
            earlier = _timestamp_of(last.sign_bytes)
            if earlier is not None and sign_bytes_at(earlier) == last.sign_bytes:
                return earlier, last.signature
            raise DoubleSignError(f"{_describe(hrs)}: already signed a different message at this step")
        if hrs < last.hrs:
            raise DoubleSignError(f"{_describe(hrs)} would go back from {_describe(last.hrs)}")
        signature = self._key.sign(message)
        state = SignerState(*hrs, message, signature)
        save_state(self.path, state)
        self.state = state
        return ts, signature


def _timestamp_of(sign_bytes: bytes) -> int | None:
    """The timestamp in a vote's or proposal's sign bytes (the fifth field of the
    unsigned encoding after ``domain || 0 || chain id || 0``), or None."""
    parts = sign_bytes.split(b"\x00", 2)
    if len(parts) != 3:
        return None
    try:
        fields = loads_canonical(parts[2], "signed message")
    except DecodeError:
        return None
    if not isinstance(fields, list) or len(fields) < 5 or type(fields[4]) is not int:
        return None
    return fields[4]
