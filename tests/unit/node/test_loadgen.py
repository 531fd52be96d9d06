"""The load generator's per-tx floor: a first block of signed transfers, checked and
executed on one core."""

from __future__ import annotations

from node.loadgen import apply_floor_us

from chainkit import LocalChain
from storekit import transfers


def test_the_per_tx_floor_is_the_cost_of_applying_a_first_block_on_one_core() -> None:
    chain = LocalChain(users=8)
    floor = apply_floor_us(chain.genesis, transfers(chain, 8))  # one per sender: nonce 0 each
    assert 1 < floor < 100_000
