"""A local chain for tests: genesis, signed txs, blocks and their commits, in memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from chain import transition
from chain.blocks import make_block
from chain.commits import median_time, vote_sign_bytes
from chain.crypto import PrivateKey, address_of
from chain.genesis import GenesisAccount, make_devnet_genesis, operator_key_for
from chain.ledger import Ledger
from chain.params import Params
from chain.state import chain_config, state_from_genesis
from chain.transition import BlockOutcome, apply_block, least_fee
from chain.types import (
    Block,
    Commit,
    CommitFlag,
    CommitSig,
    DuplicateVoteEvidence,
    SetMember,
    TxBody,
    Vote,
    VoteType,
)
from chain.validatorsets import validator_set_at

GENESIS_TIME_NS = 1_790_000_000_000_000_000
BLOCK_INTERVAL_NS = 6_000_000_000
SEED = 1_000_000


def key(n: int) -> PrivateKey:
    """A deterministic key for test actor ``n``."""
    return PrivateKey.from_seed(n.to_bytes(32, "big"))


def sign_tx(chain_id: str, signer: PrivateKey, nonce: int, body: TxBody,
            fee: int | None = None, params: Params | None = None) -> bytes:
    """:func:`chain.transition.sign_tx`, by default with the least fee that ``params``
    (the default params when not given) ask of the tx."""
    if fee is None:
        fee = least_fee(params or Params(), nonce, body)
    return transition.sign_tx(chain_id, signer, nonce, body, fee)


def sign_commit(chain_id: str, signers: dict[bytes, PrivateKey], members: Sequence[SetMember],
                block: Block, absent: Sequence[int] = (), round_: int = 0) -> Commit:
    """The commit of ``block`` by the set ``members`` (keys in ``signers`` by public key),
    at ``round_``, with the members at indices ``absent`` not signing."""
    h = block.header.height
    block_id = block.block_id()
    sigs = []
    for i, m in enumerate(members):
        if i in absent:
            sigs.append(CommitSig(CommitFlag.ABSENT, 0, b""))
            continue
        ts = block.header.time_ns + BLOCK_INTERVAL_NS + i
        vote = Vote(VoteType.PRECOMMIT, h, round_, block_id, ts, address_of(m.pubkey), i, b"")
        sig = signers[m.pubkey].sign(vote_sign_bytes(chain_id, vote))
        sigs.append(CommitSig(CommitFlag.COMMIT, ts, sig))
    return Commit(h, round_, block_id, tuple(sigs))


class LocalChain:
    """A chain of ``validators`` validators, with ``users`` funded accounts, whose blocks
    are signed by every validator of the set (no consensus: one process applies them)."""

    def __init__(self, validators: int = 4, users: int = 8, *, params: Params | None = None,
                 chain_id: str = "bizra-devnet-1", balance: int = 1_000_000 * SEED,
                 bond: int = 2_000 * SEED) -> None:
        self.validator_keys = [key(1000 + i) for i in range(validators)]
        self.operator_keys = [operator_key_for(k) for k in self.validator_keys]
        self.users = [key(1 + i) for i in range(users)]
        genesis = make_devnet_genesis(chain_id, self.validator_keys, GENESIS_TIME_NS,
                                      params=params or Params(epoch_length=10), bond=bond)
        genesis = dataclasses.replace(genesis, accounts=genesis.accounts + tuple(
            GenesisAccount(address_of(u.public_key), balance) for u in self.users))
        self.genesis = genesis
        self.config = chain_config(genesis)
        self.state = state_from_genesis(genesis)
        self.last_commit: Commit | None = None
        self.nonces: dict[bytes, int] = {}
        self.signers = {k.public_key: k for k in self.validator_keys}

    def add_signer(self, consensus_key: PrivateKey) -> None:
        """Let a validator that joins later sign commits too."""
        self.signers[consensus_key.public_key] = consensus_key

    @property
    def height(self) -> int:
        return Ledger(self.state).meta().height

    def members(self, height: int) -> list[SetMember]:
        return validator_set_at(Ledger(self.state), height, self.config)

    def tx(self, signer: PrivateKey, body: TxBody, *, fee: int | None = None,
           nonce: int | None = None) -> bytes:
        """A signed tx, by default with the least fee the chain asks of it; nonces are
        tracked per signer unless given."""
        who = signer.public_key
        n = self.nonces.get(who, 0) if nonce is None else nonce
        self.nonces[who] = n + 1
        return sign_tx(self.config.chain_id, signer, n, body, fee, self.config.params)

    def next_block(self, txs: Sequence[bytes] = (), evidence: Sequence = ()) -> Block:  # type: ignore[type-arg]
        height = self.height + 1
        members = self.members(height)
        if self.last_commit is None:
            time_ns = self.genesis.genesis_time_ns
        else:
            time_ns = median_time(self.last_commit, self.members(height - 1))
        return make_block(self.state, self.state.app_hash, self.config, txs=txs,
                          proposer_address=address_of(members[0].pubkey), time_ns=time_ns,
                          last_commit=self.last_commit, evidence=evidence)

    def apply(self, block: Block) -> BlockOutcome:
        """Apply and commit ``block``, then sign its commit with the whole set."""
        outcome = apply_block(self.state, self.state.app_hash, block, self.config)
        self.state.commit(outcome.changes)
        self.last_commit = self.sign_commit(block)
        return outcome

    def sign_commit(self, block: Block, absent: Sequence[int] = (), round_: int = 0) -> Commit:
        return sign_commit(self.config.chain_id, self.signers, self.members(block.header.height),
                           block, absent, round_)

    def double_sign(self, index: int, height: int, round_: int = 0) -> DuplicateVoteEvidence:
        """Two conflicting prevotes of genesis validator ``index`` at ``height`` (where it
        must be in the set) and ``round_``."""
        signer = self.validator_keys[index]
        address = address_of(signer.public_key)
        position = [m.pubkey for m in self.members(height)].index(signer.public_key)
        votes = []
        for block_id in (b"\x01" * 32, b"\x02" * 32):
            vote = Vote(VoteType.PREVOTE, height, round_, block_id, 1, address, position, b"")
            signature = signer.sign(vote_sign_bytes(self.config.chain_id, vote))
            votes.append(dataclasses.replace(vote, signature=signature))
        return DuplicateVoteEvidence(votes[0], votes[1])

    def run(self, txs: Sequence[bytes] = ()) -> BlockOutcome:
        """Make and apply the next block."""
        return self.apply(self.next_block(txs))
