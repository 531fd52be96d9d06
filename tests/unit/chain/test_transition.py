"""The state transition, as a chain's users see it: balances, validators, impact."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from chain import statekeys
from chain.codec import dumps
from chain.crypto import SignedItem, VerifiedCache, address_of, verify_many
from chain.errors import ForgedTx, InvalidBlock, InvalidTx
from chain.ledger import Ledger
from chain.params import Params
from chain.poi import (
    ATTESTATION_EXPIRED,
    ATTESTATION_FINALIZED,
    ATTESTATION_PENDING,
    ATTESTATION_REJECTED,
)
from chain.transition import (
    STOP_EVERY,
    Code,
    apply_block,
    attestation_id,
    check_tx_against_state,
    decode_tx,
    includable_evidence,
    includable_txs,
    verify_tx_signature,
)
from chain.types import (
    Block,
    Bond,
    PoiAttest,
    PoiEndorse,
    Transfer,
    Tx,
    Unbond,
    ValidatorRegister,
    decode,
    sha256,
    tx_hash,
)

from chainkit import SEED, LocalChain, key, sign_tx


def fee(raw: bytes) -> int:
    """The fee a tx names."""
    return decode(Tx, raw).fee


def balance(chain: LocalChain, who: bytes) -> int:
    return Ledger(chain.state).account(who).balance


def addr(k: object) -> bytes:
    return address_of(k.public_key)  # type: ignore[attr-defined]


def test_transfer_moves_funds_and_pays_the_fee_to_the_proposer() -> None:
    chain = LocalChain()
    alice, bob = chain.users[0], chain.users[1]
    proposer_operator = addr(chain.operator_keys[0])
    before = {a: balance(chain, a) for a in (addr(alice), addr(bob), proposer_operator)}
    raw = chain.tx(alice, Transfer(addr(bob), 5 * SEED))
    paid = fee(raw)
    assert paid == 1_000 + len(raw)  # min_fee + fee_per_byte × size, by default
    block = chain.next_block([raw])
    assert block.header.proposer_address == address_of(chain.members(1)[0].pubkey)
    outcome = chain.apply(block)
    assert [r.code for r in outcome.results] == [Code.OK]
    assert balance(chain, addr(alice)) == before[addr(alice)] - 5 * SEED - paid
    assert balance(chain, addr(bob)) == before[addr(bob)] + 5 * SEED
    assert balance(chain, proposer_operator) == before[proposer_operator] + paid
    assert Ledger(chain.state).account(addr(alice)).nonce == 1


@pytest.mark.parametrize(("everything", "code", "log"), [
    (True, Code.INSUFFICIENT_FUNDS, "less than"),  # the fee leaves too little
    (False, Code.ZERO_AMOUNT, "transfer of zero"),
])
def test_a_tx_failing_its_rule_is_included_and_charged(everything: bool, code: Code, log: str) -> None:
    chain = LocalChain()
    alice = chain.users[0]
    start = balance(chain, addr(alice))
    raw = chain.tx(alice, Transfer(addr(chain.users[1]), start if everything else 0))
    outcome = chain.run([raw])
    assert outcome.results[0].code == code
    assert log in outcome.results[0].log
    assert balance(chain, addr(alice)) == start - fee(raw)
    assert Ledger(chain.state).account(addr(alice)).nonce == 1


def test_a_transfer_to_oneself_costs_only_the_fee() -> None:
    chain = LocalChain()
    alice = chain.users[0]
    start = balance(chain, addr(alice))
    first = chain.tx(alice, Transfer(addr(alice), 5 * SEED))
    everything = chain.tx(alice, Transfer(addr(alice), start - fee(first) - 2 * 2_000))
    outcome = chain.run([first, everything])
    assert [r.code for r in outcome.results] == [Code.OK, Code.OK]
    assert balance(chain, addr(alice)) == start - fee(first) - fee(everything)
    assert Ledger(chain.state).account(addr(alice)).nonce == 2


@pytest.mark.parametrize(
    ("make_tx", "message"),
    [
        (lambda c: c.tx(c.users[0], Transfer(bytes(20), 1), nonce=5), "nonce"),
        (lambda c: c.tx(c.users[0], Transfer(bytes(20), 1), fee=1_000), "min_fee"),
        (lambda c: sign_tx("other-chain", c.users[0], 0, Transfer(bytes(20), 1)),
         "tx 1 has an invalid signature"),
        (lambda c: c.tx(c.users[0], Transfer(bytes(20), 1))[:-1] + b"\x00",
         "tx 1 has an invalid signature"),
        (lambda c: c.tx(key(999), Transfer(bytes(20), 1)), "cannot pay the fee"),
        (lambda c: b"\x83\x01\x02\x03", "tx"),
    ],
)
def test_a_block_with_an_invalid_tx_is_rejected_and_changes_nothing(make_tx, message) -> None:  # type: ignore[no-untyped-def]
    chain = LocalChain()
    root = chain.state.app_hash
    block = chain.next_block([chain.tx(chain.users[1], Transfer(bytes(20), 1)), make_tx(chain)])
    with pytest.raises(InvalidBlock, match=message):
        apply_block(chain.state, chain.state.app_hash, block, chain.config)
    assert chain.state.app_hash == root


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("height", 5, "height"),
        ("app_hash", bytes(32), "app_hash"),
        ("data_hash", bytes(32), "data_hash"),
        ("chain_id", "bizra-devnet-2", "chain id"),
        ("time_ns", 1, "time"),
        ("validators_hash", bytes(32), "validators_hash"),
        ("proposer_address", bytes(20), "proposer"),
        ("last_block_id", b"\x01" * 32, "last_block_id"),
    ],
)
def test_a_header_that_does_not_match_the_state_is_rejected(field: str, value: Any,
                                                            message: str) -> None:
    chain = LocalChain()
    chain.run()
    block = chain.next_block()
    bad = dataclasses.replace(block, header=dataclasses.replace(block.header, **{field: value}))
    with pytest.raises(InvalidBlock, match=message):
        apply_block(chain.state, chain.state.app_hash, bad, chain.config)


def test_a_block_of_other_txs_does_not_inherit_the_hashes_worked_out_for_its_source() -> None:
    """A block works out its tx hashes and data root once, and a block made from it with
    other txs (``dataclasses.replace``, as a compact block is rebuilt) works out its own:
    a body swapped under a header is still caught."""
    chain = LocalChain()
    txs = (chain.tx(chain.users[1], Transfer(bytes(20), 1)),)
    block = chain.next_block(txs)
    assert block.tx_hashes() == (sha256(txs[0]),)
    assert block.data_root() == block.header.data_hash
    swapped = dataclasses.replace(block, txs=(chain.tx(chain.users[2], Transfer(bytes(20), 1)),))
    assert swapped.tx_hashes() != block.tx_hashes()
    with pytest.raises(InvalidBlock, match="data_hash does not match the txs"):
        apply_block(chain.state, chain.state.app_hash, swapped, chain.config)
    # What a block has worked out is no part of its value.
    fresh = Block(block.header, block.txs, block.evidence, block.last_commit)
    assert fresh == block and hash(fresh) == hash(block)
    with pytest.raises(ValueError, match="2 tx hashes for 1 txs"):
        Block.hashed(block.header, txs, (sha256(txs[0]),) * 2, (), None)
    chain.apply(block)


def test_last_commit_needs_more_than_two_thirds() -> None:
    chain = LocalChain(validators=4)
    block = chain.next_block()
    chain.apply(block)
    chain.last_commit = chain.sign_commit(block, absent=[0])  # 3 of 4 equal powers: enough
    chain.run()
    block = chain.next_block()
    chain.apply(block)
    chain.last_commit = chain.sign_commit(block, absent=[0, 1])  # 2 of 4: not enough
    with pytest.raises(InvalidBlock, match="more than 2/3"):
        chain.run()


def test_state_root_is_the_app_hash_of_the_next_block() -> None:
    chain = LocalChain()
    chain.run([chain.tx(chain.users[0], Transfer(addr(chain.users[1]), 1))])
    assert chain.next_block().header.app_hash == chain.state.app_hash


def run_to_epoch_end(chain: LocalChain) -> None:
    """Apply empty blocks until the last block of the current epoch has been applied."""
    while True:
        outcome = chain.run()
        if outcome.epoch_ended:
            return


def test_validator_lifecycle_register_bond_enter_set_unbond() -> None:
    chain = LocalChain(params=Params(epoch_length=5, unbonding_epochs=2))
    newcomer, consensus = chain.users[0], key(4242)
    chain.add_signer(consensus)
    start = balance(chain, addr(newcomer))
    stake = 4_000 * SEED
    txs = [chain.tx(newcomer, ValidatorRegister(consensus.public_key, "newcomer")),
           chain.tx(newcomer, Bond(stake))]
    out = chain.run(txs)
    assert [r.code for r in out.results] == [Code.OK, Code.OK]
    assert balance(chain, addr(newcomer)) == start - stake - sum(fee(t) for t in txs)
    again = chain.run([chain.tx(newcomer, ValidatorRegister(key(4343).public_key, "twice"))])
    assert again.results[0].code == Code.ALREADY_REGISTERED
    run_to_epoch_end(chain)
    end = chain.height
    assert consensus.public_key not in [m.pubkey for m in chain.members(end + 1)]
    new_set = chain.members(end + 2)
    member = next(m for m in new_set if m.pubkey == consensus.public_key)
    assert member.power == 100_000 + 250_000 + 50_000 * 63  # isqrt(4000) = 63
    assert new_set[0] == member  # the largest stake leads the set order

    out = chain.run([chain.tx(newcomer, Unbond(stake + 1)), chain.tx(newcomer, Unbond(stake))])
    assert [r.code for r in out.results] == [Code.INSUFFICIENT_BOND, Code.OK]
    before = balance(chain, addr(newcomer))
    for _ in range(2):  # paid at the end of the second epoch after the unbonding one
        run_to_epoch_end(chain)
        assert balance(chain, addr(newcomer)) == before
    run_to_epoch_end(chain)
    assert balance(chain, addr(newcomer)) == before + stake
    assert consensus.public_key not in [m.pubkey for m in chain.members(chain.height + 2)]


def test_unbonds_write_one_key_per_operator_and_epoch_and_are_paid_summed() -> None:
    """Each unbond reads and writes one key (its operator's, in the epoch it falls due),
    however many unbondings that epoch holds; the epoch's end pays each operator its sum
    and deletes the keys."""
    chain = LocalChain(params=Params(epoch_length=50, unbonding_epochs=1))
    ops = chain.operator_keys[:2]
    release = chain.config.params.epoch_of(chain.height + 1) + 1
    out = chain.run([chain.tx(ops[0], Unbond(SEED)), chain.tx(ops[1], Unbond(2 * SEED))])
    assert [r.code for r in out.results] == [Code.OK, Code.OK]
    unbonding = {k: v for k, v in out.changes.items() if k[0] == statekeys.UNBONDING}
    assert unbonding == {statekeys.unbonding(release, addr(ops[0])): dumps(SEED),
                         statekeys.unbonding(release, addr(ops[1])): dumps(2 * SEED)}
    out = chain.run([chain.tx(ops[0], Unbond(3 * SEED))])
    assert {k: v for k, v in out.changes.items() if k[0] == statekeys.UNBONDING} == {
        statekeys.unbonding(release, addr(ops[0])): dumps(4 * SEED)}
    before = [balance(chain, addr(o)) for o in ops]
    run_to_epoch_end(chain)
    due = sorted([(addr(ops[0]), 4 * SEED), (addr(ops[1]), 2 * SEED)])
    assert Ledger(chain.state).unbondings(release) == due
    run_to_epoch_end(chain)
    assert [balance(chain, addr(o)) for o in ops] == [before[0] + 4 * SEED, before[1] + 2 * SEED]
    assert Ledger(chain.state).unbondings(release) == []


def attest(chain: LocalChain, contributor: object, dims: int = 1_000_000) -> bytes:
    epoch = chain.config.params.epoch_of(chain.height + 1)
    body = PoiAttest(epoch, b"\x07" * 32, (dims,) * 5, 0)
    out = chain.run([chain.tx(contributor, body)])  # type: ignore[arg-type]
    assert out.results[0].code == Code.OK
    assert out.results[0].data == attestation_id(addr(contributor), epoch, b"\x07" * 32)
    return out.results[0].data


def endorse(chain: LocalChain, att: bytes, scores: list[int]) -> list[int]:
    txs = [chain.tx(chain.operator_keys[i], PoiEndorse(att, s)) for i, s in enumerate(scores)]
    return [r.code for r in chain.run(txs).results]


def attestation_status(chain: LocalChain, att: bytes) -> int:
    record = Ledger(chain.state).attestation(att)
    assert record is not None
    return record.status


def test_finalized_impact_earns_rewards_and_voting_power() -> None:
    chain = LocalChain(params=Params(epoch_length=20))
    contributor = chain.operator_keys[3]  # an operator, so its validator gains power
    att = attest(chain, contributor)
    assert attestation_status(chain, att) == ATTESTATION_PENDING
    assert endorse(chain, att, [1_000_000, 1_000_000]) == [Code.OK, Code.OK]
    assert attestation_status(chain, att) == ATTESTATION_PENDING  # 2 of 4: not > 2/3
    assert endorse(chain, att, [1_000_000] * 4)[:3] == [Code.ALREADY_ENDORSED] * 2 + [Code.OK]
    assert attestation_status(chain, att) == ATTESTATION_FINALIZED
    before = balance(chain, addr(contributor))
    run_to_epoch_end(chain)
    issuance = chain.config.params.epoch_issuance
    assert balance(chain, addr(contributor)) == before + issuance
    assert Ledger(chain.state).impact(addr(contributor)) == 1_000_000
    assert Ledger(chain.state).supply() == (issuance, 0)
    powers = {m.pubkey: m.power for m in chain.members(chain.height + 2)}
    boosted = powers[chain.validator_keys[3].public_key]
    assert boosted == max(powers.values()) and boosted - min(powers.values()) == 1_000_000
    run_to_epoch_end(chain)
    assert Ledger(chain.state).impact(addr(contributor)) == 900_000  # decays by lambda


def test_low_validation_scores_reject_and_silence_expires() -> None:
    chain = LocalChain(params=Params(epoch_length=8, attestation_ttl_epochs=2))
    rejected = attest(chain, chain.users[0])
    endorse(chain, rejected, [900_000] * 3)
    assert attestation_status(chain, rejected) == ATTESTATION_REJECTED
    assert endorse(chain, rejected, [0, 0, 0, 1_000_000])[3] == Code.ATTESTATION_DECIDED
    ignored = attest(chain, chain.users[1], dims=500_000)
    run_to_epoch_end(chain)
    assert attestation_status(chain, ignored) == ATTESTATION_PENDING
    run_to_epoch_end(chain)
    assert attestation_status(chain, ignored) == ATTESTATION_EXPIRED
    assert Ledger(chain.state).impact(addr(chain.users[0])) == 0


def test_only_active_validators_endorse_and_attestations_are_unique() -> None:
    chain = LocalChain()
    att = attest(chain, chain.users[0])
    out = chain.run([chain.tx(chain.users[1], PoiEndorse(att, 1_000_000)),
                     chain.tx(chain.operator_keys[0], PoiEndorse(b"\x01" * 32, 1_000_000)),
                     chain.tx(chain.operator_keys[0], PoiEndorse(att, 1_000_001))])
    assert [r.code for r in out.results] == [Code.NOT_ACTIVE_VALIDATOR, Code.UNKNOWN_ATTESTATION,
                                             Code.SCORE_OUT_OF_RANGE]
    epoch = chain.config.params.epoch_of(chain.height + 1)
    out = chain.run([chain.tx(chain.users[0], PoiAttest(epoch, b"\x07" * 32, (1,) * 5, 0)),
                     chain.tx(chain.users[0], PoiAttest(epoch + 1, b"\x08" * 32, (1,) * 5, 0)),
                     chain.tx(chain.users[0], PoiAttest(epoch, b"\x09" * 32, (1_000_001,) * 5, 0))])
    assert [r.code for r in out.results] == [Code.DUPLICATE_ATTESTATION, Code.WRONG_EPOCH,
                                             Code.SCORE_OUT_OF_RANGE]


def test_double_sign_evidence_slashes_jails_and_is_punished_once() -> None:
    chain = LocalChain(params=Params(epoch_length=6, jail_epochs=1))
    chain.run()
    chain.run()
    evidence = chain.double_sign(2, 2)
    operator = addr(chain.operator_keys[2])
    bond = Ledger(chain.state).validator(operator).bond  # type: ignore[union-attr]
    out = chain.apply(chain.next_block(evidence=[evidence]))
    assert out.slashed == [operator]
    v = Ledger(chain.state).validator(operator)
    assert v is not None
    assert v.bond == bond - bond * 50_000 // 1_000_000
    assert v.reputation == 450_000 and v.jailed_until_epoch == 1
    assert Ledger(chain.state).supply() == (0, bond * 50_000 // 1_000_000)
    with pytest.raises(InvalidBlock, match="already punished"):
        apply_block(chain.state, chain.state.app_hash, chain.next_block(evidence=[evidence]),
                    chain.config)
    run_to_epoch_end(chain)
    assert chain.validator_keys[2].public_key not in [m.pubkey for m in chain.members(chain.height + 2)]
    run_to_epoch_end(chain)  # the jail (until epoch 1) is lifted at the end of epoch 1
    assert chain.validator_keys[2].public_key in [m.pubkey for m in chain.members(chain.height + 2)]


def test_forged_evidence_is_rejected() -> None:
    chain = LocalChain()
    chain.run()
    chain.run()
    evidence = chain.double_sign(1, 1)
    forged = dataclasses.replace(evidence, vote_b=dataclasses.replace(evidence.vote_b, signature=bytes(64)))
    with pytest.raises(InvalidBlock, match="invalid vote signature"):
        apply_block(chain.state, chain.state.app_hash, chain.next_block(evidence=[forged]), chain.config)
    future = chain.double_sign(1, 5)
    with pytest.raises(InvalidBlock, match="not a past height"):
        apply_block(chain.state, chain.state.app_hash, chain.next_block(evidence=[future]), chain.config)


def test_a_proposer_includes_only_evidence_the_next_block_can_carry() -> None:
    chain = LocalChain()
    chain.run()
    chain.run()
    good, punished = chain.double_sign(1, 1), chain.double_sign(2, 2)
    chain.apply(chain.next_block(evidence=[punished]))
    current = chain.double_sign(3, chain.height + 1)  # seen in this height's rounds
    forged = dataclasses.replace(good, vote_b=dataclasses.replace(good.vote_b, signature=bytes(64)))
    candidates = [current, punished, forged, good, good]
    assert includable_evidence(chain.state, chain.config, candidates) == [good]
    chain.apply(chain.next_block(evidence=[good]))  # and the block is valid


def test_signatures_checked_at_admission_are_not_checked_again() -> None:
    chain = LocalChain()
    good = chain.tx(chain.users[0], Transfer(bytes(20), 1))
    forged = good[:-1] + bytes([good[-1] ^ 1])
    block = chain.next_block([forged])
    with pytest.raises(InvalidBlock, match="invalid signature"):
        apply_block(chain.state, chain.state.app_hash, block, chain.config)
    # The mempool's cache vouches for the hash: execution trusts it and skips the check.
    verified = VerifiedCache()
    verified.add(sha256(forged))
    outcome = apply_block(chain.state, chain.state.app_hash, block, chain.config, verified=verified)
    assert [r.code for r in outcome.results] == [Code.OK]


def test_the_state_root_is_worked_out_while_signatures_are_checked() -> None:
    chain, twin = LocalChain(), LocalChain()  # the same chain; the twin's root comes at commit
    alice = chain.users[0]
    good = [chain.tx(alice, Transfer(bytes([i]) * 20, 1 + i), nonce=i) for i in range(5)]
    other = chain.tx(alice, Transfer(bytes([9]) * 20, 7), nonce=4)  # to an account no good tx pays
    forged = [*good[:4], other[:-1] + bytes([other[-1] ^ 1])]
    committed = chain.state.app_hash
    checks: list[tuple[Future[list[bool]], Sequence[SignedItem]]] = []
    worked_out: list[bytes] = []

    def held(items: Sequence[SignedItem]) -> Future[list[bool]]:
        check: Future[list[bool]] = Future()  # running until the root is worked out
        checks.append((check, items))
        return check

    def prepare_root(app_hash: bytes, changes: dict[bytes, bytes | None]) -> None:
        chain.state.prepare_root(app_hash, changes)
        worked_out.append(app_hash)
        assert chain.state.app_hash == committed  # readers still see the committed root
        check, items = checks.pop()
        check.set_result(verify_many(items))

    with pytest.raises(InvalidBlock, match="tx 4 has an invalid signature"):
        apply_block(chain.state, committed, chain.next_block(forged), chain.config, verifier=held,
                    prepare_root=prepare_root)
    block = chain.next_block(good)
    outcome = apply_block(chain.state, committed, block, chain.config, verifier=held,
                          prepare_root=prepare_root)
    assert worked_out == [committed, committed] and chain.state.app_hash == committed
    # The commit adopts the good block's work (the forged one's was taken back): the same
    # root and state as a commit that worked it all out then.
    twin.apply(block)
    assert chain.state.commit(outcome.changes) == twin.state.app_hash
    assert list(chain.state.items()) == list(twin.state.items())


def test_admission_checks_say_what_is_wrong_with_a_tx() -> None:
    chain = LocalChain()
    alice = chain.users[0]
    params, chain_id = chain.config.params, chain.config.chain_id
    ok = chain.tx(alice, Transfer(bytes(20), 1))
    tx = decode_tx(ok, params)
    verify_tx_signature(chain_id, ok)
    assert check_tx_against_state(Ledger(chain.state), addr(alice), tx).nonce == 0
    with pytest.raises(ForgedTx, match="invalid signature"):
        verify_tx_signature("bizra-devnet-2", ok)
    with pytest.raises(InvalidTx, match="max_tx_bytes"):
        decode_tx(bytes(params.max_tx_bytes + 1), params)
    with pytest.raises(InvalidTx, match="trailing"):
        decode_tx(ok + b"\x00", params)
    with pytest.raises(InvalidTx, match="below"):
        decode_tx(chain.tx(alice, Transfer(bytes(20), 1), fee=10), params)
    later = decode_tx(chain.tx(alice, Transfer(bytes(20), 1)), params)
    with pytest.raises(InvalidTx, match="next nonce 0"):
        check_tx_against_state(Ledger(chain.state), addr(alice), later)
    broke = key(31337)
    poor = decode_tx(chain.tx(broke, Transfer(bytes(20), 1)), params)
    with pytest.raises(InvalidTx, match="cannot pay the fee"):
        check_tx_against_state(Ledger(chain.state), addr(broke), poor)


def test_a_proposer_takes_only_the_txs_the_block_can_carry() -> None:
    chain = LocalChain()
    alice, bob = chain.users[0], chain.users[1]
    poor = key(99)  # no account: cannot pay a fee
    to_bob = Transfer(address_of(bob.public_key), 1)
    first = chain.tx(alice, to_bob)
    gap = chain.tx(alice, to_bob, nonce=5)
    second = chain.tx(alice, to_bob, nonce=1)
    broke = sign_tx(chain.config.chain_id, poor, 0, to_bob)
    failing = chain.tx(bob, Transfer(address_of(alice.public_key), 2_000_000 * SEED))  # fails its rule
    candidates = [second, first, gap, b"not a tx", broke, second, failing]
    chosen = includable_txs(chain.state, chain.config, candidates, max_txs=100, max_bytes=1 << 20)
    assert chosen == [first, second, failing]  # second waits for first; the rest never fit
    outcome = chain.run(chosen)
    assert [r.code for r in outcome.results] == [Code.OK, Code.OK, Code.INSUFFICIENT_FUNDS]

    more = [chain.tx(alice, to_bob) for _ in range(5)]
    assert includable_txs(chain.state, chain.config, more, max_txs=3, max_bytes=1 << 20) == more[:3]
    two = 2 * len(more[0])
    assert includable_txs(chain.state, chain.config, more, max_txs=100, max_bytes=two) == more[:2]


def test_a_proposer_out_of_time_stops_choosing_and_still_has_a_valid_block() -> None:
    chain = LocalChain()
    alice, bob = chain.users[0], chain.users[1]
    to_bob = Transfer(address_of(bob.public_key), 1)
    candidates = [chain.tx(alice, to_bob, nonce=n) for n in range(STOP_EVERY * 2 + 10)]
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) == 2  # out of time at the second question

    chosen = includable_txs(chain.state, chain.config, candidates, max_txs=10_000, max_bytes=1 << 22,
                            stop=stop)
    assert chosen == candidates[:2 * STOP_EVERY]
    assert includable_txs(chain.state, chain.config, candidates[:5], max_txs=9, max_bytes=1 << 22,
                          stop=lambda: True) == candidates[:5]  # asked only once it holds STOP_EVERY
    assert all(r.code == Code.OK for r in chain.run(chosen).results)


def test_txs_decoded_already_are_taken_as_they_are_and_change_no_outcome() -> None:
    chain = LocalChain()
    alice, bob = chain.users[0], chain.users[1]
    txs = [chain.tx(alice, Transfer(address_of(bob.public_key), 1), nonce=n) for n in range(3)]
    known = {tx_hash(raw): decode_tx(raw, chain.config.params) for raw in txs[:2]}
    asked: list[bytes] = []

    def decoded(h: bytes) -> Tx | None:
        asked.append(h)
        return known.get(h)

    block = chain.next_block(txs)
    plain = apply_block(chain.state, chain.state.app_hash, block, chain.config)
    reused = apply_block(chain.state, chain.state.app_hash, block, chain.config, decoded=decoded)
    assert reused == plain and asked == [tx_hash(raw) for raw in txs]
    chosen = includable_txs(chain.state, chain.config, txs, max_txs=9, max_bytes=1 << 20, decoded=decoded)
    assert chosen == txs
