"""The expiry index (§5.3, §6.3, §6.4): each attestation writes one key under the prefix
of the epoch it expires at the end of; that epoch's end iterates the prefix, expires
what is still pending and deletes the keys."""

from __future__ import annotations

from chain import statekeys as keys
from chain.crypto import address_of
from chain.ledger import Ledger
from chain.params import Params
from chain.poi import (
    ATTESTATION_EXPIRED,
    ATTESTATION_FINALIZED,
    ATTESTATION_PENDING,
    expiry_epoch,
)
from chain.state import MemoryState
from chain.transition import BlockOutcome, Code, attestation_id
from chain.types import PoiAttest, PoiEndorse

from chainkit import LocalChain
from reference import expiry_list_key, expiry_lists

MARK = b"\x00"


def expiry_changes(outcome: BlockOutcome) -> dict[bytes, bytes | None]:
    return {k: v for k, v in outcome.changes.items() if k[0] == keys.EXPIRY}


def attest_all(chain: LocalChain, users: range,
               root: bytes = b"\x07" * 32) -> tuple[int, list[bytes], BlockOutcome]:
    """One block in which each of ``users`` attests ``root``; the epoch, the ids, the outcome."""
    epoch = chain.config.params.epoch_of(chain.height + 1)
    body = PoiAttest(epoch, root, (1_000_000,) * 5, 0)
    out = chain.run([chain.tx(chain.users[u], body) for u in users])
    assert [r.code for r in out.results] == [Code.OK] * len(users)
    return epoch, [r.data for r in out.results], out


def test_the_expiry_keys_sort_by_epoch_then_id() -> None:
    assert keys.expiry_prefix(3) == b"\x07" + (3).to_bytes(8, "big")
    assert keys.expiry(3, b"\xaa" * 32) == keys.expiry_prefix(3) + b"\xaa" * 32
    assert keys.expiry(2, b"\xff" * 32) < keys.expiry(3, bytes(32)) < keys.expiry(3, b"\x01" * 32)
    assert [expiry_epoch(5, ttl) for ttl in (0, 1, 2, 3)] == [5, 5, 6, 7]


def test_an_attestation_writes_one_key_and_leaves_the_others_alone() -> None:
    chain = LocalChain(params=Params(epoch_length=10, attestation_ttl_epochs=2))
    epoch, (first,), out = attest_all(chain, range(1))
    assert expiry_changes(out) == {keys.expiry(epoch + 1, first): MARK}
    # Five more in the next block, seven in the one after: one key each, and nothing
    # else under the prefix is written again, however many it holds.
    _, five, out = attest_all(chain, range(1, 6))
    assert expiry_changes(out) == {keys.expiry(epoch + 1, i): MARK for i in five}
    _, seven, out = attest_all(chain, range(7), root=b"\x08" * 32)
    assert expiry_changes(out) == {keys.expiry(epoch + 1, i): MARK for i in seven}
    ledger = Ledger(chain.state)
    assert ledger.expiring(epoch + 1) == sorted([first, *five, *seven])
    assert ledger.expiring(epoch) == [] and ledger.expiring(epoch + 2) == []


def test_the_list_form_rewrote_the_whole_epoch_for_each_attestation() -> None:
    """The list form, for comparison: the seventh attestation of an epoch writes a value
    holding all seven ids."""
    chain = LocalChain(params=Params(epoch_length=10, attestation_ttl_epochs=2))
    with expiry_lists():
        epoch, _, _ = attest_all(chain, range(6))
        _, _, out = attest_all(chain, range(6, 7))
    (value,) = expiry_changes(out).values()
    assert list(expiry_changes(out)) == [expiry_list_key(epoch + 1)]
    assert value is not None and len(value) > 7 * 32


def test_the_epoch_end_expires_the_pending_and_deletes_its_keys() -> None:
    chain = LocalChain(params=Params(epoch_length=6, attestation_ttl_epochs=1))
    epoch, ids, _ = attest_all(chain, range(3))
    decided = ids[0]
    out = chain.run([chain.tx(chain.operator_keys[i], PoiEndorse(decided, 1_000_000)) for i in range(3)])
    assert [r.code for r in out.results] == [Code.OK] * 3
    ledger = Ledger(chain.state)
    assert ledger.attestation(decided).status == ATTESTATION_FINALIZED  # type: ignore[union-attr]
    while not out.epoch_ended:
        out = chain.run()
    # Every key of the epoch goes, in the epoch end's own block; nothing else in the index.
    assert expiry_changes(out) == {keys.expiry(epoch, i): None for i in ids}
    ledger = Ledger(chain.state)
    assert [ledger.attestation(i).status for i in ids] == [  # type: ignore[union-attr]
        ATTESTATION_FINALIZED, ATTESTATION_EXPIRED, ATTESTATION_EXPIRED]
    assert list(chain.state.iter_prefix(bytes((keys.EXPIRY,)))) == []


def test_an_attestation_in_an_epochs_last_block_with_one_epoch_to_live_expires_there() -> None:
    chain = LocalChain(params=Params(epoch_length=4, attestation_ttl_epochs=1))
    while not chain.config.params.is_epoch_end(chain.height + 1):
        chain.run()
    epoch, (att,), out = attest_all(chain, range(1))
    assert out.epoch_ended
    assert expiry_changes(out) == {keys.expiry(epoch, att): None}  # written and gone
    assert Ledger(chain.state).attestation(att).status == ATTESTATION_EXPIRED  # type: ignore[union-attr]


def test_later_epochs_keep_their_keys_through_an_epoch_end() -> None:
    chain = LocalChain(params=Params(epoch_length=4, attestation_ttl_epochs=3))
    epoch, ids, _ = attest_all(chain, range(2))
    out = chain.run()
    while not out.epoch_ended:
        out = chain.run()
    assert expiry_changes(out) == {}
    ledger = Ledger(chain.state)
    assert ledger.expiring(epoch + 2) == sorted(ids)
    assert all(ledger.attestation(i).status == ATTESTATION_PENDING for i in ids)  # type: ignore[union-attr]
    contributor = address_of(chain.users[0].public_key)
    assert attestation_id(contributor, epoch, b"\x07" * 32) in ids


def test_the_ledger_reads_the_index_with_the_blocks_own_changes() -> None:
    state = MemoryState()
    ledger = Ledger(state)
    a, b, c = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32
    ledger.add_expiry(4, b)
    ledger.add_expiry(4, a)
    ledger.add_expiry(5, c)
    state.commit(ledger.diff())
    ledger = Ledger(state)
    assert ledger.expiring(4) == [a, b] and ledger.expiring(5) == [c]
    ledger.add_expiry(4, c)
    ledger.remove_expiry(4, a)
    assert ledger.expiring(4) == [b, c]
    assert ledger.diff() == {keys.expiry(4, c): MARK, keys.expiry(4, a): None}
