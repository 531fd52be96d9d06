"""The consensus objects of §3–§4 and §6 and their fixed-order CBOR arrays.

Each type is a frozen slotted dataclass with ``to_cbor()`` (its array) and
``from_cbor(obj)`` (strict: every field's type, length and range is checked and a
:class:`~chain.errors.DecodeError` names the first bad one). ``encode``/``decode`` add the
canonical-bytes check of :mod:`chain.codec`. Every variable-length field is bounded at
decode (:mod:`chain.sizes`, §3.8): a moniker, a chain id, a block's txs (their number and
each one's length) and evidence, a commit's signatures, a result's data. Rules that
depend on the state or the chain's parameters (balances, nonces, score ranges, fees) are
not the decoder's: they belong to :mod:`chain.transition`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol, Self, TypeVar

from chain.codec import (
    dumps,
    expect_array,
    expect_bytes,
    expect_list,
    expect_text,
    expect_uint,
    loads_canonical,
)
from chain.errors import DecodeError
from chain.merkle import merkle_root
from chain.sizes import (
    ADDRESS_LEN,
    BLOCK_EVIDENCE_LIMIT,
    BLOCK_TXS_LIMIT,
    HASH_LEN,
    MAX_CHAIN_ID_BYTES,
    MAX_MONIKER_BYTES,
    PUBLIC_KEY_LEN,
    SIGNATURE_LEN,
    TX_BYTES_LIMIT,
    VALIDATORS_LIMIT,
)

ZERO_HASH = bytes(HASH_LEN)
POI_DIMENSIONS = 5


def sha256(data: bytes) -> bytes:
    """SHA-256, the hash of §1."""
    return hashlib.sha256(data).digest()


# ---------------------------------------------------------------------------------------
# Transactions (§3)


class TxKind(IntEnum):
    TRANSFER = 1
    VALIDATOR_REGISTER = 2
    BOND = 3
    UNBOND = 4
    POI_ATTEST = 5
    POI_ENDORSE = 6


@dataclass(frozen=True, slots=True)
class Transfer:
    to: bytes
    amount: int

    KIND = TxKind.TRANSFER

    def to_cbor(self) -> list[Any]:
        return [self.to, self.amount]

    @classmethod
    def from_cbor(cls, obj: object) -> Transfer:
        to, amount = expect_array(obj, 2, "transfer")
        return cls(expect_bytes(to, "transfer.to", ADDRESS_LEN), expect_uint(amount, "transfer.amount"))


@dataclass(frozen=True, slots=True)
class ValidatorRegister:
    """``[consensus_pubkey, moniker]``; a moniker above ``MAX_MONIKER_BYTES`` bytes of
    UTF-8 does not decode."""

    consensus_pubkey: bytes
    moniker: str

    KIND = TxKind.VALIDATOR_REGISTER

    def to_cbor(self) -> list[Any]:
        return [self.consensus_pubkey, self.moniker]

    @classmethod
    def from_cbor(cls, obj: object) -> ValidatorRegister:
        key, moniker = expect_array(obj, 2, "validator_register")
        return cls(
            expect_bytes(key, "validator_register.consensus_pubkey", PUBLIC_KEY_LEN),
            expect_text(moniker, "validator_register.moniker", MAX_MONIKER_BYTES),
        )


@dataclass(frozen=True, slots=True)
class Bond:
    amount: int

    KIND = TxKind.BOND

    def to_cbor(self) -> list[Any]:
        return [self.amount]

    @classmethod
    def from_cbor(cls, obj: object) -> Bond:
        (amount,) = expect_array(obj, 1, "bond")
        return cls(expect_uint(amount, "bond.amount"))


@dataclass(frozen=True, slots=True)
class Unbond:
    amount: int

    KIND = TxKind.UNBOND

    def to_cbor(self) -> list[Any]:
        return [self.amount]

    @classmethod
    def from_cbor(cls, obj: object) -> Unbond:
        (amount,) = expect_array(obj, 1, "unbond")
        return cls(expect_uint(amount, "unbond.amount"))


@dataclass(frozen=True, slots=True)
class PoiAttest:
    epoch: int
    evidence_root: bytes
    dims: tuple[int, int, int, int, int]
    penalty: int

    KIND = TxKind.POI_ATTEST

    def to_cbor(self) -> list[Any]:
        return [self.epoch, self.evidence_root, list(self.dims), self.penalty]

    @classmethod
    def from_cbor(cls, obj: object) -> PoiAttest:
        epoch, root, dims, penalty = expect_array(obj, 4, "poi_attest")
        d = expect_array(dims, POI_DIMENSIONS, "poi_attest.dims")
        return cls(
            expect_uint(epoch, "poi_attest.epoch"),
            expect_bytes(root, "poi_attest.evidence_root", HASH_LEN),
            (
                expect_uint(d[0], "poi_attest.dims[0]"),
                expect_uint(d[1], "poi_attest.dims[1]"),
                expect_uint(d[2], "poi_attest.dims[2]"),
                expect_uint(d[3], "poi_attest.dims[3]"),
                expect_uint(d[4], "poi_attest.dims[4]"),
            ),
            expect_uint(penalty, "poi_attest.penalty"),
        )


@dataclass(frozen=True, slots=True)
class PoiEndorse:
    attestation_id: bytes
    validation_score: int

    KIND = TxKind.POI_ENDORSE

    def to_cbor(self) -> list[Any]:
        return [self.attestation_id, self.validation_score]

    @classmethod
    def from_cbor(cls, obj: object) -> PoiEndorse:
        att, score = expect_array(obj, 2, "poi_endorse")
        return cls(
            expect_bytes(att, "poi_endorse.attestation_id", HASH_LEN),
            expect_uint(score, "poi_endorse.validation_score"),
        )


TxBody = Transfer | ValidatorRegister | Bond | Unbond | PoiAttest | PoiEndorse

_BODY_TYPES: dict[int, Any] = {
    TxKind.TRANSFER: Transfer,
    TxKind.VALIDATOR_REGISTER: ValidatorRegister,
    TxKind.BOND: Bond,
    TxKind.UNBOND: Unbond,
    TxKind.POI_ATTEST: PoiAttest,
    TxKind.POI_ENDORSE: PoiEndorse,
}

# A canonical tx ends with its signature as a 64-byte bstr: 0x58 0x40 then the bytes.
_SIGNATURE_TAIL = 2 + SIGNATURE_LEN
TX_SENDER = slice(4, 4 + PUBLIC_KEY_LEN)
"""Where a canonical tx holds its sender's key: after the array's head (0x86), the kind
(one byte: every kind is below 24) and the key's bstr head (0x58 0x20)."""


