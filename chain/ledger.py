"""Typed, write-back access to the ledger state during one block.

:class:`Ledger` reads through a :class:`StateReader` (the committed state: memory or
LevelDB) and keeps what the block reads and writes as decoded records, so a hot account
is decoded once and encoded once per block however many txs touch it. :meth:`Ledger.diff`
is the block's effect: the key/value changes to commit and to feed the state root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import cbor2

from chain import statekeys as keys
from chain.codec import dumps, expect_array, expect_bytes, expect_list, expect_uint
from chain.fastcodec import encode_account, read_account
from chain.sizes import ADDRESS_LEN
from chain.types import Account, Attestation, ChainMeta, SetMember, Validator


class StateReader(Protocol):
    """Read access to a committed state."""

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every key/value whose key starts with ``prefix``, in ascending key order."""


_R = TypeVar("_R")
_ABSENT = object()
_EXPIRY_MARK = 0
"""The value of every key of the expiry index (§5.3): the key is what it says."""


def _mark_from(obj: object) -> int:
    return expect_uint(obj, "expiry mark", _EXPIRY_MARK)


def _set_from(obj: object) -> list[SetMember]:
    return [SetMember.from_cbor(m) for m in expect_list(obj, "validator_set")]


def _uint_from(obj: object) -> int:
    return expect_uint(obj, "integer")


def _pair_from(obj: object) -> tuple[int, int]:
    a, b = expect_array(obj, 2, "supply")
    return expect_uint(a, "supply.issued"), expect_uint(b, "supply.slashed")


def _to_cbor(value: Any) -> Any:
    if hasattr(value, "to_cbor"):
        return value.to_cbor()
    if isinstance(value, list):
        return [_to_cbor(v) for v in value]
    if isinstance(value, tuple):
        return [_to_cbor(v) for v in value]
    return value


