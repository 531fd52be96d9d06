"""The one-pass tx decoder against the general one (§2, §3): on every tx it decodes the
same tx, and on damaged or non-canonical bytes it decodes nothing the general decoder
refuses, so that which of the two decodes a tx never changes what a node accepts."""

from __future__ import annotations

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from chain.codec import dumps
from chain.errors import DecodeError
from chain.txdecode import read_tx
from chain.types import Bond, PoiAttest, PoiEndorse, Transfer, Tx, TxBody, Unbond, ValidatorRegister, decode

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
