"""Every variable-length field is bounded at decode (§3.8, ``chain.sizes``): a moniker,
a chain id, a block's txs (their number and each one's length) and its evidence, a
commit's signatures, a result's data; and a chain's parameters cannot allow more than
the decoders accept."""

from __future__ import annotations

from typing import Any

import pytest

from chain import transition
from chain.codec import dumps
from chain.crypto import address_of
from chain.errors import DecodeError, InvalidBlock, InvalidGenesis, InvalidTx
from chain.ledger import Ledger
from chain.params import Params
from chain.sizes import (
    BLOCK_EVIDENCE_LIMIT,
    BLOCK_TXS_LIMIT,
    MAX_CHAIN_ID_BYTES,
    MAX_MONIKER_BYTES,
    TX_BYTES_LIMIT,
    VALIDATORS_LIMIT,
)
from chain.transition import Code, apply_block, decode_tx, includable_evidence
from chain.types import (
    Block,
    Commit,
    Header,
    Tx,
    TxResult,
    ValidatorRegister,
    decode,
    encode,
)

from chainkit import LocalChain, key

MONIKERS_AT_THE_BOUND = ["m" * 64, "é" * 32, "☃" * 21 + "a", "𝄞" * 16]
MONIKERS_ABOVE = ["m" * 65, "é" * 32 + "a", "☃" * 22, "𝄞" * 16 + "a", "x" * 10_000]


def register(chain: LocalChain, moniker: str) -> bytes:
    return chain.tx(chain.users[0], ValidatorRegister(key(4242).public_key, moniker), nonce=0)


@pytest.mark.parametrize("moniker", MONIKERS_AT_THE_BOUND)
def test_a_moniker_of_64_bytes_decodes_and_registers(moniker: str) -> None:
    assert len(moniker.encode()) == MAX_MONIKER_BYTES
    chain = LocalChain()
    raw = register(chain, moniker)
    assert decode(Tx, raw).body == ValidatorRegister(key(4242).public_key, moniker)
    assert [r.code for r in chain.run([raw]).results] == [Code.OK]
    assert Ledger(chain.state).validator(address_of(chain.users[0].public_key)).moniker == moniker  # type: ignore[union-attr]


@pytest.mark.parametrize("moniker", MONIKERS_ABOVE)
def test_a_moniker_above_64_bytes_does_not_decode(moniker: str) -> None:
    chain = LocalChain()
    raw = register(chain, moniker)
    size = len(moniker.encode())
    message = f"validator_register.moniker: {size} bytes of UTF-8, longer than 64"
    with pytest.raises(DecodeError, match=message):
        decode(Tx, raw)
    with pytest.raises(DecodeError, match=message):
        ValidatorRegister.from_cbor([key(4242).public_key, moniker])
    with pytest.raises(InvalidTx, match=message):
        decode_tx(raw, chain.config.params)
    # Not a result code: a block carrying it is invalid.
    with pytest.raises(InvalidBlock, match=message):
        apply_block(chain.state, chain.state.app_hash, chain.next_block([raw]), chain.config)


def _block(chain: LocalChain) -> list[Any]:
    chain.run()
    return chain.next_block([chain.tx(chain.users[0], ValidatorRegister(bytes(32), "v"))]).to_cbor()


def test_a_block_holds_at_most_the_limits_txs_of_at_most_the_limits_length() -> None:
    chain = LocalChain()
    header, txs, evidence, last_commit = _block(chain)
    Block.from_cbor([header, [b""] * BLOCK_TXS_LIMIT, evidence, last_commit])
    with pytest.raises(DecodeError, match=rf"block\.txs: {BLOCK_TXS_LIMIT + 1} items, more than"):
        Block.from_cbor([header, [b""] * (BLOCK_TXS_LIMIT + 1), evidence, last_commit])
    longest = bytes(TX_BYTES_LIMIT)
    assert decode(Block, _encoded_block(header, [*txs, longest], evidence, last_commit)).txs[1] == longest
    with pytest.raises(DecodeError, match=rf"block\.txs\[1\]: {TX_BYTES_LIMIT + 1} bytes, more than"):
        decode(Block, _encoded_block(header, [*txs, longest + b"x"], evidence, last_commit))


