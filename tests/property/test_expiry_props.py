"""Attestation expiry through the expiry index (one key per attestation under its expiry
epoch's prefix, §5.3) decides every epoch end exactly as one list per epoch does: over
random runs of attestations, endorsements and epoch ends, a chain with the index and a
chain with the lists (``reference.expiry_lists``) give the same tx results and the same
state but for the expiry keys, whose attestations are the same."""

from __future__ import annotations

import random
from collections import Counter

import cbor2
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chain.crypto import PrivateKey
from chain.ledger import Ledger
from chain.params import Params
from chain.poi import (
    ATTESTATION_EXPIRED,
    ATTESTATION_FINALIZED,
    ATTESTATION_PENDING,
    ATTESTATION_REJECTED,
)
from chain.state import MemoryState
from chain.statekeys import ATTESTATION, EXPIRY, META
from chain.transition import BlockOutcome, Code
from chain.types import Attestation, PoiAttest, PoiEndorse, TxBody

from chainkit import LocalChain
from reference import expiry_lists

EPOCH_LENGTH = 4
USERS = 6


def state_but_expiries(state: MemoryState) -> dict[bytes, bytes]:
    """Every key and value but the chain metadata (whose block id differs, as the state
    roots do) and the expiry keys."""
    return {k: v for k, v in state.items() if k[0] not in (META[0], EXPIRY)}


def index_expiries(state: MemoryState) -> dict[int, set[bytes]]:
    """The expiry index by epoch: ``0x07 || u64(epoch) || id``, each value the mark 0."""
    out: dict[int, set[bytes]] = {}
    for k, v in state.items():
        if k[0] == EXPIRY:
            assert len(k) == 1 + 8 + 32 and v == b"\x00"
            out.setdefault(int.from_bytes(k[1:9], "big"), set()).add(k[9:])
    return out


def list_expiries(state: MemoryState) -> dict[int, set[bytes]]:
    """The lists by epoch: ``0x07 || u64(epoch)`` → ``[id, …]``, no id twice."""
    out: dict[int, set[bytes]] = {}
    for k, v in state.items():
        if k[0] == EXPIRY:
            assert len(k) == 1 + 8
            ids = cbor2.loads(v)
            assert ids and len(set(ids)) == len(ids)
            out[int.from_bytes(k[1:], "big")] = set(ids)
    return out


def same_outcome(new: BlockOutcome, old: BlockOutcome) -> None:
    assert [(r.code, r.data, r.log) for r in new.results] == [(r.code, r.data, r.log) for r in old.results]
    assert (new.epoch_ended, new.slashed, new.results_hash) == (
        old.epoch_ended, old.slashed, old.results_hash)


def _body(rng: random.Random, chain: LocalChain, made: list[bytes]) -> tuple[PrivateKey, TxBody]:
    """A random attestation or endorsement: mostly valid, some failing their rule."""
    epoch = chain.config.params.epoch_of(chain.height + 1)
    roll = rng.random()
    if roll < 0.2:
        user = chain.users[rng.randrange(USERS)]
        dims = [rng.choice([0, 400_000, 950_000, 1_000_000]) for _ in range(5)]
        if rng.random() < 0.05:
            dims[rng.randrange(5)] = 1_000_001  # out of range
        wrong_epoch = rng.random() < 0.05
        root = bytes([rng.randrange(32)]) * 32  # few roots: some attestations are made twice
        return user, PoiAttest(epoch + wrong_epoch, root, (dims[0], dims[1], dims[2], dims[3], dims[4]),
                               rng.choice([0, 0, 100_000, 2_000_000]))
    if roll < 0.95 and made:
        operator = chain.operator_keys[rng.randrange(len(chain.operator_keys))]
        att = rng.choice(made[-3:])
        # An attestation's id decides how it tends to be judged: well, badly, or by one
        # validator at most (so that it expires).
        fate = att[0] % 3
        if fate == 2:
            operator = chain.operator_keys[0]
        good = fate == 0 or rng.random() < 0.1
        score = rng.choice([1_000_000, 990_000, 950_000] if good else [900_000, 500_000, 0])
        return operator, PoiEndorse(att, score)
    if roll < 0.975:
        return chain.users[rng.randrange(USERS)], PoiEndorse(rng.choice(made or [bytes(32)]), 1_000_000)
    return chain.operator_keys[0], PoiEndorse(bytes([rng.randrange(256)]) * 32, 1_000_000)


def run_both(seed: int, ttl: int, blocks: int = 40) -> Counter[int]:
    """Run the same random blocks on a chain with the expiry index and on one with the
    lists, comparing after every block; the statuses the attestations end with."""
    params = Params(epoch_length=EPOCH_LENGTH, attestation_ttl_epochs=ttl)
    new, old = LocalChain(users=USERS, params=params), LocalChain(users=USERS, params=params)
    rng = random.Random(seed)
    made: list[bytes] = []
    for _ in range(blocks):
        txs = [new.tx(*_body(rng, new, made)) for _ in range(rng.randrange(10))]
        out_new = new.run(txs)
        with expiry_lists():
            out_old = old.run(txs)
        same_outcome(out_new, out_old)
        made.extend(r.data for r in out_new.results if r.code == Code.OK and r.data)
        assert state_but_expiries(new.state) == state_but_expiries(old.state)
        meta_new, meta_old = Ledger(new.state).meta(), Ledger(old.state).meta()
        assert (meta_new.height, meta_new.time_ns, meta_new.results_hash) == (
            meta_old.height, meta_old.time_ns, meta_old.results_hash)
        assert index_expiries(new.state) == list_expiries(old.state)
        # Only attestations still to be decided by an epoch end are indexed.
        ended = params.epoch_of(meta_new.height) - (not params.is_epoch_end(meta_new.height))
        assert all(epoch > ended for epoch in index_expiries(new.state))
    return Counter(Attestation.from_cbor(cbor2.loads(v)).status
                   for k, v in new.state.items() if k[0] == ATTESTATION)


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 2, 3]))
@example(1, 1)
@example(2, 2)
def test_the_expiry_index_decides_epoch_ends_as_the_lists_do(seed: int, ttl: int) -> None:
    run_both(seed, ttl)


def test_the_compared_runs_finalize_reject_and_expire_attestations() -> None:
    """The runs compared above meet every outcome: attestations finalized, rejected,
    expired, and pending when the run stops."""
    seen: Counter[int] = Counter()
    for seed, ttl in ((1, 1), (2, 2), (3, 3)):
        seen += run_both(seed, ttl, blocks=48)
    assert all(seen[status] >= 3 for status in (ATTESTATION_FINALIZED, ATTESTATION_REJECTED,
                                               ATTESTATION_EXPIRED, ATTESTATION_PENDING)), seen

