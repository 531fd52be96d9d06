"""Light blocks (§11.5): a header with the commit that decided it and the validator set
of its height, and the rules by which a node that executes nothing trusts a header.

A light block ``[header, commit, validators]`` is *self-consistent* when the commit is
for the header's height and id, the validators hash to the header's
``validators_hash``, and more than 2/3 of their power signed the commit. It is *trusted*
when, besides, its validators are a set the verifier already trusts for that height.

Sets change only at an epoch end ``E`` and take effect at ``E + 2`` (§6.5), so every
height of a *span* (the heights from one set start to the next) has the same set. A
verifier that trusts the set of a span trusts a header anywhere in it whose commit that
set signed; it learns the next span's set from the span's last header, whose
``next_validators_hash`` commits to it. So a header far from a trusted one is reached by
one light block per span between them (:func:`span_ends`), as CometBFT's light client
verifies adjacent headers: the headers between add nothing, being signed by the same set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from chain.codec import dumps, expect_array, expect_list
from chain.commits import validators_hash, verify_commit
from chain.errors import InvalidBlock
from chain.params import ChainConfig
from chain.sizes import VALIDATORS_LIMIT
from chain.types import Commit, Header, SetMember
from chain.validatorsets import set_start_height


@dataclass(frozen=True, slots=True)
class LightBlock:
    """A header, the commit that decided it and the validator set of its height."""

    header: Header
    commit: Commit
    validators: tuple[SetMember, ...]

    def encode(self) -> bytes:
        return dumps([self.header.to_cbor(), self.commit.to_cbor(), [m.to_cbor() for m in self.validators]])

    @classmethod
    def from_cbor(cls, obj: object) -> LightBlock:
        """DecodeError unless ``obj`` is ``[header, commit, validators]`` with at most
        ``VALIDATORS_LIMIT`` validators."""
        header, commit, validators = expect_array(obj, 3, "light block")
        return cls(Header.from_cbor(header), Commit.from_cbor(commit),
                   tuple(SetMember.from_cbor(m) for m in expect_list(validators, "light block.validators",
                                                                     VALIDATORS_LIMIT)))

    def check(self, chain_id: str, height: int) -> None:
        """InvalidBlock unless this is a self-consistent light block of ``chain_id`` at
        ``height`` (see the module docstring); checks the commit's signatures."""
        header = self.header
        if header.chain_id != chain_id:
            raise InvalidBlock(f"light block {header.height} is of chain {header.chain_id!r}")
        if header.height != height:
            raise InvalidBlock(f"light block {header.height} where {height} was asked for")
        if validators_hash(self.validators) != header.validators_hash:
            raise InvalidBlock(f"light block {height}: its validators are not the set its header names")
        verify_commit(chain_id, self.commit, self.validators, height, header.block_id())


def next_span_start(start: int, config: ChainConfig) -> int:
    """The first height of the span after the one that starts at ``start``."""
    if start == config.initial_height:
        return config.initial_height + config.params.epoch_length + 1
    return start + config.params.epoch_length


def span_ends(trusted: int, target: int, config: ChainConfig) -> Iterator[int]:
    """The heights whose light blocks take trust from a header at ``trusted`` to one at
    ``target`` (``target >= trusted``), in order: the last height of each span from
    ``trusted``'s up to the one before ``target``'s. Each is verified with its span's
    set, and its ``next_validators_hash`` names the next span's. Lazy: a target a peer
    made up far ahead costs only the light blocks fetched before one is not served."""
    if target < trusted:
        raise ValueError(f"target {target} is below the trusted height {trusted}")
    start = set_start_height(trusted, config)
    last = set_start_height(target, config)
    while start < last:
        start = next_span_start(start, config)
        yield start - 1


def check_successor(block: LightBlock, trusted_set_hash: bytes) -> None:
    """InvalidBlock unless ``block``'s header names the set that hashes to
    ``trusted_set_hash``: with :meth:`~LightBlock.check`, it is signed by that set.
    Checked first, it costs a block of another set no signature check."""
    if block.header.validators_hash != trusted_set_hash:
        raise InvalidBlock(f"light block {block.header.height}: signed by a set other than the trusted one")
