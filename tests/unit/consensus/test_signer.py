"""The signer's double-sign guard: it never signs two different messages for one height,
round and step, and never goes back, across crashes at any point of its write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.commits import proposal_sign_bytes, vote_sign_bytes
from chain.crypto import PrivateKey, address_of, verify
from chain.types import Proposal, Vote, VoteType, sha256
from consensus import signer as signer_module
from consensus.signer import DoubleSignError, FileSigner, SignerStateError

CHAIN = "bizra-devnet-1"
KEY = PrivateKey.from_seed(sha256(b"signer test"))
ADDRESS = address_of(KEY.public_key)
A, B = sha256(b"A"), sha256(b"B")


def vote(h: int, r: int, vote_type: VoteType = VoteType.PREVOTE, block_id: bytes = A,
         ts: int = 1) -> Vote:
    return Vote(vote_type, h, r, block_id, ts, ADDRESS, 0, b"")


def proposal(h: int, r: int, block_id: bytes = A, ts: int = 1) -> Proposal:
    return Proposal(h, r, None, block_id, ts, b"")


def test_signatures_verify(tmp_path: Path) -> None:
    signer = FileSigner(KEY, tmp_path / "state.json", CHAIN)
    signed = signer.sign_proposal(proposal(1, 0))
    assert verify(KEY.public_key, proposal_sign_bytes(CHAIN, proposal(1, 0)), signed.signature)
    assert signed.timestamp_ns == 1
    signed_vote = signer.sign_vote(vote(1, 0))
    assert signed_vote.timestamp_ns == 1
    assert verify(KEY.public_key, vote_sign_bytes(CHAIN, vote(1, 0)), signed_vote.signature)


@pytest.mark.parametrize(("second", "why"), [
    (vote(5, 2, block_id=B), "already signed a different message"),
    (vote(5, 2, block_id=b""), "already signed a different message"),
    (vote(5, 1), "would go back"),
    (vote(4, 9, VoteType.PRECOMMIT), "would go back"),
])
def test_conflicts_and_regressions_are_refused(tmp_path: Path, second: Vote, why: str) -> None:
    signer = FileSigner(KEY, tmp_path / "state.json", CHAIN)
    signer.sign_vote(vote(5, 2))
    with pytest.raises(DoubleSignError, match=why):
        signer.sign_vote(second)


def test_a_proposal_after_a_prevote_of_the_round_is_refused(tmp_path: Path) -> None:
    signer = FileSigner(KEY, tmp_path / "state.json", CHAIN)
    signer.sign_vote(vote(5, 2))
    with pytest.raises(DoubleSignError, match="height 5 round 2 step proposal would go back"):
        signer.sign_proposal(proposal(5, 2))


def test_the_same_message_gets_the_same_signature(tmp_path: Path) -> None:
    signer = FileSigner(KEY, tmp_path / "state.json", CHAIN)
    first = signer.sign_vote(vote(3, 0, VoteType.PRECOMMIT))
    assert signer.sign_vote(vote(3, 0, VoteType.PRECOMMIT)) == first


def test_a_step_asked_again_with_a_new_timestamp_gets_the_earlier_message(tmp_path: Path) -> None:
    """A validator killed after signing but before its WAL had the vote asks again on
    restart, with its clock's new time: it gets the vote it signed (CometBFT's FilePV)."""
    path = tmp_path / "state.json"
    first = FileSigner(KEY, path, CHAIN).sign_vote(vote(3, 0, ts=100))
    again = FileSigner(KEY, path, CHAIN).sign_vote(vote(3, 0, ts=250))
    assert again == first
    assert again.timestamp_ns == 100
    proposed = FileSigner(KEY, path, CHAIN).sign_proposal(proposal(4, 0, ts=300))
    assert FileSigner(KEY, path, CHAIN).sign_proposal(proposal(4, 0, ts=400)) == proposed
    with pytest.raises(DoubleSignError, match="already signed a different message"):
        FileSigner(KEY, path, CHAIN).sign_proposal(proposal(4, 0, B, ts=300))


requests = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2), st.sampled_from(["proposal", "prevote",
                                                                                      "precommit"]),
                              st.sampled_from([A, B, b""]), st.integers(1, 3)), max_size=30)


@given(requests)
def test_no_request_sequence_gets_two_signatures_for_one_step(
        tmp_path_factory: pytest.TempPathFactory, reqs: list[tuple[int, int, str, bytes, int]]) -> None:
    path = tmp_path_factory.mktemp("signer") / "state.json"
    signer = FileSigner(KEY, path, CHAIN)
    signed: dict[tuple[int, int, int], bytes] = {}
    last = (0, 0, 0)
    for n, (h, r, kind, block_id, ts) in enumerate(reqs):
        if n % 7 == 6:
            signer = FileSigner(KEY, path, CHAIN)  # a restart
        step = {"proposal": 1, "prevote": 2, "precommit": 3}[kind]
        try:
            if kind == "proposal":
                p = signer.sign_proposal(proposal(h, r, block_id or A, ts))
                message = proposal_sign_bytes(CHAIN, p)
                assert verify(KEY.public_key, message, p.signature)
            else:
                vote_type = VoteType.PREVOTE if kind == "prevote" else VoteType.PRECOMMIT
                v = signer.sign_vote(vote(h, r, vote_type, block_id, ts))
                message = vote_sign_bytes(CHAIN, v)
                assert verify(KEY.public_key, message, v.signature)
        except DoubleSignError:
            continue
        assert signed.setdefault((h, r, step), message) == message
        assert (h, r, step) >= last
        last = (h, r, step)


class Crash(BaseException):
    """The process dies here."""


def test_a_crash_after_the_state_is_written_keeps_the_guard(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    signer = FileSigner(KEY, path, CHAIN)

    def crash(directory: Path) -> None:
        raise Crash

    monkeypatch.setattr(signer_module, "_fsync_dir", crash)
    with pytest.raises(Crash):
        signer.sign_vote(vote(7, 0))  # the state is renamed into place, the signature never returned
    monkeypatch.undo()
    restarted = FileSigner(KEY, path, CHAIN)
    with pytest.raises(DoubleSignError):
        restarted.sign_vote(vote(7, 0, block_id=B))
    with pytest.raises(DoubleSignError):
        restarted.sign_vote(vote(7, 0, block_id=b""))
    signed = restarted.sign_vote(vote(7, 0))
    assert verify(KEY.public_key, vote_sign_bytes(CHAIN, vote(7, 0)), signed.signature)


def test_a_crash_before_the_rename_leaves_the_old_state(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    FileSigner(KEY, path, CHAIN).sign_vote(vote(6, 0))
    signer = FileSigner(KEY, path, CHAIN)

    def crash(src: str, dst: str) -> None:
        raise Crash

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(Crash):
        signer.sign_vote(vote(7, 0))
    monkeypatch.undo()
    assert (tmp_path / "state.json.tmp").exists()
    restarted = FileSigner(KEY, path, CHAIN)
    assert not (tmp_path / "state.json.tmp").exists()
    assert restarted.state.height == 6
    restarted.sign_vote(vote(7, 0, block_id=B))  # the first one never left the process


BAD_STATES = [
    b"", b"{", b"[]", b'{"height": 1}',
    b'{"height": -1, "round": 0, "step": 2, "sign_bytes": "", "signature": ""}',
    b'{"height": 1, "round": 0, "step": 9, "sign_bytes": "", "signature": ""}',
    b'{"height": 1, "round": 0, "step": 2, "sign_bytes": "zz", "signature": ""}',
    b'{"height": 1, "round": 0, "step": 2, "sign_bytes": "", "signature": "00"}',
]


@pytest.mark.parametrize("content", BAD_STATES)
def test_a_bad_state_file_is_refused_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(SignerStateError, match=str(path)):
        FileSigner(KEY, path, CHAIN)
    assert path.read_bytes() == content
