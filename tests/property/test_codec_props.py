"""§2 for every consensus object: round trips, and the decoder refuses anything else."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.codec import dumps, join_array
from chain.errors import DecodeError
from chain.types import (
    Account,
    Attestation,
    Block,
    Bond,
    ChainMeta,
    Commit,
    CommitFlag,
    CommitSig,
    DuplicateVoteEvidence,
    Header,
    PoiAttest,
    PoiEndorse,
    Proposal,
    SetMember,
    Transfer,
    Tx,
    TxResult,
    Unbond,
    Validator,
    ValidatorRegister,
    Vote,
    VoteType,
    decode,
    encode,
)

u64 = st.integers(0, 2**64 - 1)
small = st.integers(0, 10**6)


def fixed(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


bodies = st.one_of(
    st.builds(Transfer, fixed(20), u64),
    st.builds(ValidatorRegister, fixed(32),  # monikers of at most 64 bytes of UTF-8
              st.one_of(st.text(max_size=16), st.sampled_from(["m" * 64, "é" * 32, "𝄞" * 16]))),
    st.builds(Bond, u64),
    st.builds(Unbond, u64),
    st.builds(PoiAttest, u64, fixed(32), st.tuples(small, small, small, small, small), small),
    st.builds(PoiEndorse, fixed(32), small),
)
txs = st.builds(Tx, fixed(32), u64, u64, bodies, fixed(64))
votes = st.builds(Vote, st.sampled_from(list(VoteType)), u64, u64,
                  st.one_of(st.just(b""), fixed(32)), u64, fixed(20), small, fixed(64))
proposals = st.builds(Proposal, u64, u64, st.one_of(st.none(), u64), fixed(32), u64, fixed(64))
commit_sigs = st.one_of(
    st.just(CommitSig(CommitFlag.ABSENT, 0, b"")),
    st.builds(CommitSig, st.sampled_from([CommitFlag.COMMIT, CommitFlag.NIL]), u64, fixed(64)),
)
commits = st.builds(Commit, u64, u64, fixed(32), st.lists(commit_sigs, max_size=4).map(tuple))


@st.composite
def evidences(draw: st.DrawFn) -> DuplicateVoteEvidence:
    a = draw(votes)
    other = draw(fixed(32).filter(lambda b: b != a.block_id))
    b = Vote(a.type, a.height, a.round, other, draw(u64), a.validator_address,
             a.validator_index, draw(fixed(64)))
    return DuplicateVoteEvidence(*sorted((a, b), key=lambda v: v.block_id))


chain_ids = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=50)
headers = st.builds(Header, small, chain_ids, u64, u64, fixed(32),
                    fixed(32), fixed(32), fixed(32), fixed(32), fixed(32), fixed(32), fixed(32),
                    fixed(20))
blocks = st.builds(Block, headers, st.lists(st.binary(max_size=40), max_size=3).map(tuple),
                   st.lists(evidences(), max_size=2).map(tuple), st.one_of(st.none(), commits))
records = st.one_of(
    st.builds(Account, u64, u64),
    st.builds(Validator, fixed(20), fixed(32), st.text(max_size=10), u64, small, u64),
    st.builds(SetMember, fixed(32), u64),
    st.builds(TxResult, small, st.one_of(st.just(b""), fixed(32))),
    st.builds(Attestation, fixed(20), u64, small, st.integers(0, 3), u64, u64),
    st.builds(ChainMeta, u64, u64, fixed(32), fixed(32)),
)
objects = st.one_of(txs, votes, proposals, commits, evidences(), headers, blocks, records)


@given(objects)
def test_round_trip(obj: Any) -> None:
    data = encode(obj)
    assert decode(type(obj), data) == obj
    assert encode(decode(type(obj), data)) == data


@given(objects, st.data())
def test_truncation_is_rejected(obj: Any, data: st.DataObject) -> None:
    encoded = encode(obj)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(DecodeError):
        decode(type(obj), encoded[:cut])


@given(objects, st.binary(min_size=1, max_size=9))
def test_extension_is_rejected(obj: Any, extra: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(type(obj), encode(obj) + extra)


WRONG: list[object] = [None, -1, 2**64, "text", b"bytes", [], 1.5, True, {"a": 1}]


def _paths(value: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out = [path] if path else []
    if isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_paths(item, (*path, i)))
    return out


def _replace(value: Any, path: tuple[int, ...], new: Any) -> Any:
    if not path:
        return new
    copy = list(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)
    return copy


def _at(value: Any, path: tuple[int, ...]) -> Any:
    for i in path:
        value = value[i]
    return value


@given(objects, st.data())
def test_wrong_item_type_is_rejected(obj: Any, data: st.DataObject) -> None:
    tree = obj.to_cbor()
    path = data.draw(st.sampled_from(_paths(tree)))
    current = _at(tree, path)
    # Replace an item with one of another kind; skip replacements the field may hold
    # (an item of a free-length list, a nullable field, an empty block id of a vote).
    candidates = [w for w in WRONG if type(w) is not type(current)]
    new = data.draw(st.sampled_from(candidates))
    mutated = dumps(_replace(tree, path, new))
    try:
        again = decode(type(obj), mutated)
    except DecodeError:
        return
    # Accepted only if the object can legitimately hold it: then it must round trip.
    assert encode(again) == mutated


def _noncanonical(value: Any, target: int, counter: list[int]) -> bytes:
    """Encode like cbor2 does, but write the ``target``-th head (int or length) one size
    longer than needed."""

    def head(major: int, n: int) -> bytes:
        index = counter[0]
        counter[0] += 1
        widen = index == target
        sizes = [(23, None, 0), (0xFF, ">B", 24), (0xFFFF, ">H", 25), (0xFFFFFFFF, ">I", 26),
                 (2**64 - 1, ">Q", 27)]
        for i, (limit, fmt, extra) in enumerate(sizes):
            if n <= limit:
                if widen:
                    if i + 1 == len(sizes):
                        break
                    limit, fmt, extra = sizes[i + 1]
                if fmt is None:
                    return bytes([major << 5 | n])
                return bytes([major << 5 | extra]) + struct.pack(fmt, n)
        return bytes([major << 5 | 27]) + struct.pack(">Q", n)

    def enc(v: Any) -> bytes:
        if v is None:
            return b"\xf6"
        if isinstance(v, int):
            return head(0, v)
        if isinstance(v, bytes):
            return head(2, len(v)) + v
        if isinstance(v, str):
            raw = v.encode()
            return head(3, len(raw)) + raw
        return head(4, len(v)) + b"".join(enc(x) for x in v)

    return enc(value)


@given(objects, st.data())
def test_non_minimal_encoding_is_rejected(obj: Any, data: st.DataObject) -> None:
    tree = obj.to_cbor()
    assert _noncanonical(tree, -1, [0]) == encode(obj)  # the reference encoder agrees
    heads = [0]
    _noncanonical(tree, -1, heads)
    target = data.draw(st.integers(0, heads[0] - 1))
    widened = _noncanonical(tree, target, [0])
    if widened == encode(obj):  # a 64-bit head cannot be widened
        return
    with pytest.raises(DecodeError):
        decode(type(obj), widened)


def test_indefinite_length_array_is_rejected() -> None:
    encoded = encode(Account(5, 1))
    with pytest.raises(DecodeError):
        decode(Account, b"\x9f" + encoded[1:] + b"\xff")


@given(st.lists(st.one_of(st.integers(0, 2**64 - 1), st.binary(max_size=40), st.none()), max_size=300))
def test_an_array_joined_from_encoded_items_is_the_arrays_encoding(items: list[Any]) -> None:
    assert join_array([dumps(item) for item in items]) == dumps(items)


def test_a_joined_array_of_more_than_65535_items_has_a_four_byte_length() -> None:
    items = [0] * 70_000
    assert join_array([dumps(i) for i in items]) == dumps(items)
