"""Snapshot manifests and chunks: made from a state, checked against its root, and every
kind of tampering with a chunk or a manifest refused."""

from __future__ import annotations

import dataclasses
import random

import pytest

from chain.errors import DecodeError, InvalidProof
from chain.snapshot import (
    LEAF,
    MAX_SPLIT_DEPTH,
    Manifest,
    Subtree,
    decode_chunk,
    encode_chunk,
    make_manifest,
    manifest_root,
    split_depth,
    verify_chunk,
)
from chain.statetree import EMPTY_ROOT, StateTree, key_path
from storage.snapshots import build_snapshot


def state(keys: int, seed: int = 1) -> dict[bytes, bytes]:
    rng = random.Random(seed)
    return {f"key-{i}".encode(): rng.randbytes(rng.randrange(1, 300)) for i in range(keys)}


def root_of(values: dict[bytes, bytes]) -> bytes:
    tree = StateTree()
    tree.update(values)
    return tree.root()


@pytest.mark.parametrize("keys", [0, 1, 2, 17, 300, 5_000])
def test_round_trip(keys: int) -> None:
    values = state(keys)
    root = root_of(values)
    manifest, chunks = build_snapshot(7, root, list(values.items()))
    assert manifest.height == 7
    assert manifest_root(Manifest.decode(manifest.encode())) == root
    rebuilt: dict[bytes, bytes] = {}
    for index, raw in enumerate(chunks):
        pairs = decode_chunk(raw)
        verify_chunk(manifest, index, pairs)
        rebuilt.update(pairs)
    assert rebuilt == values


def test_large_state_splits_into_many_chunks() -> None:
    values = state(5_000)
    manifest, chunks = build_snapshot(1, root_of(values), list(values.items()))
    assert manifest.depth == split_depth(sum(len(k) + len(v) for k, v in values.items())) >= 1
    assert len(chunks) > 3
    assert split_depth(1 << 40) == MAX_SPLIT_DEPTH


def test_empty_state_root() -> None:
    manifest = make_manifest(0, 0, [], [0])
    assert manifest_root(manifest) == EMPTY_ROOT


@pytest.fixture(scope="module")
def snapshot() -> tuple[dict[bytes, bytes], Manifest, list[list[tuple[bytes, bytes]]]]:
    values = state(2_000)
    manifest, chunks = build_snapshot(3, root_of(values), list(values.items()))
    assert len(chunks) >= 3
    return values, manifest, [decode_chunk(c) for c in chunks]


def test_changed_value_refused(snapshot) -> None:  # type: ignore[no-untyped-def]
    _, manifest, chunks = snapshot
    pairs = list(chunks[1])
    key, value = pairs[5]
    pairs[5] = (key, value + b"!")
    with pytest.raises(InvalidProof, match="hash to"):
        verify_chunk(manifest, 1, pairs)


