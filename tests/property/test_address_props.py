"""Properties of bech32 addresses: round trips, and every single-character typo caught."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.address import (
    CHARSET,
    bech32_decode,
    bech32_encode,
    format_address,
    from_5bit,
    parse_address,
    to_5bit,
)
from chain.errors import InvalidAddress

addresses = st.binary(min_size=20, max_size=20)
printable = st.sampled_from(sorted(set(string.printable) - set(string.whitespace)))


@given(addresses)
def test_address_round_trips_in_every_form(address: bytes) -> None:
    text = format_address(address)
    assert text.startswith("bizra1")
    assert len(text) == 44
    assert text == text.lower()
    assert parse_address(text) == address
    assert parse_address(text.upper()) == address
    assert parse_address(address.hex()) == address
    assert parse_address("0x" + address.hex().upper()) == address


@given(addresses, st.data())
def test_any_single_character_change_is_caught(address: bytes, data: st.DataObject) -> None:
    text = format_address(address)
    index = data.draw(st.integers(0, len(text) - 1), label="index")
    replacements = st.one_of(st.sampled_from(CHARSET), printable)
    ch = data.draw(replacements.filter(lambda c: c != text[index]), label="replacement")
    with pytest.raises(InvalidAddress):
        parse_address(text[:index] + ch + text[index + 1:])


@given(addresses, st.data())
def test_any_dropped_or_added_character_is_caught(address: bytes, data: st.DataObject) -> None:
    text = format_address(address)
    index = data.draw(st.integers(0, len(text) - 1), label="index")
    with pytest.raises(InvalidAddress):
        parse_address(text[:index] + text[index + 1:])
    ch = data.draw(st.sampled_from(CHARSET), label="insertion")
    with pytest.raises(InvalidAddress):
        parse_address(text[:index] + ch + text[index:])


@given(st.binary(max_size=50))
def test_5bit_round_trip(data: bytes) -> None:
    values = to_5bit(data)
    assert len(values) == (8 * len(data) + 4) // 5
    assert all(0 <= v < 32 for v in values)
    assert from_5bit(values) == data


hrps = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
               max_size=20).map(str.lower)


@given(hrps, st.lists(st.integers(0, 31), max_size=60))
def test_bech32_round_trip(hrp: str, values: list[int]) -> None:
    text = bech32_encode(hrp, values)
    assert bech32_decode(text) == (hrp, values)
    assert bech32_decode(text.upper()) == (hrp, values)
