"""The one-pass codec against the general one (§2, §3, §5.3): on every tx and account
record it gives what the general codec gives, and on damaged or non-canonical bytes it
decodes nothing the general decoder refuses, so that which of the two reads a record
never changes what a node accepts or the state it computes."""

from __future__ import annotations

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from chain.codec import dumps
from chain.errors import DecodeError
from chain.fastcodec import encode_account, read_account, read_tx
from chain.types import (
    Account,
    Bond,
    PoiAttest,
    PoiEndorse,
    Transfer,
    Tx,
    TxBody,
    Unbond,
    ValidatorRegister,
    decode,
)

# Integers at every boundary of CBOR's integer heads.
EDGES = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**64 - 1]
uints = st.sampled_from(EDGES) | st.integers(0, 2**64 - 1)


def blob(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


bodies: st.SearchStrategy[TxBody] = st.one_of(
    st.builds(Transfer, blob(20), uints),
    st.builds(Bond, uints),
    st.builds(Unbond, uints),
    st.builds(PoiEndorse, blob(32), uints),
    st.builds(PoiAttest, uints, blob(32), st.tuples(uints, uints, uints, uints, uints), uints),
    st.builds(ValidatorRegister, blob(32), st.text(max_size=8)),
)
txs = st.builds(Tx, blob(32), uints, uints, bodies, blob(64))


def general(data: bytes) -> Tx | None:
    try:
        return decode(Tx, data)
    except DecodeError:
        return None


@given(txs)
def test_it_decodes_every_common_tx_as_the_general_decoder_does(tx: Tx) -> None:
    data = dumps(tx.to_cbor())
    fast = read_tx(data)
    assert general(data) == tx
    if isinstance(tx.body, ValidatorRegister):
        assert fast is None  # left to the general decoder
    else:
        assert fast == tx


@given(txs, st.data())
def test_it_decodes_nothing_the_general_decoder_refuses(tx: Tx, data: st.DataObject) -> None:
    raw = bytearray(dumps(tx.to_cbor()))
    for _ in range(data.draw(st.integers(1, 3))):
        edit = data.draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        at = data.draw(st.integers(0, len(raw)))
        if edit == "flip" and at < len(raw):
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif edit == "insert":
            raw.insert(at, data.draw(st.integers(0, 255)))
        elif edit == "delete" and at < len(raw):
            del raw[at]
        elif edit == "cut":
            del raw[at:]
    damaged = bytes(raw)
    fast = read_tx(damaged)
    if fast is not None:
        assert general(damaged) == fast


@given(st.sampled_from(EDGES[1:]), st.sampled_from([1, 2, 4, 8]))
def test_an_integer_longer_than_needed_is_left_to_the_general_decoder(value: int, size: int) -> None:
    if value >= 1 << (8 * size):
        return
    head = {1: 24, 2: 25, 4: 26, 8: 27}[size]
    tx = Tx(bytes(32), 7, 1, Bond(value), bytes(64))
    canonical = dumps(tx.to_cbor())
    encoded = cbor2.dumps(value)
    if len(encoded) == 1 + size:
        return  # this is its shortest form
    longer = bytes([head]) + value.to_bytes(size, "big")
    raw = canonical.replace(b"\x81" + encoded, b"\x81" + longer, 1)
    assert raw != canonical
    assert read_tx(raw) is None
    assert general(raw) is None


@given(uints, uints)
def test_an_account_record_is_written_and_read_as_the_general_codec_does(balance: int, nonce: int) -> None:
    account = Account(balance, nonce)
    record = dumps(account.to_cbor())
    assert encode_account(account) == record
    assert read_account(record) == account


def test_an_account_beyond_64_bits_is_left_to_the_general_codec() -> None:
    account = Account(2**64, 1)
    assert encode_account(account) == dumps(account.to_cbor())


@given(uints, uints, st.data())
def test_a_damaged_account_record_reads_as_the_general_decoder_reads_it_or_not_at_all(
        balance: int, nonce: int, data: st.DataObject) -> None:
    raw = bytearray(dumps([balance, nonce]))
    at = data.draw(st.integers(0, len(raw)))
    edit = data.draw(st.sampled_from(["flip", "insert", "cut"]))
    if edit == "flip" and at < len(raw):
        raw[at] ^= 1 << data.draw(st.integers(0, 7))
    elif edit == "insert":
        raw.insert(at, data.draw(st.integers(0, 255)))
    else:
        del raw[at:]
    record = bytes(raw)
    fast = read_account(record)
    if fast is not None:
        assert Account.from_cbor(cbor2.loads(record)) == fast
