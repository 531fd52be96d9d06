"""SEED is conserved: over random tx sequences the supply changes only by epoch issuance
and slashing, and both are accounted for exactly."""

from __future__ import annotations

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import address_of
from chain.ledger import Ledger
from chain.params import Params
from chain.state import MemoryState
from chain.statekeys import ACCOUNT, UNBONDING, VALIDATOR
from chain.types import (
    Account,
    Bond,
    DuplicateVoteEvidence,
    PoiAttest,
    PoiEndorse,
    Transfer,
    Unbond,
    Validator,
    ValidatorRegister,
)

from chainkit import SEED, LocalChain, key

USERS = 4

ops = st.lists(
    st.tuples(
        st.sampled_from(["transfer", "register", "bond", "unbond", "attest", "endorse",
                         "double_sign", "empty"]),
        st.integers(0, USERS - 1),
        st.integers(0, USERS - 1),
        st.integers(0, 3_000 * SEED),
    ),
    min_size=1,
    max_size=30,
)


def total_supply(state: MemoryState) -> int:
    total = 0
    for k, v in state.items():
        if k[0] == ACCOUNT:
            total += Account.from_cbor(cbor2.loads(v)).balance
        elif k[0] == VALIDATOR:
            total += Validator.from_cbor(cbor2.loads(v)).bond
        elif k[0] == UNBONDING:
            total += cbor2.loads(v)
    return total


@settings(max_examples=40, deadline=None)
@given(ops, st.integers(1, 4))
def test_supply_is_conserved_up_to_issuance_and_slashes(sequence, per_block) -> None:  # type: ignore[no-untyped-def]
    chain = LocalChain(users=USERS, params=Params(epoch_length=3, unbonding_epochs=1),
                       balance=5_000 * SEED)
    genesis_total = total_supply(chain.state)
    atts: list[bytes] = []
    issued_seen = 0
    slashed_expected = 0
    punished: set[tuple[int, int]] = set()
    pending: list[bytes] = []
    evidence: list[DuplicateVoteEvidence] = []
    for i, (op, a, b, amount) in enumerate(sequence):
        user, other = chain.users[a], chain.users[b]
        epoch = chain.config.params.epoch_of(chain.height + 1)
        if op == "transfer":
            pending.append(chain.tx(user, Transfer(address_of(other.public_key), amount)))
        elif op == "register":
            chain.add_signer(key(500 + a))
            pending.append(chain.tx(user, ValidatorRegister(key(500 + a).public_key, f"v{a}")))
        elif op == "bond":
            pending.append(chain.tx(user, Bond(amount)))
        elif op == "unbond":
            pending.append(chain.tx(user, Unbond(amount // 2)))
        elif op == "attest":
            pending.append(chain.tx(user, PoiAttest(epoch, i.to_bytes(32, "big"), (amount % 10**6,) * 5, 0)))
        elif (op == "double_sign" and chain.height >= 1 and (a, chain.height) not in punished
              and chain.validator_keys[a].public_key in [m.pubkey for m in chain.members(chain.height)]):
            ev = chain.double_sign(a, chain.height)
            punished.add((a, chain.height))
            operator = address_of(chain.operator_keys[a].public_key)
            bond = Ledger(chain.state).validator(operator).bond  # type: ignore[union-attr]
            slashed_expected += bond * chain.config.params.slash_fraction // 1_000_000
            evidence.append(ev)
        elif op == "endorse" and atts:
            for op_key in chain.operator_keys:
                pending.append(chain.tx(op_key, PoiEndorse(atts[-1], 990_000)))
        if len(pending) >= per_block or evidence or op == "empty" or i == len(sequence) - 1:
            before = Ledger(chain.state).supply()
            out = chain.apply(chain.next_block(pending, evidence))
            pending, evidence = [], []
            atts.extend(r.data for r in out.results if len(r.data) == 32)
            issued, slashed = Ledger(chain.state).supply()
            issued_seen += issued - before[0]
            assert slashed == slashed_expected
            assert total_supply(chain.state) == genesis_total + issued_seen - slashed_expected
    # push through an epoch end so that rewards and unbondings are paid
    for _ in range(4):
        chain.run()
    issued, slashed = Ledger(chain.state).supply()
    assert slashed == slashed_expected
    assert total_supply(chain.state) == genesis_total + issued - slashed