def _encoded_block(header: Any, txs: list[bytes], evidence: list[Any], last_commit: Any) -> bytes:
    return dumps([header, txs, evidence, last_commit])


def test_a_block_holds_at_most_the_limits_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = LocalChain()
    header, txs, _, last_commit = _block(chain)
    ev = chain.double_sign(1, 1, 0)
    assert len(encode(ev)) <= 319
    Block.from_cbor([header, txs, [ev.to_cbor()] * BLOCK_EVIDENCE_LIMIT, last_commit])
    too_many = [ev.to_cbor()] * (BLOCK_EVIDENCE_LIMIT + 1)
    with pytest.raises(DecodeError, match=f"block.evidence: {BLOCK_EVIDENCE_LIMIT + 1} items, more than"):
        decode(Block, _encoded_block(header, txs, too_many, last_commit))
    # A block made in this process, never decoded, is held to the same bound...
    block = chain.next_block(evidence=[ev] * (BLOCK_EVIDENCE_LIMIT + 1))
    with pytest.raises(InvalidBlock, match=f"more than {BLOCK_EVIDENCE_LIMIT} evidence"):
        apply_block(chain.state, chain.state.app_hash, block, chain.config)
    # ...and a proposer takes no more than it.
    monkeypatch.setattr(transition, "BLOCK_EVIDENCE_LIMIT", 2)
    candidates = [chain.double_sign(1, 1, r) for r in range(3)]
    assert includable_evidence(chain.state, chain.config, candidates) == candidates[:2]


def test_a_commit_holds_at_most_one_signature_per_member_of_the_largest_set() -> None:
    chain = LocalChain()
    chain.run()
    chain.run()
    assert chain.last_commit is not None
    height, round_, block_id, sigs = chain.last_commit.to_cbor()
    Commit.from_cbor([height, round_, block_id, [sigs[0]] * VALIDATORS_LIMIT])
    with pytest.raises(DecodeError, match=f"commit.signatures: {VALIDATORS_LIMIT + 1} items, more than"):
        Commit.from_cbor([height, round_, block_id, [sigs[0]] * (VALIDATORS_LIMIT + 1)])


def test_a_header_names_a_chain_id_of_at_most_50_bytes() -> None:
    chain = LocalChain()
    fields = chain.next_block().header.to_cbor()
    fields[1] = "c" * MAX_CHAIN_ID_BYTES
    assert Header.from_cbor(fields).chain_id == fields[1]
    fields[1] = "c" * (MAX_CHAIN_ID_BYTES + 1)
    with pytest.raises(DecodeError, match=r"header\.chain_id: 51 bytes of UTF-8, longer than 50"):
        Header.from_cbor(fields)


def test_a_result_holds_an_attestation_id_or_nothing() -> None:
    for data in (b"", bytes(32)):
        assert TxResult.from_cbor([0, data]) == TxResult(0, data)
    for data in (b"\x01", bytes(33)):
        with pytest.raises(DecodeError, match=f"tx_result.data: expected 32 bytes or empty, got {len(data)}"):
            TxResult.from_cbor([0, data])


@pytest.mark.parametrize(("name", "ceiling"), [
    ("max_tx_bytes", TX_BYTES_LIMIT),
    ("max_block_txs", BLOCK_TXS_LIMIT),
    ("max_validators", VALIDATORS_LIMIT),
])
def test_a_chain_cannot_allow_more_than_the_decoders_accept(name: str, ceiling: int) -> None:
    assert getattr(Params.from_json({**Params().to_json(), name: ceiling}), name) == ceiling
    with pytest.raises(InvalidGenesis, match=rf"params\.{name}: at most {ceiling}, got {ceiling + 1}"):
        Params.from_json({**Params().to_json(), name: ceiling + 1})