@dataclass(frozen=True, slots=True)
class Tx:
    """``[kind, sender_pubkey, nonce, fee, body, signature]``; the kind follows the body."""

    sender: bytes
    nonce: int
    fee: int
    body: TxBody
    signature: bytes

    @property
    def kind(self) -> TxKind:
        return self.body.KIND

    def unsigned_cbor(self) -> list[Any]:
        return [int(self.kind), self.sender, self.nonce, self.fee, self.body.to_cbor()]

    def to_cbor(self) -> list[Any]:
        return [*self.unsigned_cbor(), self.signature]

    @classmethod
    def from_cbor(cls, obj: object) -> Tx:
        kind, sender, nonce, fee, body, sig = expect_array(obj, 6, "tx")
        body_type = _BODY_TYPES.get(expect_uint(kind, "tx.kind"))
        if body_type is None:
            raise DecodeError(f"tx.kind: unknown transaction kind {kind}")
        return cls(
            expect_bytes(sender, "tx.sender_pubkey", PUBLIC_KEY_LEN),
            expect_uint(nonce, "tx.nonce"),
            expect_uint(fee, "tx.fee"),
            body_type.from_cbor(body),
            expect_bytes(sig, "tx.signature", SIGNATURE_LEN),
        )


def unsigned_tx_encoding(encoded_tx: bytes) -> bytes:
    """The encoding of a canonical tx's first five fields, cut from its full encoding.

    Valid only for bytes :func:`decode` accepted as a :class:`Tx` (array header 0x86 and a
    64-byte signature last); it saves re-encoding on the verify path.
    """
    return b"\x85" + encoded_tx[1:-_SIGNATURE_TAIL]


# ---------------------------------------------------------------------------------------
# Votes, proposals, commits (§4, §7)


