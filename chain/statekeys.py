"""Every key of the ledger state, built in one place.

A key is one namespace byte followed by fixed-width parts (heights and epochs as 8-byte
big-endian, so keys sort as numbers). The state root (§5) commits to all of them. Values
are the canonical CBOR arrays of :mod:`chain.types` or the small records below.
"""

from __future__ import annotations

META = b"\x00"
"""``[height, time_ns, block_id, results_hash]`` of the last applied block."""
SUPPLY = b"\x0f"
"""``[issued, slashed]``: useed minted by epoch rewards and destroyed by slashing so far."""

ACCOUNT = 0x01
VALIDATOR = 0x02
CONSENSUS_KEY = 0x03
UNBONDING = 0x04
ATTESTATION = 0x05
ENDORSEMENT = 0x06
EXPIRY = 0x07
IMPACT = 0x08
EPOCH_SCORE = 0x09
VALIDATOR_SET = 0x0A
SLASHED = 0x0B


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def account(address: bytes) -> bytes:
    """An address's ``Account``."""
    return bytes((ACCOUNT,)) + address


def validator(operator: bytes) -> bytes:
    """A registered ``Validator``, by operator address."""
    return bytes((VALIDATOR,)) + operator


def validator_prefix() -> bytes:
    return bytes((VALIDATOR,))


def consensus_key(consensus_address: bytes) -> bytes:
    """Consensus-key address → operator address (one key per validator, ever)."""
    return bytes((CONSENSUS_KEY,)) + consensus_address


def unbonding_prefix(epoch: int) -> bytes:
    """The prefix of the unbondings paid out at the end of ``epoch``: one key per
    operator, iterated there."""
    return bytes((UNBONDING,)) + _u64(epoch)


def unbonding(epoch: int, operator: bytes) -> bytes:
    """The amount ``operator`` is paid at the end of ``epoch``: the sum of its unbonds
    that fall due then (one key, updated by each)."""
    return unbonding_prefix(epoch) + operator


def attestation(attestation_id: bytes) -> bytes:
    """An ``Attestation`` record by id."""
    return bytes((ATTESTATION,)) + attestation_id


def endorsement(attestation_id: bytes, operator: bytes) -> bytes:
    """A validator's validation score for an attestation."""
    return bytes((ENDORSEMENT,)) + attestation_id + operator


def expiry_prefix(epoch: int) -> bytes:
    """The prefix of the expiry index's keys of ``epoch``: one per attestation that
    expires at the end of ``epoch`` if still pending, iterated there."""
    return bytes((EXPIRY,)) + _u64(epoch)


def expiry(epoch: int, attestation_id: bytes) -> bytes:
    """The expiry index's key of one attestation, written once when it is made and
    deleted at the end of ``epoch``, when it expires if still pending. The value is a
    mark (the CBOR of 0): the key is what it says."""
    return expiry_prefix(epoch) + attestation_id


def impact(address: bytes) -> bytes:
    """An address's accumulated impact ``I`` (ppm)."""
    return bytes((IMPACT,)) + address


def impact_prefix() -> bytes:
    return bytes((IMPACT,))


def epoch_score(address: bytes) -> bytes:
    """Σ finalized scores of an address in the current epoch (cleared at epoch end)."""
    return bytes((EPOCH_SCORE,)) + address


def epoch_score_prefix() -> bytes:
    return bytes((EPOCH_SCORE,))


def validator_set(from_height: int) -> bytes:
    """``[[pubkey, power], …]``: the validator set in effect from ``from_height`` on."""
    return bytes((VALIDATOR_SET,)) + _u64(from_height)


def slashed(consensus_address: bytes, height: int, round_: int, vote_type: int) -> bytes:
    """Marks a double-sign already punished, so the same offence is not slashed twice."""
    return (bytes((SLASHED,)) + consensus_address + _u64(height) + _u64(round_)
            + bytes((vote_type,)))
