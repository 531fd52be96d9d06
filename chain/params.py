"""Consensus parameters (docs/protocol.md §10.2): every number the protocol leaves to the genesis.

They live in the genesis file under ``params``, by the names below (``lambda`` is
``lambda_`` here because it is a Python keyword). A chain's parameters never change
after genesis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from chain.errors import InvalidGenesis
from chain.sizes import BLOCK_TXS_LIMIT, TX_BYTES_LIMIT, VALIDATORS_LIMIT

PPM: Final = 1_000_000
"""1.0 in parts per million."""

USEED_PER_SEED = 1_000_000

_JSON_NAME = {"lambda_": "lambda"}


@dataclass(frozen=True, slots=True)
class Params:
    """The chain's parameters, with their defaults (§10.2)."""

    # §3 transactions
    min_fee: int = 1_000
    """The part of every tx's least fee that does not depend on its size (useed): what
    any tx costs the ledger (a signature check, its sender's account read and written,
    an index entry)."""
    fee_per_byte: int = 1
    """The part of a tx's least fee per byte of its encoding (useed): what its bytes cost
    the ledger (gossip to every peer, block space, storage on every node for good). A tx
    must pay ``min_fee + fee_per_byte × len(encoding)`` (§3.4).

    The default, 1 useed, is the least non-zero rate in whole useed. A transfer (129 to
    145 bytes) then pays about 1,130 useed, little more than ``min_fee`` alone, so the
    fixed cost still dominates small txs; a tx of ``max_tx_bytes`` (65,536 bytes) pays
    66,536 useed, about 59 times a transfer, so its size, which is what a large tx
    costs the ledger, dominates its fee. A higher rate would make every ordinary tx
    dearer without bounding large ones any better."""
    max_tx_bytes: int = 65_536
    unbonding_epochs: int = 2
    # §4 blocks
    max_block_bytes: int = 16 * 1024 * 1024
    max_block_txs: int = 100_000
    # §6 proof of impact
    poi_weights: tuple[int, int, int, int, int] = (300_000, 300_000, 200_000, 100_000, 100_000)
    max_penalty: int = 150_000
    validation_threshold: int = 950_000
    attestation_ttl_epochs: int = 2
    epoch_length: int = 600
    lambda_: int = 900_000
    epoch_issuance: int = 1_000 * USEED_PER_SEED
    base: int = 100_000
    cap: int = 10_000_000
    min_bond: int = 1_000 * USEED_PER_SEED
    max_validators: int = 100
    slash_fraction: int = 50_000
    jail_epochs: int = 4
    evidence_max_age: int = 100_000
    # §7 consensus
    timeout_propose_ms: int = 3_000
    timeout_propose_delta_ms: int = 500
    timeout_prevote_ms: int = 1_000
    timeout_prevote_delta_ms: int = 500
    timeout_precommit_ms: int = 1_000
    timeout_precommit_delta_ms: int = 500
    block_time_ms: int = 6_000

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            name = "params." + _JSON_NAME.get(f.name, f.name)
            if f.name == "poi_weights":
                if (
                    not isinstance(value, tuple)
                    or len(value) != 5
                    or any(type(w) is not int or not 0 <= w <= PPM for w in value)
                ):
                    raise InvalidGenesis(f"{name}: must be five integers in [0, {PPM}]")
                if sum(value) != PPM:
                    raise InvalidGenesis(f"{name}: must sum to {PPM}, not {sum(value)}")
                continue
            if type(value) is not int or value < 0 or value >= 2**63:
                raise InvalidGenesis(f"{name}: must be a non-negative 64-bit integer, got {value!r}")
        for ppm_field in (
            "max_penalty",
            "validation_threshold",
            "lambda_",
            "slash_fraction",
        ):
            if getattr(self, ppm_field) > PPM:
                name = "params." + _JSON_NAME.get(ppm_field, ppm_field)
                raise InvalidGenesis(f"{name}: a fraction in ppm, at most {PPM}")
        for positive in ("epoch_length", "max_tx_bytes", "max_block_bytes", "max_block_txs",
                         "max_validators", "block_time_ms"):
            if getattr(self, positive) == 0:
                raise InvalidGenesis(f"params.{positive}: must be positive")
        # The decoders bound these without knowing the params (chain.sizes): a chain may
        # not allow more than they accept.
        for bounded, ceiling in (("max_tx_bytes", TX_BYTES_LIMIT), ("max_block_txs", BLOCK_TXS_LIMIT),
                                 ("max_validators", VALIDATORS_LIMIT)):
            if getattr(self, bounded) > ceiling:
                raise InvalidGenesis(f"params.{bounded}: at most {ceiling}, got {getattr(self, bounded)}")

    def to_json(self) -> dict[str, Any]:
        """The ``params`` object of a genesis file."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[_JSON_NAME.get(f.name, f.name)] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Params:
        """Parse a genesis ``params`` object; every name is required, unknown names refused."""
        if not isinstance(obj, Mapping):
            raise InvalidGenesis("params: must be an object")
        kwargs: dict[str, Any] = {}
        known = set()
        for f in dataclasses.fields(cls):
            json_name = _JSON_NAME.get(f.name, f.name)
            known.add(json_name)
            if json_name not in obj:
                raise InvalidGenesis(f"params.{json_name}: missing")
            value = obj[json_name]
            if f.name == "poi_weights":
                if not isinstance(value, list):
                    raise InvalidGenesis(f"params.{json_name}: must be a list of five integers")
                value = tuple(value)
            kwargs[f.name] = value
        unknown = sorted(set(obj) - known)
        if unknown:
            raise InvalidGenesis(f"params.{unknown[0]}: unknown parameter")
        return cls(**kwargs)

    # Derived quantities used across the ledger.
    def epoch_of(self, height: int, initial_height: int = 1) -> int:
        """The epoch a block height belongs to (epoch 0 starts at the initial height)."""
        return (height - initial_height) // self.epoch_length

    def is_epoch_end(self, height: int, initial_height: int = 1) -> bool:
        """Whether ``height`` is the last block of its epoch (§6 "Epochs")."""
        return (height - initial_height + 1) % self.epoch_length == 0


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """What a chain fixes at genesis: its id, first height and parameters."""

    chain_id: str
    initial_height: int
    params: Params