class VoteType(IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True)
class Vote:
    """``[type, height, round, block_id (32 bytes, or empty for nil), timestamp_ns,
    validator_address, validator_index, signature]``."""

    type: VoteType
    height: int
    round: int
    block_id: bytes
    timestamp_ns: int
    validator_address: bytes
    validator_index: int
    signature: bytes

    @property
    def is_nil(self) -> bool:
        return not self.block_id

    def unsigned_cbor(self) -> list[Any]:
        return [int(self.type), self.height, self.round, self.block_id, self.timestamp_ns,
                self.validator_address, self.validator_index]

    def to_cbor(self) -> list[Any]:
        return [*self.unsigned_cbor(), self.signature]

    @classmethod
    def from_cbor(cls, obj: object) -> Vote:
        t, height, rnd, block_id, ts, addr, index, sig = expect_array(obj, 8, "vote")
        vote_type = expect_uint(t, "vote.type")
        if vote_type not in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            raise DecodeError(f"vote.type: unknown vote type {vote_type}")
        bid = expect_bytes(block_id, "vote.block_id")
        if len(bid) not in (0, HASH_LEN):
            raise DecodeError(f"vote.block_id: expected {HASH_LEN} bytes or empty, got {len(bid)}")
        return cls(
            VoteType(vote_type),
            expect_uint(height, "vote.height"),
            expect_uint(rnd, "vote.round"),
            bid,
            expect_uint(ts, "vote.timestamp_ns"),
            expect_bytes(addr, "vote.validator_address", ADDRESS_LEN),
            expect_uint(index, "vote.validator_index"),
            expect_bytes(sig, "vote.signature", SIGNATURE_LEN),
        )


@dataclass(frozen=True, slots=True)
class Proposal:
    """``[height, round, pol_round (null when none), block_id, timestamp_ns, signature]``."""

    height: int
    round: int
    pol_round: int | None
    block_id: bytes
    timestamp_ns: int
    signature: bytes

    def unsigned_cbor(self) -> list[Any]:
        return [self.height, self.round, self.pol_round, self.block_id, self.timestamp_ns]

    def to_cbor(self) -> list[Any]:
        return [*self.unsigned_cbor(), self.signature]

    @classmethod
    def from_cbor(cls, obj: object) -> Proposal:
        height, rnd, pol, block_id, ts, sig = expect_array(obj, 6, "proposal")
        return cls(
            expect_uint(height, "proposal.height"),
            expect_uint(rnd, "proposal.round"),
            None if pol is None else expect_uint(pol, "proposal.pol_round"),
            expect_bytes(block_id, "proposal.block_id", HASH_LEN),
            expect_uint(ts, "proposal.timestamp_ns"),
            expect_bytes(sig, "proposal.signature", SIGNATURE_LEN),
        )


class CommitFlag(IntEnum):
    ABSENT = 1
    COMMIT = 2
    NIL = 3


@dataclass(frozen=True, slots=True)
class CommitSig:
    """``[flag, timestamp_ns, signature]``; an absent entry has timestamp 0 and no signature."""

    flag: CommitFlag
    timestamp_ns: int
    signature: bytes

    def to_cbor(self) -> list[Any]:
        return [int(self.flag), self.timestamp_ns, self.signature]

    @classmethod
    def from_cbor(cls, obj: object) -> CommitSig:
        flag, ts, sig = expect_array(obj, 3, "commit_sig")
        f = expect_uint(flag, "commit_sig.flag")
        if f not in (CommitFlag.ABSENT, CommitFlag.COMMIT, CommitFlag.NIL):
            raise DecodeError(f"commit_sig.flag: unknown flag {f}")
        t = expect_uint(ts, "commit_sig.timestamp_ns")
        s = expect_bytes(sig, "commit_sig.signature")
        if f == CommitFlag.ABSENT:
            if t != 0 or s:
                raise DecodeError("commit_sig: an absent entry has no timestamp or signature")
        elif len(s) != SIGNATURE_LEN:
            raise DecodeError(f"commit_sig.signature: expected {SIGNATURE_LEN} bytes, got {len(s)}")
        return cls(CommitFlag(f), t, s)


