"""The fee rule (§3.4): a tx pays at least ``min_fee + fee_per_byte × len(encoding)``,
checked in one place (``decode_tx``) for the mempool and for blocks alike."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from chain.crypto import address_of
from chain.errors import InvalidBlock, InvalidGenesis, InvalidTx
from chain.genesis import parse_genesis
from chain.ledger import Ledger
from chain.params import Params
from chain.transition import Code, apply_block, decode_tx, fee_due, includable_txs, least_fee
from chain.types import (
    Bond,
    PoiAttest,
    PoiEndorse,
    Transfer,
    Tx,
    TxBody,
    Unbond,
    ValidatorRegister,
    encode,
)

from chainkit import LocalChain, key

BODIES: list[TxBody] = [
    Transfer(bytes(20), 1),
    Transfer(b"\x01" * 20, 2**64 - 1),
    ValidatorRegister(bytes(32), ""),
    ValidatorRegister(bytes(32), "é" * 32),
    Bond(1_000), Unbond(2**40),
    PoiAttest(7, bytes(32), (1_000_000,) * 5, 0),
    PoiEndorse(bytes(32), 950_000),
]


def unsigned(nonce: int, fee: int, body: TxBody) -> bytes:
    """A tx's encoding as decode_tx sees it (it checks no signature)."""
    return encode(Tx(bytes(32), nonce, fee, body, bytes(64)))


def test_the_default_fee_grows_with_the_size() -> None:
    params = Params()
    assert (params.min_fee, params.fee_per_byte) == (1_000, 1)
    assert fee_due(params, 0) == 1_000 and fee_due(params, 129) == 1_129
    assert fee_due(params, params.max_tx_bytes) == 66_536
    # The largest tx costs many times a small transfer.
    transfer = least_fee(params, 0, Transfer(bytes(20), 1))
    assert transfer == 1_000 + len(unsigned(0, transfer, Transfer(bytes(20), 1)))
    assert fee_due(params, params.max_tx_bytes) > 50 * transfer


def test_a_fee_exactly_at_the_bound_passes_and_one_useed_short_fails_naming_both() -> None:
    chain = LocalChain()
    alice = chain.users[0]
    body = Transfer(address_of(chain.users[1].public_key), 5)
    exact = chain.tx(alice, body, nonce=0)
    size = len(exact)
    due = 1_000 + size
    assert decode_tx(exact, chain.config.params).fee == due
    short = chain.tx(alice, body, nonce=0, fee=due - 1)
    assert len(short) == size
    message = f"fee {due - 1} is below {due}: min_fee 1000 + fee_per_byte 1 × {size} bytes"
    with pytest.raises(InvalidTx) as refused:
        decode_tx(short, chain.config.params)
    assert str(refused.value) == message
    # A block: the short one makes it invalid with the same reason, a proposer leaves it
    # out, and the exact one is executed, its fee paid to the proposer.
    with pytest.raises(InvalidBlock, match=re.escape(f"tx 0: {message}")):
        apply_block(chain.state, chain.state.app_hash, chain.next_block([short]), chain.config)
    assert includable_txs(chain.state, chain.config, [short, exact], max_txs=10, max_bytes=1 << 20) == [exact]
    before = Ledger(chain.state).account(address_of(alice.public_key)).balance
    out = chain.run([exact])
    assert [r.code for r in out.results] == [Code.OK]
    assert Ledger(chain.state).account(address_of(alice.public_key)).balance == before - 5 - due


@pytest.mark.parametrize("params", [
    Params(),
    Params(fee_per_byte=0),
    Params(min_fee=0, fee_per_byte=1),
    Params(min_fee=0, fee_per_byte=2),
    Params(min_fee=10, fee_per_byte=7),
    Params(min_fee=0, fee_per_byte=460),
    Params(min_fee=65_300, fee_per_byte=1),
    Params(min_fee=2**32 - 150, fee_per_byte=1),
    Params(min_fee=2**32 - 700, fee_per_byte=3),
], ids=lambda p: f"{p.min_fee}+{p.fee_per_byte}")
@pytest.mark.parametrize("nonce", [0, 2**40])
def test_least_fee_is_the_least_that_passes_across_the_cbor_head_sizes(params: Params, nonce: int) -> None:
    """The fee is inside the encoding it pays for: around 24, 256, 65,536 and 2**32 a
    larger fee makes a longer tx. least_fee is still the least fee decode_tx accepts."""
    for body in BODIES:
        least = least_fee(params, nonce, body)
        decode_tx(unsigned(nonce, least, body), params)
        for fee in range(max(0, least - 300), least):
            with pytest.raises(InvalidTx, match=f"fee {fee} is below"):
                decode_tx(unsigned(nonce, fee, body), params)


def test_with_no_fee_per_byte_the_fee_is_flat() -> None:
    params = Params(fee_per_byte=0)
    for body in BODIES:
        assert least_fee(params, 3, body) == 1_000
        decode_tx(unsigned(3, 1_000, body), params)


def test_a_fee_no_64_bit_integer_reaches_is_refused() -> None:
    params = Params(min_fee=2**63 - 1, fee_per_byte=2**63 - 1)
    with pytest.raises(InvalidTx, match="no fee pays for this tx"):
        least_fee(params, 0, Bond(1))


def test_a_genesis_names_fee_per_byte_or_is_refused() -> None:
    doc = LocalChain(validators=1, users=0).genesis.to_json()
    assert doc["params"]["fee_per_byte"] == 1
    assert parse_genesis(json.dumps(doc).encode()).params.fee_per_byte == 1
    doc["params"]["fee_per_byte"] = 25
    assert parse_genesis(json.dumps(doc).encode()).params == Params(epoch_length=10, fee_per_byte=25)
    del doc["params"]["fee_per_byte"]
    with pytest.raises(InvalidGenesis, match=r"params\.fee_per_byte: missing"):
        parse_genesis(json.dumps(doc).encode())
    with pytest.raises(InvalidGenesis, match=r"params\.fee_per_byte: must be a non-negative"):
        dataclasses.replace(Params(), fee_per_byte=-1)


def test_a_chain_with_a_dearer_byte_charges_it() -> None:
    chain = LocalChain(params=Params(epoch_length=10, min_fee=500, fee_per_byte=40))
    raw = chain.tx(key(1), Bond(1))
    assert decode_tx(raw, chain.config.params).fee == 500 + 40 * len(raw)
    cheap = chain.tx(key(1), Bond(1), nonce=0, fee=1_000)
    reason = f"fee 1000 is below {500 + 40 * len(cheap)}: min_fee 500 + fee_per_byte 40 × {len(cheap)} bytes"
    with pytest.raises(InvalidTx, match=re.escape(reason)):
        decode_tx(cheap, chain.config.params)
