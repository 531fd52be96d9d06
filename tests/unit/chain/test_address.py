"""Bech32 (BIP-173) and the address forms people type (chain.address)."""

from __future__ import annotations

import pytest

from chain.address import (
    HRP,
    bech32_decode,
    bech32_encode,
    format_address,
    format_hex,
    from_5bit,
    parse_address,
    to_5bit,
)
from chain.errors import InvalidAddress

# BIP-173 "Test vectors": valid Bech32 strings.
BIP173_VALID = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]

# BIP-173 invalid Bech32 strings, with the reason the decoder must give.
BIP173_INVALID = [
    ("\x201nwldj5", "not printable US-ASCII"),
    ("\x7f1axkwrx", "not printable US-ASCII"),
    ("\x801eym55h", "not printable US-ASCII"),
    ("an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
     "more than bech32's 90"),
    ("pzry9x0s0muk", "no separator"),
    ("1pzry9x0s0muk", "empty prefix"),
    ("x1b4n0q5v", "invalid character 'b'"),
    ("li1dgmt3", "fewer than the 6 of a checksum"),
    ("de1lg7wt\xff", "not printable US-ASCII"),
    ("A1G7SGD8", "bad checksum"),
    ("10a06t8", "empty prefix"),
    ("1qzzfhee", "empty prefix"),
]

# BIP-173 valid segwit addresses and their scriptPubKey (version opcode, length, program).
BIP173_SEGWIT = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
     "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
     "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("BC1SW50QA3JX3S", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj", "5210751e76e8199196d454941c45d1b3a323"),
    ("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
     "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
]

ADDRESS = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
# The bech32 form of ADDRESS, pinned so that the format can never drift.
ADDRESS_TEXT = "bizra1w508d6qejxtdg4y5r3zarvary0c5xw7k3jwgrr"


@pytest.mark.parametrize("text", BIP173_VALID)
def test_bip173_valid_strings(text: str) -> None:
    hrp, values = bech32_decode(text)
    assert bech32_encode(hrp, values) == text.lower()


@pytest.mark.parametrize(("text", "reason"), BIP173_INVALID)
def test_bip173_invalid_strings(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        bech32_decode(text)


@pytest.mark.parametrize(("text", "script"), BIP173_SEGWIT)
def test_bip173_segwit_addresses_decode_to_their_programs(text: str, script: str) -> None:
    hrp, values = bech32_decode(text)
    assert hrp in ("bc", "tb")
    version, program = values[0], from_5bit(values[1:])
    assert bytes([version + 0x50 if version else 0, len(program)]) + program == (
        bytes.fromhex(script))
    assert bech32_encode(hrp, [version, *to_5bit(program)]) == text.lower()


@pytest.mark.parametrize(("text", "reason"), [
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "bad checksum"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7", "mixes upper and lower"),
])
def test_bip173_invalid_segwit_strings(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        bech32_decode(text)


@pytest.mark.parametrize(("text", "reason"), [
    ("bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", "7 bits of padding, at most 4"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv", "non-zero padding"),
])
def test_bip173_bad_padding(text: str, reason: str) -> None:
    _, values = bech32_decode(text)
    with pytest.raises(InvalidAddress, match=reason):
        from_5bit(values[1:])


def test_bech32m_checksum_is_named() -> None:
    # BIP-350's bech32m form of a v1 program: a valid bech32m string, not bech32.
    with pytest.raises(InvalidAddress, match="bech32m"):
        bech32_decode("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y")


@pytest.mark.parametrize(("hrp", "values", "reason"), [
    ("", [], "1 or more"),
    ("BIZRA", [], "lower case"),
    ("a b", [], "US-ASCII"),
    ("bizra", [32], "5-bit"),
    ("bizra", [0] * 80, "more than bech32's 90"),
])
def test_bech32_encode_refuses(hrp: str, values: list[int], reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        bech32_encode(hrp, values)


def test_format_and_parse_address() -> None:
    assert HRP == "bizra"
    assert format_address(ADDRESS) == ADDRESS_TEXT
    assert parse_address(ADDRESS_TEXT) == ADDRESS
    assert parse_address(ADDRESS_TEXT.upper()) == ADDRESS
    assert len(ADDRESS_TEXT) == 44


@pytest.mark.parametrize("text", [
    "751e76e8199196d454941c45d1b3a323f1433bd6",
    "751E76E8199196D454941C45D1B3A323F1433BD6",
    "0x751e76e8199196d454941c45d1b3a323f1433bd6",
    "0X751e76e8199196d454941c45d1b3a323f1433BD6",
])
def test_parse_hex_address(text: str) -> None:
    assert parse_address(text) == ADDRESS


def test_format_hex_is_lower_case() -> None:
    assert format_hex(b"\xab\xcd\x01") == "abcd01"
    assert format_hex(b"") == ""


@pytest.mark.parametrize("length", [0, 19, 21, 32])
def test_format_address_refuses_wrong_lengths(length: int) -> None:
    with pytest.raises(InvalidAddress, match=f"20 bytes, not {length}"):
        format_address(bytes(length))


def _with(text: str, index: int, ch: str) -> str:
    return text[:index] + ch + text[index + 1:]


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty address"),
    (_with(ADDRESS_TEXT, 20, "q" if ADDRESS_TEXT[20] != "q" else "p"), "bad checksum"),
    (_with(ADDRESS_TEXT, 43, "q" if ADDRESS_TEXT[43] != "q" else "p"), "bad checksum"),
    ("bizrb" + ADDRESS_TEXT[5:], "bad checksum"),
    (_with(ADDRESS_TEXT, 0, "B"), "mixes upper and lower case"),
    (_with(ADDRESS_TEXT, 10, "b"), "invalid character 'b' at index 10"),
    (_with(ADDRESS_TEXT, 10, "o"), "invalid character 'o' at index 10"),
    (_with(ADDRESS_TEXT, 10, "i"), "invalid character 'i' at index 10"),
    (ADDRESS_TEXT + " ", "character ' ' at index 44 is not printable"),
    (" " + ADDRESS_TEXT, "character ' ' at index 0 is not printable"),
    ("bizra1" + "é" * 38, "not printable US-ASCII"),
    ("bizra" + ADDRESS_TEXT[6:], "no separator"),
    ("bizra1qqqqq", "fewer than the 6 of a checksum"),
    (bech32_encode("cosmos", to_5bit(ADDRESS)), "prefix 'cosmos', expected 'bizra'"),
    (bech32_encode("bizra", to_5bit(ADDRESS[:19])), "31 data characters"),
    (bech32_encode("bizra", to_5bit(ADDRESS + b"\x00")), "34 data characters"),
    ("0x" + "ab" * 19, "38 hex digits, an address has 40"),
    ("ab" * 21, "42 hex digits"),
    ("0x" + "ab" * 19 + "ag", "invalid hex digit 'g' at index 41"),
    ("0x", "0 hex digits"),
])
def test_parse_address_says_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        parse_address(text)


def test_parse_address_refuses_non_text() -> None:
    with pytest.raises(InvalidAddress, match="not bytes"):
        parse_address(ADDRESS)  # type: ignore[arg-type]


def test_5bit_conversion() -> None:
    assert to_5bit(b"") == []
    assert to_5bit(b"\xff") == [31, 28]
    assert from_5bit([31, 28]) == b"\xff"
    assert len(to_5bit(bytes(20))) == 32
    with pytest.raises(InvalidAddress, match="non-zero padding"):
        from_5bit([31, 29])