@dataclass(frozen=True, slots=True)
class Commit:
    """``[height, round, block_id, signatures[]]``, one entry per validator in set order
    (so at most ``VALIDATORS_LIMIT`` entries)."""

    height: int
    round: int
    block_id: bytes
    signatures: tuple[CommitSig, ...]

    def to_cbor(self) -> list[Any]:
        return [self.height, self.round, self.block_id, [s.to_cbor() for s in self.signatures]]

    @classmethod
    def from_cbor(cls, obj: object) -> Commit:
        height, rnd, block_id, sigs = expect_array(obj, 4, "commit")
        return cls(
            expect_uint(height, "commit.height"),
            expect_uint(rnd, "commit.round"),
            expect_bytes(block_id, "commit.block_id", HASH_LEN),
            tuple(CommitSig.from_cbor(s)
                  for s in expect_list(sigs, "commit.signatures", VALIDATORS_LIMIT)),
        )

    def vote_for(self, index: int, validator_address: bytes) -> Vote:
        """The precommit that entry ``index`` of this commit stands for (to verify it)."""
        entry = self.signatures[index]
        block_id = self.block_id if entry.flag == CommitFlag.COMMIT else b""
        return Vote(VoteType.PRECOMMIT, self.height, self.round, block_id, entry.timestamp_ns,
                    validator_address, index, entry.signature)


