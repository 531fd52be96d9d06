"""Addresses as people read and type them (§1): bech32 ``bizra1…``, or 40 hex digits.

Bech32 is that of BIP-173 (not the bech32m of BIP-350): a human-readable prefix, the
separator ``1``, then the data in a 32-character alphabet followed by a six-character
BCH checksum that catches any error in up to four characters. An address is its 20
bytes regrouped into 5-bit values, most significant bit first, the last value padded
with zero bits: always ``bizra1`` plus 38 characters.

Every refusal raises :class:`~chain.errors.InvalidAddress` saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chain.errors import InvalidAddress
from chain.sizes import ADDRESS_LEN

HRP = "bizra"

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUE_OF = {ch: value for value, ch in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_CHECKSUM_LEN = 6
_MAX_LEN = 90
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_ADDRESS_VALUES = (8 * ADDRESS_LEN + 4) // 5


def _polymod(values: Iterable[int]) -> int:
    """The remainder of the BCH code of BIP-173 over a sequence of 5-bit values."""
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = ((checksum & 0x1FFFFFF) << 5) ^ value
        for bit, generator in enumerate(_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _expand_hrp(hrp: str) -> list[int]:
    """The prefix as checksummed: the high bits of each character, a zero, the low bits."""
    codes = [ord(ch) for ch in hrp]
    return [c >> 5 for c in codes] + [0] + [c & 31 for c in codes]


def bech32_encode(hrp: str, values: Sequence[int]) -> str:
    """The lower-case bech32 string of a prefix and 5-bit data values (checksum added).

    Raises InvalidAddress if the prefix or the values break BIP-173's limits.
    """
    if not hrp or any(not 33 <= ord(ch) <= 126 for ch in hrp):
        raise InvalidAddress(f"prefix {hrp!r}: 1 or more US-ASCII characters from 33 to 126 needed")
    if hrp != hrp.lower():
        raise InvalidAddress(f"prefix {hrp!r}: must be lower case")
    if any(not 0 <= v < 32 for v in values):
        raise InvalidAddress("data values must be 5-bit integers (0 to 31)")
    length = len(hrp) + 1 + len(values) + _CHECKSUM_LEN
    if length > _MAX_LEN:
        raise InvalidAddress(f"would be {length} characters, more than bech32's {_MAX_LEN}")
    remainder = _polymod([*_expand_hrp(hrp), *values, *([0] * _CHECKSUM_LEN)]) ^ _BECH32_CONST
    checksum = [(remainder >> (5 * (_CHECKSUM_LEN - 1 - i))) & 31 for i in range(_CHECKSUM_LEN)]
    return hrp + "1" + "".join(CHARSET[v] for v in [*values, *checksum])


def bech32_decode(text: str) -> tuple[str, list[int]]:
    """The lower-case prefix and the 5-bit data values (checksum removed) of a bech32 string.

    Accepts all-lower-case or all-upper-case text; raises InvalidAddress naming the
    first rule of BIP-173 the text breaks.
    """
    if not text:
        raise InvalidAddress("empty address")
    for position, ch in enumerate(text):
        if not 33 <= ord(ch) <= 126:
            raise InvalidAddress(f"character {ch!r} at index {position} is not printable "
                                 "US-ASCII")
    if len(text) > _MAX_LEN:
        raise InvalidAddress(f"{len(text)} characters, more than bech32's {_MAX_LEN}")
    lower = text.lower()
    if text != lower and text != text.upper():
        raise InvalidAddress("mixes upper and lower case")
    separator = lower.rfind("1")
    if separator < 0:
        raise InvalidAddress("no separator '1' between prefix and data")
    if separator == 0:
        raise InvalidAddress("empty prefix before the separator '1'")
    hrp, data = lower[:separator], lower[separator + 1:]
    if len(data) < _CHECKSUM_LEN:
        raise InvalidAddress(f"{len(data)} characters after the separator '1', fewer than "
                             f"the {_CHECKSUM_LEN} of a checksum")
    values = []
    for offset, ch in enumerate(data):
        value = _VALUE_OF.get(ch)
        if value is None:
            raise InvalidAddress(f"invalid character {text[separator + 1 + offset]!r} at index "
                                 f"{separator + 1 + offset} (bech32 data uses "
                                 f"only {CHARSET})")
        values.append(value)
    remainder = _polymod([*_expand_hrp(hrp), *values])
    if remainder == _BECH32M_CONST:
        raise InvalidAddress("bech32m checksum: addresses use bech32 (BIP-173)")
    if remainder != _BECH32_CONST:
        raise InvalidAddress("bad checksum: the address is mistyped or damaged")
    return hrp, values[:-_CHECKSUM_LEN]


def to_5bit(data: bytes) -> list[int]:
    """Bytes regrouped into 5-bit values, most significant bit first, zero-padded."""
    values = []
    accumulator = 0
    bits = 0
    for byte in data:
        accumulator = (accumulator << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            values.append((accumulator >> bits) & 31)
        accumulator &= (1 << bits) - 1
    if bits:
        values.append((accumulator << (5 - bits)) & 31)
    return values


def from_5bit(values: Sequence[int]) -> bytes:
    """The inverse of :func:`to_5bit` for values from 0 to 31; raises InvalidAddress unless
    the padding is at most 4 bits, all zero."""
    out = bytearray()
    accumulator = 0
    bits = 0
    for value in values:
        accumulator = (accumulator << 5) | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
        accumulator &= (1 << bits) - 1
    if bits >= 5:
        raise InvalidAddress(f"{bits} bits of padding, at most 4 allowed")
    if accumulator:
        raise InvalidAddress("non-zero padding bits")
    return bytes(out)


def format_address(address: bytes) -> str:
    """The ``bizra1…`` form of a 20-byte address; raises InvalidAddress for other lengths."""
    if len(address) != ADDRESS_LEN:
        raise InvalidAddress(f"an address is {ADDRESS_LEN} bytes, not {len(address)}")
    return bech32_encode(HRP, to_5bit(address))


def format_hex(data: bytes) -> str:
    """Lower-case hex without prefix, the form of hashes and addresses outside RPC (§1)."""
    return data.hex()


def parse_address(text: str) -> bytes:
    """The 20 bytes of an address written as ``bizra1…`` or as 40 hex digits.

    Bech32 must have the prefix ``bizra``, a valid checksum and be all lower or all upper
    case. Hex may carry a ``0x`` prefix and either case. Anything else raises
    InvalidAddress saying what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidAddress(f"an address is text, not {type(text).__name__}")
    digits = text[2:] if text[:2] in ("0x", "0X") else None
    if digits is None and text and all(ch in _HEX_DIGITS for ch in text):
        digits = text
    if digits is not None:
        for position, ch in enumerate(digits):
            if ch not in _HEX_DIGITS:
                raise InvalidAddress(f"invalid hex digit {ch!r} at index "
                                     f"{position + len(text) - len(digits)}")
        if len(digits) != 2 * ADDRESS_LEN:
            raise InvalidAddress(f"{len(digits)} hex digits, an address has {2 * ADDRESS_LEN}")
        return bytes.fromhex(digits)
    hrp, values = bech32_decode(text)
    if hrp != HRP:
        raise InvalidAddress(f"prefix {hrp!r}, expected {HRP!r}")
    if len(values) != _ADDRESS_VALUES:
        raise InvalidAddress(f"{len(values)} data characters before the checksum, an address "
                             f"has {_ADDRESS_VALUES} ({ADDRESS_LEN} bytes)")
    return from_5bit(values)
