"""The ledger state held in memory, with its state root: for tests, tools and benches.

The node keeps its state in LevelDB (``storage``); both implement
:class:`~chain.ledger.StateReader` and commit a block's changes the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from chain.crypto import address_of
from chain.genesis import Genesis
from chain.ledger import Ledger
from chain.merkle import merkle_root
from chain.params import ChainConfig
from chain.poi import INITIAL_REPUTATION
from chain.statetree import StateProof, StateTree
from chain.types import ZERO_HASH, Account, ChainMeta, Validator
from chain.validatorsets import next_validator_set


class MemoryState:
    """Committed state as dicts (one per key namespace) plus its :class:`StateTree`."""

    __slots__ = ("_spaces", "tree")

    def __init__(self) -> None:
        self._spaces: dict[int, dict[bytes, bytes]] = {}
        self.tree = StateTree()

    def get(self, key: bytes) -> bytes | None:
        space = self._spaces.get(key[0])
        return None if space is None else space.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        space = self._spaces.get(prefix[0], {})
        for key in sorted(k for k in space if k.startswith(prefix)):
            yield key, space[key]

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key/value, in key order."""
        for ns in sorted(self._spaces):
            space = self._spaces[ns]
            for key in sorted(space):
                yield key, space[key]

    @property
    def app_hash(self) -> bytes:
        return self.tree.root()

    def prove(self, key: bytes) -> StateProof:
        """An inclusion or absence proof of ``key`` against :attr:`app_hash`."""
        return self.tree.prove(key)

    def prepare_root(self, app_hash: bytes, changes: dict[bytes, bytes | None]) -> None:
        """Work out the root after ``changes`` ahead of their :meth:`commit`, which then
        adopts the work, if ``app_hash`` is this state's root (see
        :func:`chain.transition.apply_block`)."""
        if app_hash == self.tree.root():
            self.tree.ahead(changes)

    def commit(self, changes: Mapping[bytes, bytes | None]) -> bytes:
        """Apply a block's changes; returns the new state root."""
        for key, value in changes.items():
            space = self._spaces.setdefault(key[0], {})
            if value is None:
                space.pop(key, None)
            else:
                space[key] = value
        return self.tree.update(changes)


def chain_config(genesis: Genesis) -> ChainConfig:
    return ChainConfig(genesis.chain_id, genesis.initial_height, genesis.params)


def genesis_changes(genesis: Genesis) -> dict[bytes, bytes | None]:
    """The state a chain starts from: accounts, validators, the first validator set and
    the metadata of the block before the first (§10)."""
    ledger = Ledger(MemoryState())
    for acct in genesis.accounts:
        ledger.set_account(acct.address, Account(acct.balance, 0))
    validators = [Validator(v.operator, v.pub_key, v.moniker, v.bond, INITIAL_REPUTATION, 0)
                  for v in genesis.validators]
    for v in validators:
        ledger.set_validator(v)
        ledger.set_operator_of(address_of(v.consensus_pubkey), v.operator)
    ledger.set_validator_set(genesis.initial_height,
                             next_validator_set(ledger, validators, genesis.params))
    ledger.set_meta(ChainMeta(genesis.initial_height - 1, genesis.genesis_time_ns, ZERO_HASH,
                              merkle_root([])))
    return ledger.diff()


def state_from_genesis(genesis: Genesis) -> MemoryState:
    state = MemoryState()
    state.commit(genesis_changes(genesis))
    return state
