"""JSON text for the RPC, as RFC 8259 has it: orjson, and the standard library where
orjson cannot be exact (a request id beyond 64 bits)."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

_BEYOND_64_BITS = 2.0**63


def loads(text: str | bytes) -> Any:
    """The JSON document ``text`` holds; ValueError (with what is wrong and where) for
    anything that is not JSON: bad UTF-8, NaN, Infinity, a number no float holds, or
    nesting deeper than 1,024. A request id (``id`` of an object, or of a batch's
    objects) that is an integer beyond 64 bits is read exactly, to be sent back as it
    came; other such integers are read as floats."""
    document = orjson.loads(text)
    try:
        exact = any(map(_maybe_long, document if isinstance(document, list) else [document]))
    except RecursionError:
        raise ValueError("a request id nested too deeply") from None
    return json.loads(text, parse_constant=_not_json, parse_float=_finite) if exact else document


def _maybe_long(request: Any) -> bool:
    """Whether ``request`` is an object whose id holds a float orjson may have read from
    an integer beyond 64 bits."""
    return isinstance(request, dict) and _holds_long(request.get("id"))


def _holds_long(value: Any) -> bool:
    if isinstance(value, float):
        return abs(value) >= _BEYOND_64_BITS
    if isinstance(value, list):
        return any(map(_holds_long, value))
    if isinstance(value, dict):
        return any(map(_holds_long, value.values()))
    return False


def dumps(document: Any) -> bytes:
    """``document`` as compact UTF-8 JSON (integers beyond 64 bits included)."""
    try:
        return orjson.dumps(document)
    except TypeError:  # an integer beyond 64 bits, say: rare, so only then the slow way
        return json.dumps(document, separators=(",", ":")).encode()


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token[:20]} is beyond any number this node reads")
    return value
