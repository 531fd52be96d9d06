"""A proposer's block, built and executed in one pass (``build_block``), has exactly the
outcome that applying it gives (``apply_block``): the proposer commits that outcome
without executing the block again, so any difference would fork it from its peers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.blocks import make_block
from chain.crypto import address_of
from chain.ledger import Ledger
from chain.params import Params
from chain.transition import BlockOutcome, apply_block, build_block, includable_evidence, includable_txs
from chain.types import Block, Bond, DuplicateVoteEvidence, PoiAttest, PoiEndorse, Transfer, Unbond

from chainkit import SEED, LocalChain

USERS = 4

candidates = st.lists(
    st.tuples(
        st.sampled_from(["transfer", "gap", "again", "garbage", "bond", "unbond", "attest", "endorse",
                         "double_sign", "punished", "end_block"]),
        st.integers(0, USERS - 1),
        st.integers(0, USERS - 1),
        st.integers(0, 6_000 * SEED),
    ),
    min_size=1,
    max_size=40,
)


def built(chain: LocalChain, txs: list[bytes], evidence: list[DuplicateVoteEvidence], max_txs: int,
          ) -> tuple[Block, BlockOutcome]:
    state = chain.state
    proposer = chain.next_block().header.proposer_address

    def seal(chosen: list[bytes], hashes: list[bytes], chosen_evidence: list[DuplicateVoteEvidence]) -> Block:
        plain = chain.next_block(chosen, chosen_evidence)
        sealed = make_block(state, state.app_hash, chain.config, txs=chosen, tx_hashes=hashes,
                            proposer_address=proposer, time_ns=plain.header.time_ns,
                            last_commit=chain.last_commit, evidence=chosen_evidence)
        assert sealed == plain
        return sealed

    return build_block(state, state.app_hash, chain.config, txs, evidence, seal, max_txs=max_txs,
                       max_bytes=1 << 20)


@settings(max_examples=200, deadline=None)
@given(candidates, st.integers(1, 12))
def test_a_built_block_has_the_outcome_its_application_gives(sequence: list[tuple[str, int, int, int]],
                                                             max_txs: int) -> None:
    chain = LocalChain(users=USERS, params=Params(epoch_length=3, unbonding_epochs=1), balance=5_000 * SEED)
    txs: list[bytes] = []
    evidence: list[DuplicateVoteEvidence] = []
    attestations: list[bytes] = []
    punished: list[DuplicateVoteEvidence] = []
    for i, (op, a, b, amount) in enumerate(sequence):
        user, other = chain.users[a], chain.users[b]
        to = address_of(other.public_key)
        epoch = chain.config.params.epoch_of(chain.height + 1)
        if op == "transfer":
            txs.append(chain.tx(user, Transfer(to, amount)))
        elif op == "gap":
            txs.append(chain.tx(user, Transfer(to, 1), nonce=chain.nonces.get(user.public_key, 0) + 1))
        elif op == "again" and txs:
            txs.append(txs[amount % len(txs)])
        elif op == "garbage":
            txs.append(amount.to_bytes(8, "big"))
        elif op == "bond":
            txs.append(chain.tx(chain.operator_keys[a], Bond(amount)))
        elif op == "unbond":
            txs.append(chain.tx(chain.operator_keys[a], Unbond(amount // 4)))
        elif op == "attest":
            txs.append(chain.tx(user, PoiAttest(epoch, i.to_bytes(32, "big"), (amount % 10**6,) * 5, 0)))
        elif op == "endorse" and attestations:
            txs.extend(chain.tx(k, PoiEndorse(attestations[-1], 990_000)) for k in chain.operator_keys)
        elif op == "double_sign" and chain.height >= 1 and \
                chain.validator_keys[a].public_key in [m.pubkey for m in chain.members(chain.height)]:
            evidence.append(chain.double_sign(a, chain.height))
        elif op == "punished" and punished:
            evidence.append(punished[-1])
        if op != "end_block" and i != len(sequence) - 1:
            continue
        block, outcome = built(chain, txs, evidence, max_txs)
        assert list(block.txs) == includable_txs(chain.state, chain.config, txs, max_txs=max_txs,
                                                 max_bytes=1 << 20)
        assert list(block.evidence) == includable_evidence(chain.state, chain.config, evidence)
        assert outcome == apply_block(chain.state, chain.state.app_hash, block, chain.config)
        chain.state.commit(outcome.changes)
        chain.last_commit = chain.sign_commit(block)
        attestations.extend(r.data for r in outcome.results if len(r.data) == 32)
        punished.extend(block.evidence)
        txs, evidence = [], []  # the next block's candidates start from the chain's nonces
        ledger = Ledger(chain.state)
        chain.nonces = {k.public_key: ledger.account(address_of(k.public_key)).nonce
                        for k in (*chain.users, *chain.operator_keys)}
