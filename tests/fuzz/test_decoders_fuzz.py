"""Fuzzing every decoder of bytes that come from outside the node: txs
(``chain.transition.decode_tx``), blocks, headers, commits, votes, proposals and
duplicate-vote evidence (``chain.types.decode``), consensus messages
(``consensus.messages.decode_message``, ``node.consensus_gossip.decode_gossip``), tx
tx gossip messages (``p2p.txgossip.decode_message``), block announcements and status answers,
and state sync's snapshot descriptors, manifests, chunks and light blocks (``chain.snapshot``,
``chain.lightblock``).

Every generated input goes through every decoder. Each decoder may only raise its
documented error (InvalidTx for txs, DecodeError for the rest); whatever it accepts
re-encodes to the very bytes it was decoded from (for a consensus message: to an
encoding that decodes to the same message). The bounds of §3.8 hold at decode: a
moniker decodes exactly when it is at most 64 bytes of UTF-8, a block's txs and
evidence and a commit's signatures exactly when there are no more than their limits; and
``decode_tx`` accepts a tx exactly when its fee pays ``min_fee + fee_per_byte`` for each
byte of its encoding. The inputs: random bytes; byte strings
built from CBOR heads, tags and oddities; the encodings of random CBOR values; valid
encodings with bytes flipped, cut, extended, deleted, inserted or repeated; and valid
objects with one item of their CBOR tree replaced, removed or duplicated. The
``from_cbor`` of each consensus type gets the decoded values themselves.

``BIZRA_FUZZ_EXAMPLES`` raises every test's number of examples (for long runs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import cbor2
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import chain.types
from chain.codec import dumps, loads_canonical
from chain.commits import proposal_sign_bytes, vote_sign_bytes
from chain.crypto import address_of
from chain.errors import BizraError, DecodeError, InvalidTx
from chain.lightblock import LightBlock
from chain.params import Params
from chain.sizes import MAX_MONIKER_BYTES
from chain.snapshot import Descriptor, Manifest, decode_chunk, encode_chunk
from chain.state import MemoryState
from chain.transition import decode_tx, fee_due
from chain.types import (
    Block,
    Bond,
    Commit,
    CommitFlag,
    CommitSig,
    DuplicateVoteEvidence,
    Header,
    PoiAttest,
    PoiEndorse,
    Proposal,
    Transfer,
    Tx,
    Unbond,
    ValidatorRegister,
    Vote,
    VoteType,
    decode,
    encode,
)
from consensus.machine import Timeout
from consensus.messages import (
    BlockMessage,
    Message,
    ProposalMessage,
    TimeoutRecord,
    VoteMessage,
    decode_message,
    encode_message,
)
from node.consensus_gossip import COMPACT_PROPOSAL, PROPOSAL_BY_ID, CompactProposal, decode_gossip
from p2p import txgossip
from p2p.blocks import Announcement, CompactBlock
from p2p.status import Status
from storage.snapshots import build_snapshot

from chainkit import BLOCK_INTERVAL_NS, LocalChain, key
from fuzzkit import fuzz, mutations

# --- valid objects ------------------------------------------------------------------------

CHAIN = LocalChain(users=2)
PARAMS: Params = CHAIN.config.params
CHAIN_ID = CHAIN.config.chain_id
USER, OTHER = CHAIN.users
CHAIN.run()
CHAIN.run()
VALID_TXS = [
    CHAIN.tx(USER, Transfer(bytes(20), 5)),
    CHAIN.tx(USER, Transfer(bytes(range(20)), 2**64 - 1), fee=2**64 - 1),
    CHAIN.tx(USER, ValidatorRegister(key(77).public_key, "validator ☃ 7")),
    CHAIN.tx(USER, ValidatorRegister(key(78).public_key, "")),
    CHAIN.tx(USER, ValidatorRegister(key(79).public_key, "☃" * 21 + "m")),  # 64 bytes: the bound
    CHAIN.tx(OTHER, Bond(1_000)),
    CHAIN.tx(OTHER, Unbond(2**63)),
    CHAIN.tx(OTHER, PoiAttest(3, bytes(range(32)), (1, 2, 3, 4, 5), 7)),
    CHAIN.tx(OTHER, PoiEndorse(bytes(32), 1_000_000)),
]
HEIGHT = CHAIN.height + 1
VALIDATOR = CHAIN.validator_keys[0]


def signed_vote(vote_type: VoteType, block_id: bytes, index: int = 0) -> Vote:
    signer = CHAIN.validator_keys[index]
    vote = Vote(vote_type, HEIGHT, 0, block_id, 1_790_000_000_000_000_000 + index,
                address_of(signer.public_key), index, b"")
    return dataclasses.replace(vote, signature=signer.sign(vote_sign_bytes(CHAIN_ID, vote)))


def signed_proposal(block_id: bytes, pol_round: int | None) -> Proposal:
    unsigned = Proposal(HEIGHT, 2, pol_round, block_id, 1_790_000_000_000_000_000, b"")
    signature = VALIDATOR.sign(proposal_sign_bytes(CHAIN_ID, unsigned))
    return Proposal(HEIGHT, 2, pol_round, block_id, unsigned.timestamp_ns, signature)


_ids = sorted([bytes(32), bytes(range(32))])
EVIDENCE = [
    DuplicateVoteEvidence(signed_vote(VoteType.PREVOTE, _ids[0]), signed_vote(VoteType.PREVOTE, _ids[1])),
    DuplicateVoteEvidence(signed_vote(VoteType.PRECOMMIT, b""), signed_vote(VoteType.PRECOMMIT, _ids[0])),
]
BLOCKS = [
    CHAIN.next_block(),
    CHAIN.next_block(VALID_TXS[:3]),
    CHAIN.next_block(VALID_TXS, evidence=EVIDENCE),
]
assert CHAIN.last_commit is not None
_last_block_id = CHAIN.last_commit.block_id
COMMITS = [
    CHAIN.last_commit,
    CHAIN.sign_commit(BLOCKS[1], absent=[1, 3]),
    Commit(5, 1, _last_block_id, (CommitSig(CommitFlag.NIL, BLOCK_INTERVAL_NS, bytes(range(64))),
                                  CommitSig(CommitFlag.ABSENT, 0, b""))),
    Commit(0, 0, bytes(32), ()),
]
VOTES = [signed_vote(VoteType.PREVOTE, BLOCKS[0].block_id()), signed_vote(VoteType.PRECOMMIT, b"", 2)]
PROPOSALS = [signed_proposal(BLOCKS[0].block_id(), None), signed_proposal(BLOCKS[2].block_id(), 1)]
OBJECTS: list[Any] = [
    *[decode(Tx, raw) for raw in VALID_TXS], *BLOCKS, *[b.header for b in BLOCKS], *COMMITS, *VOTES,
    *PROPOSALS, *EVIDENCE,
]
MESSAGES: list[Message] = [
    ProposalMessage(PROPOSALS[0], BLOCKS[0]), ProposalMessage(PROPOSALS[1], BLOCKS[2]),
    VoteMessage(VOTES[0]), VoteMessage(VOTES[1]), BlockMessage(BLOCKS[1]),
    TimeoutRecord(Timeout.PROPOSE, 0), TimeoutRecord(Timeout.PRECOMMIT, 2**64 - 1),
]
ANNOUNCEMENTS = [Announcement(BLOCKS[0].header, COMMITS[0]), Announcement(BLOCKS[1].header, COMMITS[1])]
STATUSES = [
    Status(CHAIN_ID, bytes(range(32)), 12, ("/ip4/127.0.0.1/tcp/26656/p2p/QmPeer",), ()),
    Status("c" * 50, bytes(32), 2**64 - 1, tuple(f"/dns/p{i}/tcp/1/p2p/Q{i}" for i in range(16)),
           tuple("x" * 200 for _ in range(16))),
]
ORIGIN = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
TX_GOSSIP: list[txgossip.Message] = [
    txgossip.Batch(ORIGIN, VALID_TXS[:1]), txgossip.Batch("o", VALID_TXS),
    txgossip.Batch("x" * txgossip.MAX_ORIGIN, [b"", b"\x00" * 300]), txgossip.Have(ORIGIN), txgossip.Reset()]

_STATE = MemoryState()
_STATE.commit({b"\x01" + bytes([i]) * 20: bytes([i]) * (i + 1) for i in range(40)})
SNAPSHOT, CHUNKS = build_snapshot(9, _STATE.app_hash, list(_STATE.items()))
LIGHT_BLOCKS = [LightBlock(BLOCKS[0].header, COMMITS[1], tuple(CHAIN.members(1)))]

VALID: list[bytes] = sorted({
    *VALID_TXS, *(encode(o) for o in OBJECTS), *(encode_message(m) for m in MESSAGES),
    *(dumps([PROPOSAL_BY_ID, p.to_cbor()]) for p in PROPOSALS), *(a.encode() for a in ANNOUNCEMENTS),
    *(dumps([COMPACT_PROPOSAL, PROPOSALS[0].to_cbor(), CompactBlock.of(b).block.to_cbor()]) for b in BLOCKS),
    *(s.encode() for s in STATUSES), *(txgossip.encode_message(m) for m in TX_GOSSIP),
    SNAPSHOT.encode(), dumps(SNAPSHOT.descriptor().to_cbor()), *CHUNKS, *(b.encode() for b in LIGHT_BLOCKS),
}, key=len)
"""Valid encodings of every kind the decoders read."""


# --- the decoders -------------------------------------------------------------------------


def _reencode_message(message: Any) -> bytes:
    if isinstance(message, Proposal):
        return dumps([PROPOSAL_BY_ID, message.to_cbor()])
    if isinstance(message, CompactProposal):
        return dumps([COMPACT_PROPOSAL, message.proposal.to_cbor(), message.compact.block.to_cbor()])
    return encode_message(message)


@dataclass(frozen=True)
class Decoder:
    name: str
    decode: Callable[[bytes], Any]
    error: type[BizraError]
    encode: Callable[[Any], bytes]
    canonical: bool = True
    """Whether what it accepts re-encodes to the very bytes it was given."""


DECODERS = [
    Decoder("decode_tx", lambda raw: decode_tx(raw, PARAMS), InvalidTx, encode),
    *(Decoder(cls.__name__, lambda raw, cls=cls: decode(cls, raw), DecodeError, encode)  # type: ignore[misc]
      for cls in (Tx, Vote, Proposal, Commit, DuplicateVoteEvidence, Header, Block)),
    Decoder("decode_message", decode_message, DecodeError, encode_message, canonical=False),
    Decoder("decode_gossip", decode_gossip, DecodeError, _reencode_message, canonical=False),
    Decoder("txgossip.decode_message", txgossip.decode_message, DecodeError, txgossip.encode_message),
    Decoder("Announcement.decode", Announcement.decode, DecodeError, Announcement.encode),
    Decoder("Status.decode", Status.decode, DecodeError, Status.encode),
    Decoder("Manifest.decode", Manifest.decode, DecodeError, Manifest.encode),
    Decoder("Descriptor.from_cbor", lambda raw: Descriptor.from_cbor(loads_canonical(raw, "descriptor")),
            DecodeError, lambda d: dumps(d.to_cbor())),
    Decoder("decode_chunk", decode_chunk, DecodeError, encode_chunk),
    Decoder("LightBlock.from_cbor", lambda raw: LightBlock.from_cbor(loads_canonical(raw, "light block")),
            DecodeError, LightBlock.encode),
]


def decode_everywhere(raw: bytes) -> list[str]:
    """Feed ``raw`` to every decoder: each raises its own error (with a message) or
    returns what re-encodes to ``raw`` (for consensus messages, to bytes that decode to
    the same message). The names of the decoders that accepted it."""
    accepted = []
    for decoder in DECODERS:
        try:
            value = decoder.decode(raw)
        except decoder.error as exc:
            assert str(exc), decoder.name
            continue
        except Exception as exc:
            raise AssertionError(f"{decoder.name} raised {type(exc).__name__}: {exc} on {raw.hex()}") from exc
        again = decoder.encode(value)
        if decoder.canonical:
            assert again == raw, f"{decoder.name} accepted a non-canonical encoding {raw.hex()}"
        else:
            assert decoder.decode(again) == value, decoder.name
        accepted.append(decoder.name)
    return accepted


# --- strategies ---------------------------------------------------------------------------


def head(major: int, n: int) -> bytes:
    """The canonical CBOR head of major type ``major`` carrying ``n``."""
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError(n)


INTERESTING_TAGS = [0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 32, 33, 34, 35, 36,
                    37, 100, 256, 258, 259, 260, 261, 262, 263, 1004, 21065, 55799]
_cbor_tokens = st.one_of(
    st.builds(head, st.integers(0, 5), st.one_of(st.integers(0, 30), st.integers(0, 2**64 - 1))),
    st.sampled_from(INTERESTING_TAGS).map(lambda tag: head(6, tag)),
    st.binary(min_size=1, max_size=12),
    st.sampled_from([b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf8\x20", b"\xf9\x7e\x00", b"\xfb" + bytes(8),
                     b"\xff", b"\x9f", b"\xbf", b"\x5f", b"\x7f", b"\x1c"]),
    st.text(max_size=10).map(lambda t: head(3, len(t.encode())) + t.encode()),
)
cbor_streams = st.lists(_cbor_tokens, min_size=1, max_size=16).map(b"".join)
"""Byte strings built from CBOR heads of every major type, tags, reserved and
indefinite-length heads, breaks and raw bytes: nested items, tagged items (shared
references, MIME, regexps, dates, bignums...), and everything malformed in between."""
SHARED_CYCLE = bytes.fromhex("d81c81d81d00")
"""Tag 28 (shareable) around an array holding tag 29 (a reference to it): a list that
contains itself."""
MIME_NULL = bytes.fromhex("d824f6")
"""Tag 36 (a MIME message) around null."""

u64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2, 3, 4, 2**63, 2**64 - 1]))
fields = st.one_of(
    u64,
    st.sampled_from([-1, 2**64, True, False, None, 0.0, 1.0, "", b"", [], {}]),
    st.binary(min_size=20, max_size=20), st.binary(min_size=32, max_size=32),
    st.binary(min_size=64, max_size=64), st.binary(max_size=70), st.text(max_size=60),
    st.sampled_from(["m" * 64, "m" * 65, "é" * 32, "é" * 32 + "m", "c" * 50, "c" * 51]),
    st.lists(u64, max_size=6),
)
"""Single CBOR values, often of the type and size some field wants."""
cbor_values = st.recursive(
    st.one_of(fields, st.integers(), st.floats()),
    lambda c: st.one_of(st.lists(c, max_size=6),
                        st.dictionaries(st.one_of(st.integers(), st.text(max_size=5)), c, max_size=3)),
    max_leaves=24,
)
"""Values cbor2 can encode: what a well-formed but arbitrary message holds."""


def _paths(tree: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out = [path]
    if isinstance(tree, list):
        for i, item in enumerate(tree):
            out.extend(_paths(item, (*path, i)))
    return out


def _edit(tree: Any, path: tuple[int, ...], change: Callable[[list[Any], int], None]) -> Any:
    """A copy of ``tree`` with ``change(parent, index)`` applied at ``path``."""
    if len(path) == 1:
        copy = list(tree)
        change(copy, path[0])
        return copy
    copy = list(tree)
    copy[path[0]] = _edit(copy[path[0]], path[1:], change)
    return copy


@st.composite
def edited_trees(draw: st.DrawFn) -> Any:
    """A valid object's CBOR tree with one item replaced (by a field-like value or any
    CBOR value), removed, duplicated, or wrapped in an array; or a new item appended."""
    tree = loads_canonical(draw(st.sampled_from(VALID)), "valid")
    paths = [p for p in _paths(tree) if p]
    if not paths:
        return draw(cbor_values)
    path = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(["replace", "replace", "remove", "duplicate", "wrap", "append"]))
    if op == "replace":
        new = draw(st.one_of(fields, cbor_values))

        def change(parent: list[Any], i: int) -> None:
            parent[i] = new
    elif op == "remove":
        def change(parent: list[Any], i: int) -> None:
            del parent[i]
    elif op == "duplicate":
        def change(parent: list[Any], i: int) -> None:
            parent.insert(i, parent[i])
    elif op == "wrap":
        def change(parent: list[Any], i: int) -> None:
            parent[i] = [parent[i]]
    else:
        extra = draw(fields)

        def change(parent: list[Any], i: int) -> None:
            parent.append(extra)
    return _edit(tree, path, change)


# --- the tests ----------------------------------------------------------------------------


def test_every_valid_encoding_round_trips() -> None:
    """Each valid object, message, announcement, status and batch decodes with its own
    decoder and encodes again to the same bytes."""
    for raw in VALID_TXS:
        assert "decode_tx" in decode_everywhere(raw)
    for obj in OBJECTS:
        assert type(obj).__name__ in decode_everywhere(encode(obj))
    for message in MESSAGES:
        assert decode_message(encode_message(message)) == message
        decode_everywhere(encode_message(message))
    for proposal in PROPOSALS:
        assert decode_gossip(dumps([PROPOSAL_BY_ID, proposal.to_cbor()])) == proposal
        for block in BLOCKS:
            compact = CompactBlock.of(block)
            raw = dumps([COMPACT_PROPOSAL, proposal.to_cbor(), compact.block.to_cbor()])
            assert decode_gossip(raw) == CompactProposal(proposal, compact)
    for announcement in ANNOUNCEMENTS:
        assert Announcement.decode(announcement.encode()) == announcement
    for status in STATUSES:
        assert Status.decode(status.encode()) == status
    for gossip in TX_GOSSIP:
        assert txgossip.decode_message(txgossip.encode_message(gossip)) == gossip


@fuzz(500)
@given(st.binary(max_size=400))
def test_random_bytes_get_only_the_documented_errors(raw: bytes) -> None:
    """Random bytes: every decoder refuses them with its documented error or accepts
    exactly its canonical encoding."""
    decode_everywhere(raw)


@fuzz(300)
@given(cbor_streams)
@example(SHARED_CYCLE)
@example(MIME_NULL)
@example(b"\x81" * 100_000 + b"\x00")
@example(b"\x9f" * 100_000)
@example(b"\xa1\x00" * 50_000 + b"\x00")
@example(b"\xd8\x1c" * 50_000 + b"\x00")
@example(b"\x9b" + b"\xff" * 8)
@example(b"\x5b\x7f" + b"\xff" * 7)
def test_cbor_item_streams_get_only_the_documented_errors(raw: bytes) -> None:
    """Sequences of CBOR heads, tags, breaks and raw bytes, and deeply nested or huge
    items: only the documented errors."""
    decode_everywhere(raw)


@fuzz(200)
@given(cbor_values)
def test_any_cbor_value_gets_only_the_documented_errors(value: Any) -> None:
    """The encoding of any CBOR value (maps, floats, negative and huge integers,
    nested arrays): only the documented errors."""
    decode_everywhere(cbor2.dumps(value))


@fuzz(800)
@given(mutations(VALID))
def test_mutated_valid_encodings_are_refused_or_re_encode_exactly(raw: bytes) -> None:
    """Valid encodings of every kind with bits flipped, bytes changed, cut, extended,
    deleted, inserted or repeated: only the documented errors, and what is accepted is
    canonical."""
    decode_everywhere(raw)


@fuzz(800)
@given(edited_trees().map(dumps))
def test_valid_objects_with_one_item_changed_are_refused_or_re_encode_exactly(raw: bytes) -> None:
    """Valid objects whose CBOR tree has one item replaced, removed, duplicated or
    wrapped, or one too many: only the documented errors, and what is accepted is
    canonical."""
    decode_everywhere(raw)


TYPES: list[Any] = [Tx, Vote, Proposal, Commit, DuplicateVoteEvidence, Header, Block]


@fuzz(200)
@given(st.one_of(edited_trees(), cbor_values))
def test_from_cbor_of_any_value_is_the_object_it_writes_or_a_decode_error(value: Any) -> None:
    """``from_cbor`` of every consensus type, given any decoded CBOR value (valid trees
    with an item changed, random values): a DecodeError, or the object whose
    ``to_cbor()`` is that value."""
    for cls in TYPES:
        try:
            obj = cls.from_cbor(value)
        except DecodeError as exc:
            assert str(exc)
            continue
        assert obj.to_cbor() == value, cls.__name__


@fuzz(300)
@given(st.lists(st.sampled_from(VALID_TXS), min_size=1, max_size=40), st.data())
def test_a_batch_of_valid_txs_round_trips_and_loses_none(txs: list[bytes], data: st.DataObject) -> None:
    """A batch of any valid txs decodes to the same txs; cut anywhere it is refused."""
    raw = txgossip.encode_message(txgossip.Batch(ORIGIN, txs))
    assert txgossip.decode_message(raw) == txgossip.Batch(ORIGIN, txs)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        txgossip.decode_message(raw[:cut])


@fuzz(200)
@given(st.data())
def test_oversized_txs_are_refused_before_decoding(data: st.DataObject) -> None:
    """A tx above max_tx_bytes is refused with InvalidTx whatever it holds."""
    raw = data.draw(st.sampled_from(VALID_TXS))
    padding = bytes(PARAMS.max_tx_bytes - len(raw)) + data.draw(st.binary(min_size=1, max_size=64))
    with pytest.raises(InvalidTx, match="max_tx_bytes"):
        decode_tx(raw + padding, PARAMS)


NON_INTEGER_KINDS = [
    dumps([True, VOTES[0].to_cbor()]),
    dumps([1.0, VOTES[0].to_cbor()]),
    dumps([False, PROPOSALS[0].to_cbor(), BLOCKS[0].to_cbor()]),
    dumps([4.0, PROPOSALS[0].to_cbor()]),
    dumps([2.0, BLOCKS[1].to_cbor()]),
]


@pytest.mark.parametrize("raw", NON_INTEGER_KINDS, ids=lambda raw: raw[1:2].hex())
def test_a_consensus_message_whose_kind_is_not_an_integer_is_refused(raw: bytes) -> None:
    """A consensus message is canonical CBOR decoded strictly: a kind written as a
    boolean or a float is not the integer kind, so the message is refused."""
    with pytest.raises(DecodeError):
        decode_gossip(raw)


# --- the bounds of §3.8 and the fee rule --------------------------------------------------

monikers = st.one_of(
    st.text(max_size=70),
    st.text(alphabet=st.sampled_from("mé☃𝄞"), min_size=14, max_size=34),
    st.integers(0, 80).map(lambda n: "m" * n),
)
"""Monikers around 64 bytes of UTF-8, of one- to four-byte characters."""


@fuzz(300)
@given(monikers, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_a_moniker_decodes_exactly_when_it_is_at_most_64_bytes(moniker: str, nonce: int, fee: int) -> None:
    raw = encode(Tx(USER.public_key, nonce, fee, ValidatorRegister(key(80).public_key, moniker), bytes(64)))
    size = len(moniker.encode())
    try:
        tx = decode(Tx, raw)
    except DecodeError as exc:
        assert size > MAX_MONIKER_BYTES
        assert str(exc) == f"validator_register.moniker: {size} bytes of UTF-8, longer than 64"
        with pytest.raises(InvalidTx, match=r"validator_register\.moniker"):
            decode_tx(raw, PARAMS)
        return
    assert size <= MAX_MONIKER_BYTES and tx.body == ValidatorRegister(key(80).public_key, moniker)


@fuzz(300)
@given(st.sampled_from(VALID_TXS), st.integers(0, 5_000), st.integers(0, 50), st.integers(-300, 300),
       st.data())
def test_a_tx_passes_exactly_when_its_fee_pays_for_its_bytes(raw: bytes, min_fee: int, per_byte: int,
                                                               offset: int, data: st.DataObject) -> None:
    """Any params, a fee around what the tx is due: decode_tx accepts it exactly when
    ``fee >= min_fee + fee_per_byte × len(encoding)``, and names both numbers when not."""
    params = dataclasses.replace(PARAMS, min_fee=min_fee, fee_per_byte=per_byte)
    tx = decode(Tx, raw)
    fee = max(0, min_fee + per_byte * len(raw) + offset)
    fee = data.draw(st.sampled_from([fee, fee + 1, max(0, fee - 1)]))
    again = encode(dataclasses.replace(tx, fee=fee))
    due = min_fee + per_byte * len(again)
    assert fee_due(params, len(again)) == due
    try:
        decode_tx(again, params)
    except InvalidTx as exc:
        assert fee < due
        assert str(exc).startswith(f"fee {fee} is below {due}: ")
        return
    assert fee >= due


LIMITS: dict[str, Any] = {"BLOCK_TXS_LIMIT": 3, "BLOCK_EVIDENCE_LIMIT": 2, "VALIDATORS_LIMIT": 4,
                          "TX_BYTES_LIMIT": 200}
"""Small stand-ins for the list and tx bounds, so that lists around them are cheap."""


@fuzz(200)
@given(st.sampled_from(BLOCKS),
       st.lists(st.sampled_from([*VALID_TXS, b"", bytes(200), bytes(201)]), max_size=6),
       st.lists(st.sampled_from(EVIDENCE), max_size=5),
       st.lists(st.sampled_from(COMMITS[0].signatures), max_size=7))
def test_lists_and_txs_decode_exactly_within_their_bounds(block: Block, txs: list[bytes],
                                                          evidence: list[DuplicateVoteEvidence],
                                                          sigs: list[CommitSig]) -> None:
    """A block's txs (their number and each one's length), its evidence and its commit's
    signatures: each decodes exactly when it is within its bound, and the first that is
    not is named."""
    commit = dataclasses.replace(COMMITS[0], signatures=tuple(sigs))
    raw = encode(dataclasses.replace(block, txs=tuple(txs), evidence=tuple(evidence), last_commit=commit))
    long_tx = next((i for i, t in enumerate(txs) if len(t) > LIMITS["TX_BYTES_LIMIT"]), None)
    expected = (
        "block.txs: " if len(txs) > LIMITS["BLOCK_TXS_LIMIT"] else
        f"block.txs[{long_tx}]: " if long_tx is not None else
        "block.evidence: " if len(evidence) > LIMITS["BLOCK_EVIDENCE_LIMIT"] else
        "commit.signatures: " if len(sigs) > LIMITS["VALIDATORS_LIMIT"] else None
    )
    with mock.patch.multiple(chain.types, **LIMITS):
        try:
            decoded = decode(Block, raw)
        except DecodeError as exc:
            assert expected is not None and str(exc).startswith(expected), (str(exc), expected)
            return
    assert expected is None and encode(decoded) == raw
