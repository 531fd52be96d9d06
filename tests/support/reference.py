"""Independent, deliberately naive implementations of the hash structures, straight from
their definitions (§5, docs/state-root.md), for the tests to compare the real ones with."""

from __future__ import annotations

import hashlib


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def flip(data: bytes, bit: int) -> bytes:
    """``data`` with one bit inverted."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_reference_root(items: list[bytes]) -> bytes:
    """The recursive definition of RFC 6962, as CometBFT's ``HashFromByteSlices``."""
    if not items:
        return h(b"")
    if len(items) == 1:
        return h(b"\x00" + items[0])
    k = split_point(len(items))
    return h(b"\x01" + merkle_reference_root(items[:k]) + merkle_reference_root(items[k:]))


def state_reference_root(state: dict[bytes, bytes]) -> bytes:
    """The state root as docs/state-root.md defines it, computed from scratch."""
    if not state:
        return h(b"")
    return _state_subtree({h(k).hex(): h(v) for k, v in state.items()}, 0)


def _state_subtree(leaves: dict[str, bytes], depth: int) -> bytes:
    if len(leaves) == 1:
        ((path, value_hash),) = leaves.items()
        return h(b"\x00" + bytes.fromhex(path) + value_hash)
    groups: dict[int, dict[str, bytes]] = {}
    for path, value_hash in leaves.items():
        groups.setdefault(int(path[depth], 16), {})[path] = value_hash
    bitmap = sum(1 << n for n in groups)
    return h(b"\x01" + bitmap.to_bytes(2, "big")
             + b"".join(_state_subtree(groups[n], depth + 1) for n in sorted(groups)))
