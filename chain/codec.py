"""The strict CBOR codec of §2, the one adapter for cbor2.

Every consensus object is a CBOR array with a fixed field order. :func:`loads_canonical`
accepts only bytes that are exactly the encoding :func:`dumps` would produce for the
decoded value, which rules out trailing bytes, non-minimal integers, indefinite lengths,
tags and floats in one comparison. The ``expect_*`` checkers then verify shape and types;
all of them raise :class:`~chain.errors.DecodeError` and nothing else.
"""

from __future__ import annotations

from typing import Any

import cbor2

from chain.errors import DecodeError

MAX_UINT64 = 2**64 - 1

_DECODER_FAILURES = (cbor2.CBORError, ValueError, TypeError, OverflowError,
                     RecursionError, MemoryError, KeyError, IndexError)


def dumps(obj: object) -> bytes:
    """Encode an array of ints, bytes, text, ``None`` and nested arrays (deterministic)."""
    return cbor2.dumps(obj)


def join_array(encoded_items: list[bytes]) -> bytes:
    """The encoding of an array whose items are ``encoded_items``, already encoded (as
    :func:`dumps` of the decoded items would give, without decoding them again)."""
    n = len(encoded_items)
    if n < 24:
        head = bytes([0x80 | n])
    else:
        size = 1 if n < 1 << 8 else 2 if n < 1 << 16 else 4 if n < 1 << 32 else 8
        head = bytes([0x98 + size.bit_length() - 1]) + n.to_bytes(size, "big")
    return head + b"".join(encoded_items)


def loads_canonical(data: bytes, what: str) -> Any:
    """Decode ``data`` and check it is the canonical encoding of what it decodes to."""
    if type(data) is not bytes:
        raise DecodeError(f"{what}: expected bytes, got {type(data).__name__}")
    try:
        obj = cbor2.loads(data)
        again = cbor2.dumps(obj)
    except _DECODER_FAILURES as exc:
        raise DecodeError(f"{what}: not valid CBOR ({exc})") from None
    if again != data:
        if len(again) < len(data) and data.startswith(again):
            raise DecodeError(f"{what}: {len(data) - len(again)} trailing bytes")
        raise DecodeError(f"{what}: not the canonical encoding (non-minimal or tagged item)")
    return obj


def expect_array(obj: object, length: int, what: str) -> list[Any]:
    """``obj`` as a list of exactly ``length`` items."""
    if type(obj) is not list:
        raise DecodeError(f"{what}: expected an array, got {_kind(obj)}")
    if len(obj) != length:
        raise DecodeError(f"{what}: expected {length} fields, got {len(obj)}")
    return obj


def expect_list(obj: object, what: str, max_items: int = MAX_UINT64) -> list[Any]:
    """``obj`` as a list of any length up to ``max_items``."""
    if type(obj) is not list:
        raise DecodeError(f"{what}: expected an array, got {_kind(obj)}")
    if len(obj) > max_items:
        raise DecodeError(f"{what}: {len(obj)} items, more than {max_items}")
    return obj


def expect_uint(obj: object, what: str, maximum: int = MAX_UINT64) -> int:
    """``obj`` as an unsigned integer no larger than ``maximum``."""
    if type(obj) is not int:
        raise DecodeError(f"{what}: expected an unsigned integer, got {_kind(obj)}")
    if obj < 0 or obj > maximum:
        raise DecodeError(f"{what}: {obj} is out of range [0, {maximum}]")
    return obj


def expect_bytes(obj: object, what: str, length: int | None = None, *,
                 max_bytes: int = MAX_UINT64) -> bytes:
    """``obj`` as a byte string, of exactly ``length`` bytes when given, and of at most
    ``max_bytes`` bytes."""
    if type(obj) is not bytes:
        raise DecodeError(f"{what}: expected a byte string, got {_kind(obj)}")
    if length is not None and len(obj) != length:
        raise DecodeError(f"{what}: expected {length} bytes, got {len(obj)}")
    if len(obj) > max_bytes:
        raise DecodeError(f"{what}: {len(obj)} bytes, more than {max_bytes}")
    return obj


def expect_text(obj: object, what: str, max_bytes: int = MAX_UINT64) -> str:
    """``obj`` as a text string of at most ``max_bytes`` UTF-8 bytes."""
    if type(obj) is not str:
        raise DecodeError(f"{what}: expected a text string, got {_kind(obj)}")
    if len(obj) > max_bytes or len(obj.encode()) > max_bytes:
        raise DecodeError(f"{what}: {len(obj.encode())} bytes of UTF-8, longer than {max_bytes}")
    return obj


def _kind(obj: object) -> str:
    names = {list: "an array", int: "an integer", bytes: "a byte string", str: "a text string",
             bool: "a boolean", type(None): "null", float: "a float", dict: "a map"}
    return names.get(type(obj), type(obj).__name__)
