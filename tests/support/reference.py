"""Independent, deliberately naive implementations of the hash structures, straight from
their definitions (§5, docs/state-root.md), and other forms of the ledger's rules, for the
tests to compare the real ones with."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from chain import statekeys
from chain.codec import expect_bytes, expect_list
from chain.ledger import Ledger
from chain.sizes import HASH_LEN


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


# --- attestation expiry as one list per epoch ------------------------------------------


def expiry_list_key(epoch: int) -> bytes:
    """The key of the list form: ``0x07 || u64(epoch)``, holding ``[id, …]``."""
    return bytes((statekeys.EXPIRY,)) + epoch.to_bytes(8, "big")


def _ids(obj: object) -> list[bytes]:
    return [expect_bytes(i, "expiry.id", HASH_LEN) for i in expect_list(obj, "expiry")]


def _list_expiring(ledger: Ledger, epoch: int) -> list[bytes]:
    return list(ledger._load(expiry_list_key(epoch), _ids) or [])


def _list_add_expiry(ledger: Ledger, epoch: int, attestation_id: bytes) -> None:
    # The whole list is read, copied and written again for every attestation.
    ledger._store(expiry_list_key(epoch), [*_list_expiring(ledger, epoch), attestation_id])


def _list_remove_expiry(ledger: Ledger, epoch: int, attestation_id: bytes) -> None:
    left = [i for i in _list_expiring(ledger, epoch) if i != attestation_id]
    ledger._store(expiry_list_key(epoch), left or None)


@contextmanager
def expiry_lists() -> Iterator[None]:
    """While inside, the ledger keeps attestation expiries as one list per epoch, in
    the order the attestations were made, under :func:`expiry_list_key`: each
    attestation rewrites its epoch's list, and the epoch end reads the list and deletes
    it. Every other rule is the ledger's own, so a chain run inside and one run outside
    differ in the expiry keys only, unless the index changes what an epoch end does."""
    with mock.patch.multiple(Ledger, expiring=_list_expiring, add_expiry=_list_add_expiry,
                             remove_expiry=_list_remove_expiry):
        yield
