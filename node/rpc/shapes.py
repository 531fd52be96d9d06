"""Chain objects as CometBFT v0.38's JSON-RPC shows them (§9), so that its clients and
explorers read this chain unchanged: int64 as decimal strings, hashes and addresses as
upper-case hex, txs and signatures as base64, times as RFC 3339 with nanoseconds, keys
as ``{"type": "tendermint/PubKeyEd25519", "value": <base64>}``.

A block is one part here (BIZRA has no part sets), so ``parts`` is ``{"total": 1,
"hash": <block hash>}``. Fields CometBFT has and BIZRA lacks are present with their
neutral values (``consensus_hash``: the hash of the empty string; ``gas_*``: "0").
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from chain.crypto import address_of
from chain.errors import InvalidBlock
from chain.merkle import leaf_hash, merkle_proof
from chain.params import Params
from chain.timefmt import format_rfc3339_ns
from chain.types import (
    Block,
    Commit,
    CommitSig,
    DuplicateVoteEvidence,
    Header,
    SetMember,
    TxResult,
    Vote,
    sha256,
)

JSON = dict[str, Any]
Sets = Callable[[int], list[SetMember]]
"""The validator set of a height, in set order."""
EMPTY_HASH = sha256(b"")


def hex_upper(data: bytes) -> str:
    return data.hex().upper()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pub_key(key: bytes) -> JSON:
    return {"type": "tendermint/PubKeyEd25519", "value": b64(key)}


def consensus_params(params: Params) -> JSON:
    """CometBFT's ConsensusParams for BIZRA's: blocks of up to ``max_block_bytes`` (no gas),
    evidence as old as ``evidence_max_age`` heights (its duration: the time those heights
    take at the block time; its bytes: the block's), Ed25519 keys, no vote extensions."""
    return {"block": {"max_bytes": str(params.max_block_bytes), "max_gas": "-1"},
            "evidence": {"max_age_num_blocks": str(params.evidence_max_age),
                         "max_age_duration": str(params.evidence_max_age * params.block_time_ms * 1_000_000),
                         "max_bytes": str(params.max_block_bytes)},
            "validator": {"pub_key_types": ["ed25519"]},
            "version": {"app": "1"},
            "abci": {"vote_extensions_enable_height": "0"}}


def block_id(block_hash: bytes) -> JSON:
    if not block_hash:
        return {"hash": "", "parts": {"total": 0, "hash": ""}}
    return {"hash": hex_upper(block_hash), "parts": {"total": 1, "hash": hex_upper(block_hash)}}


def header(h: Header) -> JSON:
    return {
        "version": {"block": str(h.version), "app": "0"},
        "chain_id": h.chain_id,
        "height": str(h.height),
        "time": format_rfc3339_ns(h.time_ns),
        "last_block_id": block_id(h.last_block_id if h.height > 1 else b""),
        "last_commit_hash": hex_upper(h.last_commit_hash),
        "data_hash": hex_upper(h.data_hash),
        "validators_hash": hex_upper(h.validators_hash),
        "next_validators_hash": hex_upper(h.next_validators_hash),
        "consensus_hash": hex_upper(EMPTY_HASH),
        "app_hash": hex_upper(h.app_hash),
        "last_results_hash": hex_upper(h.last_results_hash),
        "evidence_hash": hex_upper(h.evidence_hash),
        "proposer_address": hex_upper(h.proposer_address),
    }


def commit_sig(sig: CommitSig, validator: bytes) -> JSON:
    return {
        "block_id_flag": int(sig.flag),
        "validator_address": hex_upper(validator) if sig.signature else "",
        "timestamp": format_rfc3339_ns(sig.timestamp_ns) if sig.signature else "0001-01-01T00:00:00Z",
        "signature": b64(sig.signature) if sig.signature else None,
    }


def commit(c: Commit, validators: list[bytes]) -> JSON:
    """``validators``: the consensus addresses of the commit's set, in set order."""
    return {
        "height": str(c.height),
        "round": c.round,
        "block_id": block_id(c.block_id),
        "signatures": [commit_sig(s, v) for s, v in zip(c.signatures, validators, strict=True)],
    }


def block(b: Block, sets: Sets) -> JSON:
    """``sets`` gives the validator sets of the last commit's height and of the
    evidence's heights."""
    h = b.header.height
    return {
        "header": header(b.header),
        "data": {"txs": [b64(t) for t in b.txs]},
        "evidence": {"evidence": [evidence(e, sets) for e in b.evidence]},
        "last_commit": (commit(b.last_commit, [address_of(m.pubkey) for m in sets(h - 1)])
                        if b.last_commit is not None else
                        {"height": "0", "round": 0, "block_id": block_id(b""), "signatures": []}),
    }


def evidence(e: DuplicateVoteEvidence, sets: Sets) -> JSON:
    """CometBFT's DuplicateVoteEvidence: the two votes, and the set's total power and the
    validator's at the evidence's height ("0" for a set no longer known). ``Timestamp``
    is the first vote's time (CometBFT's is the block time at that height, which BIZRA's
    evidence does not carry; a vote's time is within a round of it)."""
    try:
        members = sets(e.height)
    except InvalidBlock:
        members = []
    index = e.vote_a.validator_index
    power = members[index].power if 0 <= index < len(members) else 0
    return {"type": "tendermint/DuplicateVoteEvidence",
            "value": {"vote_a": vote(e.vote_a), "vote_b": vote(e.vote_b),
                      "TotalVotingPower": str(sum(m.power for m in members)), "ValidatorPower": str(power),
                      "Timestamp": format_rfc3339_ns(e.vote_a.timestamp_ns)}}


def vote(v: Vote) -> JSON:
    """CometBFT's Vote (``type`` 1 prevote, 2 precommit; no vote extensions)."""
    return {"type": int(v.type), "height": str(v.height), "round": v.round,
            "block_id": block_id(v.block_id), "timestamp": format_rfc3339_ns(v.timestamp_ns),
            "validator_address": hex_upper(v.validator_address), "validator_index": v.validator_index,
            "signature": b64(v.signature), "extension": None, "extension_signature": None}


def tx_result(r: TxResult) -> JSON:
    return {"code": r.code, "data": b64(r.data), "log": r.log, "info": "", "gas_wanted": "0",
            "gas_used": "0", "events": [], "codespace": "bizra" if r.code else ""}


def validator_update(pubkey: bytes, power: int) -> JSON:
    """An ABCI ValidatorUpdate as CometBFT's JSON gives one (its key a protobuf oneof)."""
    return {"pub_key": {"Sum": {"type": "tendermint.crypto.PublicKey_Ed25519",
                                "value": {"ed25519": b64(pubkey)}}},
            "power": str(power)}


def validator(member: SetMember, proposer_priority: int = 0) -> JSON:
    return {"address": hex_upper(address_of(member.pubkey)), "pub_key": pub_key(member.pubkey),
            "voting_power": str(member.power), "proposer_priority": str(proposer_priority)}


def _idle_monitor() -> JSON:
    """A flowrate.Status that never ran (Go's zero value)."""
    return {"Start": "0001-01-01T00:00:00Z", "Bytes": "0", "Samples": "0", "InstRate": "0", "CurRate": "0",
            "AvgRate": "0", "PeakRate": "0", "BytesRem": "0", "Duration": "0", "Idle": "0", "TimeRem": "0",
            "Progress": 0, "Active": False}


def connection_status(duration_ns: int) -> JSON:
    """CometBFT's ConnectionStatus of a peer's connection, open ``duration_ns``: its
    ``Duration``; send and receive monitors at Go's zero value (the node does not meter
    its connections' traffic); no ``Channels`` (libp2p streams are not MConnection
    channels)."""
    return {"Duration": str(max(0, duration_ns)), "SendMonitor": _idle_monitor(),
            "RecvMonitor": _idle_monitor(), "Channels": []}


def tx_proof(block: Block, index: int) -> JSON:
    """CometBFT's TxProof of ``block``'s tx ``index``: its path to the header's data hash
    (a merkle tree of the txs' hashes, §5)."""
    hashes = [sha256(tx) for tx in block.txs]
    proof = merkle_proof(hashes, index)
    path: JSON = {"total": str(proof.total), "index": str(proof.index),
                  "leaf_hash": b64(leaf_hash(hashes[index]))}
    if proof.aunts:  # CometBFT leaves out an empty list
        path["aunts"] = [b64(a) for a in proof.aunts]
    return {"root_hash": hex_upper(block.header.data_hash), "data": b64(block.txs[index]), "proof": path}