# ---------------------------------------------------------------------------------------
# Evidence (§6 "Misbehaviour")


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Two votes of one validator for one height, round and type, different block ids.

    Canonical order: ``vote_a.block_id < vote_b.block_id`` (a nil vote's empty id first).
    """

    vote_a: Vote
    vote_b: Vote

    def to_cbor(self) -> list[Any]:
        return [self.vote_a.to_cbor(), self.vote_b.to_cbor()]

    @classmethod
    def from_cbor(cls, obj: object) -> DuplicateVoteEvidence:
        a, b = expect_array(obj, 2, "evidence")
        vote_a, vote_b = Vote.from_cbor(a), Vote.from_cbor(b)
        if not vote_a.block_id < vote_b.block_id:
            raise DecodeError("evidence: votes must differ and be ordered by block id")
        if (vote_a.type, vote_a.height, vote_a.round, vote_a.validator_address) != (
            vote_b.type, vote_b.height, vote_b.round, vote_b.validator_address
        ):
            raise DecodeError("evidence: votes are not of one validator, height, round and type")
        return cls(vote_a, vote_b)

    @property
    def height(self) -> int:
        return self.vote_a.height


# ---------------------------------------------------------------------------------------
# Blocks (§4)


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    chain_id: str
    height: int
    time_ns: int
    last_block_id: bytes
    last_commit_hash: bytes
    data_hash: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    app_hash: bytes
    last_results_hash: bytes
    evidence_hash: bytes
    proposer_address: bytes

    def to_cbor(self) -> list[Any]:
        return [self.version, self.chain_id, self.height, self.time_ns, self.last_block_id,
                self.last_commit_hash, self.data_hash, self.validators_hash,
                self.next_validators_hash, self.app_hash, self.last_results_hash,
                self.evidence_hash, self.proposer_address]

    @classmethod
    def from_cbor(cls, obj: object) -> Header:
        f = expect_array(obj, 13, "header")
        return cls(
            expect_uint(f[0], "header.version"),
            expect_text(f[1], "header.chain_id", MAX_CHAIN_ID_BYTES),
            expect_uint(f[2], "header.height"),
            expect_uint(f[3], "header.time_ns"),
            expect_bytes(f[4], "header.last_block_id", HASH_LEN),
            expect_bytes(f[5], "header.last_commit_hash", HASH_LEN),
            expect_bytes(f[6], "header.data_hash", HASH_LEN),
            expect_bytes(f[7], "header.validators_hash", HASH_LEN),
            expect_bytes(f[8], "header.next_validators_hash", HASH_LEN),
            expect_bytes(f[9], "header.app_hash", HASH_LEN),
            expect_bytes(f[10], "header.last_results_hash", HASH_LEN),
            expect_bytes(f[11], "header.evidence_hash", HASH_LEN),
            expect_bytes(f[12], "header.proposer_address", ADDRESS_LEN),
        )

    def block_id(self) -> bytes:
        """SHA-256 of the header's encoding (§4)."""
        return sha256(dumps(self.to_cbor()))


@dataclass(frozen=True, slots=True)
class Block:
    """``[header, txs[], evidence[], last_commit]``; txs are carried as their encodings,
    and ``last_commit`` is null in the chain's first block. At most ``BLOCK_TXS_LIMIT``
    txs of at most ``TX_BYTES_LIMIT`` bytes each, and ``BLOCK_EVIDENCE_LIMIT`` evidence,
    decode (the chain's own ``max_block_txs`` and ``max_tx_bytes`` are checked when the
    block is executed)."""

    header: Header
    txs: tuple[bytes, ...]
    evidence: tuple[DuplicateVoteEvidence, ...]
    last_commit: Commit | None
    # Worked out from ``txs`` on first use: a block is checked, executed and stored by
    # different parts of the node, and each would otherwise hash every tx again.
    _tx_hashes: tuple[bytes, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _data_root: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def hashed(cls, header: Header, txs: tuple[bytes, ...], tx_hashes: tuple[bytes, ...],
               evidence: tuple[DuplicateVoteEvidence, ...], last_commit: Commit | None) -> Block:
        """The block of these fields whose txs hash to ``tx_hashes``: the caller's own
        hashes of ``txs`` (the mempool's, say), trusted as such and not computed again."""
        if len(tx_hashes) != len(txs):
            raise ValueError(f"{len(tx_hashes)} tx hashes for {len(txs)} txs")
        block = cls(header, txs, evidence, last_commit)
        object.__setattr__(block, "_tx_hashes", tx_hashes)
        return block

    def tx_hashes(self) -> tuple[bytes, ...]:
        """The hashes of :attr:`txs`, in order (:func:`tx_hash` of each)."""
        hashes = self._tx_hashes
        if hashes is None:
            hashes = tuple([sha256(t) for t in self.txs])
            object.__setattr__(self, "_tx_hashes", hashes)
        return hashes

    def data_root(self) -> bytes:
        """The merkle root of :meth:`tx_hashes`: what ``header.data_hash`` must be."""
        root = self._data_root
        if root is None:
            root = merkle_root(self.tx_hashes())
            object.__setattr__(self, "_data_root", root)
        return root

    def to_cbor(self) -> list[Any]:
        return [self.header.to_cbor(), list(self.txs), [e.to_cbor() for e in self.evidence],
                None if self.last_commit is None else self.last_commit.to_cbor()]

    @classmethod
    def from_cbor(cls, obj: object) -> Block:
        header, txs, evidence, last_commit = expect_array(obj, 4, "block")
        return cls(
            Header.from_cbor(header),
            tuple(expect_bytes(t, f"block.txs[{i}]", max_bytes=TX_BYTES_LIMIT)
                  for i, t in enumerate(expect_list(txs, "block.txs", BLOCK_TXS_LIMIT))),
            tuple(DuplicateVoteEvidence.from_cbor(e)
                  for e in expect_list(evidence, "block.evidence", BLOCK_EVIDENCE_LIMIT)),
            None if last_commit is None else Commit.from_cbor(last_commit),
        )

    def block_id(self) -> bytes:
        return self.header.block_id()


# ---------------------------------------------------------------------------------------
# State records (§5.3)


@dataclass(frozen=True, slots=True)
class Account:
    """``[balance, nonce]`` of an address, in useed."""

    balance: int = 0
    nonce: int = 0

    def to_cbor(self) -> list[Any]:
        return [self.balance, self.nonce]

    @classmethod
    def from_cbor(cls, obj: object) -> Account:
        balance, nonce = expect_array(obj, 2, "account")
        return cls(expect_uint(balance, "account.balance"), expect_uint(nonce, "account.nonce"))


@dataclass(frozen=True, slots=True)
class Validator:
    """A registered validator, keyed by its operator's address.

    ``jailed_until_epoch`` is 0 when free; a jail is lifted at the end of that epoch.
    Its voting power is not kept here: it is the validator set's (see ``SetMember``).
    """

    operator: bytes
    consensus_pubkey: bytes
    moniker: str
    bond: int
    reputation: int
    jailed_until_epoch: int

    def to_cbor(self) -> list[Any]:
        return [self.operator, self.consensus_pubkey, self.moniker, self.bond, self.reputation,
                self.jailed_until_epoch]

    @classmethod
    def from_cbor(cls, obj: object) -> Validator:
        op, key, moniker, bond, rep, jail = expect_array(obj, 6, "validator")
        return cls(
            expect_bytes(op, "validator.operator", ADDRESS_LEN),
            expect_bytes(key, "validator.consensus_pubkey", PUBLIC_KEY_LEN),
            expect_text(moniker, "validator.moniker", MAX_MONIKER_BYTES),
            expect_uint(bond, "validator.bond"),
            expect_uint(rep, "validator.reputation"),
            expect_uint(jail, "validator.jailed_until_epoch"),
        )


@dataclass(frozen=True, slots=True)
class SetMember:
    """One member of a validator set: ``[pubkey, voting_power]`` (what validators_hash covers)."""

    pubkey: bytes
    power: int

    def to_cbor(self) -> list[Any]:
        return [self.pubkey, self.power]

    @classmethod
    def from_cbor(cls, obj: object) -> SetMember:
        key, power = expect_array(obj, 2, "set_member")
        return cls(expect_bytes(key, "set_member.pubkey", PUBLIC_KEY_LEN),
                   expect_uint(power, "set_member.power"))


@dataclass(frozen=True, slots=True)
class TxResult:
    """A tx's outcome in a block: ``[code, data]`` (code 0 is success; ``data`` is empty
    or an attestation id). ``log`` is the human-readable reason shown by RPC; it is not
    part of ``last_results_hash``."""

    code: int
    data: bytes = b""
    log: str = ""

    def to_cbor(self) -> list[Any]:
        return [self.code, self.data]

    @classmethod
    def from_cbor(cls, obj: object) -> TxResult:
        code, data = expect_array(obj, 2, "tx_result")
        result_code = expect_uint(code, "tx_result.code")
        result_data = expect_bytes(data, "tx_result.data")
        if len(result_data) not in (0, HASH_LEN):
            raise DecodeError(f"tx_result.data: expected {HASH_LEN} bytes or empty, got {len(result_data)}")
        return cls(result_code, result_data)


# ---------------------------------------------------------------------------------------
# Bytes in, bytes out.


class _Codable(Protocol):
    def to_cbor(self) -> list[Any]: ...

    @classmethod
    def from_cbor(cls, obj: object) -> Self: ...


_C = TypeVar("_C", bound=_Codable)


def encode(obj: _Codable) -> bytes:
    """The canonical encoding of a consensus object."""
    return dumps(obj.to_cbor())


def decode(cls: type[_C], data: bytes) -> _C:
    """Decode ``data`` as ``cls``, strictly (§2); raises DecodeError naming what is wrong."""
    return cls.from_cbor(loads_canonical(data, cls.__name__.lower()))


def tx_hash(encoded_tx: bytes) -> bytes:
    """Tx hash = SHA-256 of the full encoding (§3)."""
    return sha256(encoded_tx)



@dataclass(frozen=True, slots=True)
class Attestation:
    """An impact attestation in the state: ``[contributor, epoch, score, status,
    endorsing_power, weighted_scores]`` (status as in :mod:`chain.poi`)."""

    contributor: bytes
    epoch: int
    score: int
    status: int
    endorsing_power: int
    weighted_scores: int

    def to_cbor(self) -> list[Any]:
        return [self.contributor, self.epoch, self.score, self.status, self.endorsing_power,
                self.weighted_scores]

    @classmethod
    def from_cbor(cls, obj: object) -> Attestation:
        who, epoch, score, status, power, weighted = expect_array(obj, 6, "attestation")
        return cls(
            expect_bytes(who, "attestation.contributor", ADDRESS_LEN),
            expect_uint(epoch, "attestation.epoch"),
            expect_uint(score, "attestation.score"),
            expect_uint(status, "attestation.status", 3),
            expect_uint(power, "attestation.endorsing_power"),
            expect_uint(weighted, "attestation.weighted_scores"),
        )


@dataclass(frozen=True, slots=True)
class ChainMeta:
    """``[height, time_ns, block_id, results_hash]`` of the last applied block (at genesis:
    initial_height − 1, the genesis time, zeros, and the empty results root)."""

    height: int
    time_ns: int
    block_id: bytes
    results_hash: bytes

    def to_cbor(self) -> list[Any]:
        return [self.height, self.time_ns, self.block_id, self.results_hash]

    @classmethod
    def from_cbor(cls, obj: object) -> ChainMeta:
        h, t, bid, rh = expect_array(obj, 4, "meta")
        return cls(expect_uint(h, "meta.height"), expect_uint(t, "meta.time_ns"),
                   expect_bytes(bid, "meta.block_id", HASH_LEN),
                   expect_bytes(rh, "meta.results_hash", HASH_LEN))