class Ledger:
    """The state as seen by one block being applied; see the module docstring."""

    __slots__ = ("_base", "_cache", "_dirty")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._cache: dict[bytes, Any] = {}
        self._dirty: set[bytes] = set()

    # -- generic ----------------------------------------------------------------------
    def _load(self, key: bytes, parse: Callable[[object], _R]) -> _R | None:
        cached = self._cache.get(key, _ABSENT)
        if cached is not _ABSENT:
            return cached  # type: ignore[no-any-return]
        raw = self._base.get(key)
        value = None if raw is None else parse(cbor2.loads(raw))
        self._cache[key] = value
        return value

    def _store(self, key: bytes, value: object) -> None:
        self._cache[key] = value
        self._dirty.add(key)

    def iter_prefix(self, prefix: bytes, parse: Callable[[object], _R]) -> list[tuple[bytes, _R]]:
        """Every live record under ``prefix`` as this block sees it, in key order."""
        seen: dict[bytes, Any] = {}
        for key, raw in self._base.iter_prefix(prefix):
            seen[key] = self._cache[key] if key in self._cache else parse(cbor2.loads(raw))
        for key in self._dirty:
            if key.startswith(prefix):
                seen[key] = self._cache[key]
        return [(k, seen[k]) for k in sorted(seen) if seen[k] is not None]

    def diff(self) -> dict[bytes, bytes | None]:
        """The encoded changes this block made (None deletes)."""
        out: dict[bytes, bytes | None] = {}
        for key in self._dirty:
            value = self._cache[key]
            if value is None:
                out[key] = None
            elif type(value) is Account:
                out[key] = encode_account(value)
            else:
                out[key] = dumps(_to_cbor(value))
        return out

    # -- records ----------------------------------------------------------------------
    def meta(self) -> ChainMeta:
        meta = self._load(keys.META, ChainMeta.from_cbor)
        if meta is None:
            raise KeyError("state has no chain metadata: it was not initialised from a genesis")
        return meta

    def set_meta(self, meta: ChainMeta) -> None:
        self._store(keys.META, meta)

    def account(self, address: bytes) -> Account:
        # The hot path of every tx: _load inlined.
        key = _ACCOUNT_PREFIX + address
        cached = self._cache.get(key, _ABSENT)
        if cached is _ABSENT:
            raw = self._base.get(key)
            cached = None if raw is None else read_account(raw)
            if cached is None and raw is not None:
                cached = Account.from_cbor(cbor2.loads(raw))
            self._cache[key] = cached
        return cached or _EMPTY_ACCOUNT

    def set_account(self, address: bytes, account: Account) -> None:
        key = _ACCOUNT_PREFIX + address
        self._cache[key] = account if account.balance or account.nonce else None
        self._dirty.add(key)

    def validator(self, operator: bytes) -> Validator | None:
        return self._load(keys.validator(operator), Validator.from_cbor)

    def set_validator(self, validator: Validator) -> None:
        self._store(keys.validator(validator.operator), validator)

    def validators(self) -> list[Validator]:
        return [v for _, v in self.iter_prefix(keys.validator_prefix(), Validator.from_cbor)]

    def operator_of(self, consensus_address: bytes) -> bytes | None:
        return self._load(keys.consensus_key(consensus_address),
                          lambda o: expect_bytes(o, "operator", ADDRESS_LEN))

    def set_operator_of(self, consensus_address: bytes, operator: bytes) -> None:
        self._store(keys.consensus_key(consensus_address), operator)

    def unbondings(self, epoch: int) -> list[tuple[bytes, int]]:
        """``(operator, amount)`` paid at the end of ``epoch``, in operator order."""
        prefix = keys.unbonding_prefix(epoch)
        skip = len(prefix)
        return [(k[skip:], amount) for k, amount in self.iter_prefix(prefix, _uint_from)]

    def add_unbonding(self, epoch: int, operator: bytes, amount: int) -> None:
        """Add ``amount`` to what ``operator`` is paid at the end of ``epoch``: one key
        read and written, whatever the number of unbondings due then."""
        key = keys.unbonding(epoch, operator)
        self._store(key, (self._load(key, _uint_from) or 0) + amount)

    def clear_unbondings(self, epoch: int) -> None:
        for operator, _ in self.unbondings(epoch):
            self._store(keys.unbonding(epoch, operator), None)

    def attestation(self, attestation_id: bytes) -> Attestation | None:
        return self._load(keys.attestation(attestation_id), Attestation.from_cbor)

    def set_attestation(self, attestation_id: bytes, att: Attestation) -> None:
        self._store(keys.attestation(attestation_id), att)

    def endorsement(self, attestation_id: bytes, operator: bytes) -> int | None:
        return self._load(keys.endorsement(attestation_id, operator), _uint_from)

    def set_endorsement(self, attestation_id: bytes, operator: bytes, score: int) -> None:
        self._store(keys.endorsement(attestation_id, operator), score)

    def expiring(self, epoch: int) -> list[bytes]:
        """The ids of the attestations that expire at the end of ``epoch`` if still
        pending, in id order: the keys under the epoch's prefix of the expiry index."""
        prefix = keys.expiry_prefix(epoch)
        skip = len(prefix)
        return [k[skip:] for k, _ in self.iter_prefix(prefix, _mark_from)]

    def add_expiry(self, epoch: int, attestation_id: bytes) -> None:
        """Index ``attestation_id`` to expire at the end of ``epoch``: one key, written
        once, whatever the number of attestations expiring then."""
        self._store(keys.expiry(epoch, attestation_id), _EXPIRY_MARK)

    def remove_expiry(self, epoch: int, attestation_id: bytes) -> None:
        """Drop ``attestation_id`` from the expiry index of ``epoch``."""
        self._store(keys.expiry(epoch, attestation_id), None)

    def impact(self, address: bytes) -> int:
        return self._load(keys.impact(address), _uint_from) or 0

    def impacts(self) -> list[tuple[bytes, int]]:
        skip = len(keys.impact_prefix())
        return [(k[skip:], v) for k, v in self.iter_prefix(keys.impact_prefix(), _uint_from)]

    def set_impact(self, address: bytes, value: int) -> None:
        self._store(keys.impact(address), value or None)

    def epoch_score(self, address: bytes) -> int:
        return self._load(keys.epoch_score(address), _uint_from) or 0

    def epoch_scores(self) -> list[tuple[bytes, int]]:
        skip = len(keys.epoch_score_prefix())
        return [(k[skip:], v) for k, v in self.iter_prefix(keys.epoch_score_prefix(), _uint_from)]

    def set_epoch_score(self, address: bytes, value: int) -> None:
        self._store(keys.epoch_score(address), value or None)

    def validator_set(self, from_height: int) -> list[SetMember] | None:
        return self._load(keys.validator_set(from_height), _set_from)

    def set_validator_set(self, from_height: int, members: list[SetMember]) -> None:
        self._store(keys.validator_set(from_height), members)

    def supply(self) -> tuple[int, int]:
        """``(issued, slashed)`` so far."""
        return self._load(keys.SUPPLY, _pair_from) or (0, 0)

    def set_supply(self, issued: int, slashed: int) -> None:
        self._store(keys.SUPPLY, (issued, slashed))

    def was_slashed(self, key: bytes) -> bool:
        return self._load(key, _uint_from) is not None

    def mark_slashed(self, key: bytes, height: int) -> None:
        self._store(key, height)


_EMPTY_ACCOUNT = Account(0, 0)
_ACCOUNT_PREFIX = keys.account(b"")
