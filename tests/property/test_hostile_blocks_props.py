"""Whatever txs a block carries, applying it either succeeds or raises InvalidBlock:
never another exception, never a change to the committed state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.errors import InvalidBlock
from chain.transition import apply_block
from chain.types import Transfer

from chainkit import LocalChain

CHAIN = LocalChain(users=2)
VALID = CHAIN.tx(CHAIN.users[0], Transfer(bytes(20), 5))


def mutate(data: bytes, position: int, byte: int) -> bytes:
    position %= len(data)
    return data[:position] + bytes([byte]) + data[position + 1:]


hostile_txs = st.one_of(
    st.binary(max_size=200),
    st.builds(mutate, st.just(VALID), st.integers(0, 10_000), st.integers(0, 255)),
    st.builds(lambda cut: VALID[:cut], st.integers(0, len(VALID))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_txs, min_size=1, max_size=3))
def test_a_block_of_hostile_txs_is_rejected_cleanly_or_applied(txs: list[bytes]) -> None:
    root = CHAIN.state.app_hash
    block = CHAIN.next_block(txs)
    try:
        outcome = apply_block(CHAIN.state, root, block, CHAIN.config)
    except InvalidBlock as exc:
        assert str(exc)
    else:
        # Only a tx that is still a valid, signed transfer can have made it through.
        assert all(t == VALID for t in txs) and len(txs) == 1
        assert outcome.results[0].code == 0
    assert CHAIN.state.app_hash == root
