"""The committed state: its root follows the data, not the history, and proves it."""

from __future__ import annotations

import pytest

from chain.codec import dumps
from chain.crypto import address_of
from chain.errors import InvalidProof
from chain.ledger import Ledger
from chain.state import MemoryState
from chain.statekeys import account
from chain.statetree import verify_state_proof
from chain.types import Transfer

from chainkit import LocalChain, key


def test_same_data_written_in_another_order_has_the_same_root() -> None:
    chain = LocalChain()
    entries = list(chain.state.items())
    replay = MemoryState()
    for k, v in reversed(entries):
        replay.commit({k: v})
    assert replay.app_hash == chain.state.app_hash
    assert list(replay.items()) == entries


def test_a_wallet_can_prove_a_balance_and_an_unknown_address_against_app_hash() -> None:
    chain = LocalChain()
    alice = chain.users[0]
    chain.run([chain.tx(alice, Transfer(bytes(20), 7))])
    header_app_hash = chain.next_block().header.app_hash
    k = account(address_of(alice.public_key))
    value = chain.state.get(k)
    assert value is not None
    verify_state_proof(header_app_hash, k, value, chain.state.prove(k))
    stranger = account(address_of(key(77777).public_key))
    verify_state_proof(header_app_hash, stranger, None, chain.state.prove(stranger))
    with pytest.raises(InvalidProof):
        verify_state_proof(header_app_hash, k, value + b"\x00", chain.state.prove(k))
    with pytest.raises(InvalidProof):
        verify_state_proof(header_app_hash, stranger, b"\x82\x01\x00", chain.state.prove(stranger))
    with pytest.raises(InvalidProof):
        verify_state_proof(bytes(32), k, value, chain.state.prove(k))
    assert Ledger(chain.state).account(address_of(alice.public_key)).nonce == 1


def test_the_supply_reads_back_as_the_pair_it_was_set_to() -> None:
    """Within the block that sets it and after its commit alike, ``supply()`` is the
    ``(issued, slashed)`` pair its annotation promises, and it is stored as the array
    ``[issued, slashed]``."""
    state = MemoryState()
    ledger = Ledger(state)
    assert ledger.supply() == (0, 0)
    ledger.set_supply(5_000, 7)
    assert ledger.supply() == (5_000, 7)
    changes = ledger.diff()
    assert list(changes.values()) == [dumps([5_000, 7])]
    state.commit(changes)
    assert Ledger(state).supply() == (5_000, 7)
