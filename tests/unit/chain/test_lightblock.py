"""Light blocks: the spans a light client walks, and the checks of a light block."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from chain.errors import DecodeError, InvalidBlock
from chain.lightblock import LightBlock, check_successor, next_span_start, span_ends
from chain.params import Params
from chain.state import chain_config
from chain.validatorsets import set_start_height

from chainkit import LocalChain


def config(epoch: int, initial: int = 1):  # type: ignore[no-untyped-def]
    chain = LocalChain(params=Params(epoch_length=epoch))
    return chain_config(dataclasses.replace(chain.genesis, initial_height=initial))


@pytest.mark.parametrize(("epoch", "initial"), [(5, 1), (10, 1), (7, 100), (600, 1)])
def test_span_ends_are_the_last_heights_of_each_set(epoch: int, initial: int) -> None:
    cfg = config(epoch, initial)
    heights = range(initial, initial + 4 * epoch, max(1, epoch // 4))
    for trusted, target in itertools.product(heights, repeat=2):
        if target < trusted:
            continue
        ends = list(span_ends(trusted, target, cfg))
        # Each end is the last height with its set: the next height starts another.
        for end in ends:
            assert set_start_height(end + 1, cfg) == end + 1 != set_start_height(end, cfg)
        starts = {set_start_height(h, cfg) for h in (trusted, *(e + 1 for e in ends), target)}
        assert len(ends) == len(starts) - 1
        assert all(trusted <= end < target for end in ends)
    assert next_span_start(initial, cfg) == initial + epoch + 1


def test_a_far_target_is_walked_lazily() -> None:
    ends = span_ends(1, 2**62, config(5))
    assert [next(ends) for _ in range(3)] == [6, 11, 16]
    with pytest.raises(ValueError, match="below"):
        next(span_ends(10, 9, config(5)))


def test_light_block_checks() -> None:
    chain = LocalChain()
    block = chain.next_block()
    chain.apply(block)
    assert chain.last_commit is not None
    light = LightBlock(block.header, chain.last_commit, tuple(chain.members(1)))
    light.check(chain.config.chain_id, 1)
    check_successor(light, block.header.validators_hash)
    with pytest.raises(InvalidBlock, match="other than the trusted"):
        check_successor(light, bytes(32))
    with pytest.raises(InvalidBlock, match="where 2 was asked"):
        light.check(chain.config.chain_id, 2)
    with pytest.raises(InvalidBlock, match="of chain"):
        light.check("another", 1)
    with pytest.raises(InvalidBlock, match="not the set"):
        dataclasses.replace(light, validators=light.validators[1:]).check(chain.config.chain_id, 1)
    unsigned = dataclasses.replace(chain.last_commit, signatures=tuple(
        dataclasses.replace(s, signature=bytes(64)) for s in chain.last_commit.signatures))
    with pytest.raises(InvalidBlock, match="signature"):
        dataclasses.replace(light, commit=unsigned).check(chain.config.chain_id, 1)
    from chain.codec import dumps, loads_canonical
    assert LightBlock.from_cbor(loads_canonical(light.encode(), "light block")) == light
    with pytest.raises(DecodeError):
        LightBlock.from_cbor(loads_canonical(dumps([1, 2]), "light block"))