def test_dropped_key_refused(snapshot) -> None:  # type: ignore[no-untyped-def]
    _, manifest, chunks = snapshot
    for drop in (0, len(chunks[1]) // 2, len(chunks[1]) - 1):
        pairs = [p for i, p in enumerate(chunks[1]) if i != drop]
        with pytest.raises(InvalidProof):
            verify_chunk(manifest, 1, pairs)


def test_extra_key_refused(snapshot) -> None:  # type: ignore[no-untyped-def]
    values, manifest, chunks = snapshot
    first, end = manifest.chunk_range(1)
    extra = next(k for k in (f"new-{i}".encode() for i in range(10_000)) if k not in values
                 and first <= int.from_bytes(key_path(k), "big") >> (256 - 4 * manifest.depth) < end)
    pairs = sorted([*chunks[1], (extra, b"x")], key=lambda p: key_path(p[0]))
    with pytest.raises(InvalidProof):
        verify_chunk(manifest, 1, pairs)


def test_wrong_boundaries_refused(snapshot) -> None:  # type: ignore[no-untyped-def]
    _, manifest, chunks = snapshot
    with pytest.raises(InvalidProof, match="outside its prefixes"):
        verify_chunk(manifest, 1, [*chunks[1], *chunks[2]])  # a key of the next chunk's
    with pytest.raises(InvalidProof, match="outside its prefixes"):
        verify_chunk(manifest, 2, chunks[1])  # another chunk's keys
    with pytest.raises(InvalidProof, match="increasing"):
        verify_chunk(manifest, 1, list(reversed(chunks[1])))
    with pytest.raises(InvalidProof, match="missing"):
        verify_chunk(manifest, 1, [])


def test_manifest_of_another_state_has_another_root(snapshot) -> None:  # type: ignore[no-untyped-def]
    values, manifest, chunks = snapshot
    entries = list(manifest.entries)
    entries[3] = dataclasses.replace(entries[3], hash=bytes(32))
    forged = make_manifest(manifest.height, manifest.depth, entries, manifest.chunk_starts)
    assert manifest_root(forged) != root_of(values)
    # A subtree of several keys called a single leaf: no chunk can match it (a manifest
    # is named by its hash, so only peers that listed this one are asked for its chunks).
    entries[3] = dataclasses.replace(manifest.entries[3], kind=LEAF)
    mislabelled = make_manifest(manifest.height, manifest.depth, entries, manifest.chunk_starts)
    with pytest.raises(InvalidProof):
        verify_chunk(mislabelled, 0, chunks[0])


@pytest.mark.parametrize("change", [
    lambda m: [1, m.height, m.depth, [[e.prefix, e.kind, e.hash] for e in reversed(m.entries)], [0]],
    lambda m: [1, m.height, MAX_SPLIT_DEPTH + 1, [], [0]],
    lambda m: [1, m.height, m.depth, [], [1]],
    lambda m: [1, m.height, m.depth, [], [0, 0]],
    lambda m: [2, m.height, m.depth, [], [0]],
    lambda m: [1, m.height, m.depth, [[0, 3, bytes(32)]], [0]],
    lambda m: [1, m.height, m.depth, [[16 ** m.depth, 1, bytes(32)]], [0]],
])
def test_malformed_manifest_refused(snapshot, change) -> None:  # type: ignore[no-untyped-def]
    from chain.codec import dumps
    _, manifest, _ = snapshot
    with pytest.raises(DecodeError):
        Manifest.decode(dumps(change(manifest)))


def test_malformed_chunk_refused() -> None:
    from chain.codec import dumps
    with pytest.raises(DecodeError):
        decode_chunk(dumps([[b"k" * 257, b"v"]]))
    with pytest.raises(DecodeError):
        decode_chunk(dumps([[b"k", "text"]]))
    assert decode_chunk(encode_chunk([(b"k", b"v")])) == [(b"k", b"v")]


def test_hostile_chunk_refused_before_its_pairs_are_built() -> None:
    from chain.codec import dumps
    from chain.snapshot import MAX_CHUNK_PAIRS
    from chain.statetree import key_path
    # 1.2 MB of empty pairs: refused from the array's head, before a pair is built.
    with pytest.raises(DecodeError, match="more than"):
        decode_chunk(dumps([[b"", b""]] * 400_000))
    keys = sorted((i.to_bytes(4, "big") for i in range(MAX_CHUNK_PAIRS + 1)), key=key_path)
    with pytest.raises(DecodeError, match=f"{MAX_CHUNK_PAIRS + 1} pairs"):
        decode_chunk(encode_chunk([(k, b"v") for k in keys]))
    assert len(decode_chunk(encode_chunk([(k, b"v") for k in keys[:MAX_CHUNK_PAIRS]]))) == MAX_CHUNK_PAIRS
    with pytest.raises(DecodeError, match="key: 0 bytes"):
        decode_chunk(dumps([[b"", b"v"]]))
    with pytest.raises(DecodeError, match="value: 0 bytes"):
        decode_chunk(dumps([[b"k", b""]]))
    with pytest.raises(DecodeError, match="not a definite length"):
        decode_chunk(b"\x9f\xff")


def test_chunk_out_of_path_order_fails_at_the_first_bad_pair() -> None:
    from chain.codec import dumps
    from chain.statetree import key_path
    a, b = sorted([b"a", b"b"], key=key_path)
    decode_chunk(encode_chunk([(a, b"v"), (b, b"v")]))
    # The pair after the misordered one is not even a pair: the order stops the decoding first.
    with pytest.raises(DecodeError, match="key 1 not in strictly increasing path order"):
        decode_chunk(dumps([[b, b"v"], [a, b"v"], "not a pair"]))


def test_subtree_kinds_place_single_keys_where_they_are_alone() -> None:
    values = {b"only": b"1"}
    manifest, _ = build_snapshot(1, root_of(values), list(values.items()))
    assert manifest.entries == (Subtree(0, LEAF, manifest.entries[0].hash),)
    assert manifest_root(manifest) == root_of(values)
