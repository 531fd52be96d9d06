"""Block exchanges for tests: one whose peers never answer."""

from __future__ import annotations

import trio

from chain.types import Block
from p2p.blocks import BlockExchange, CompactBlock
from p2p.peers import PeerId


class Stalling(BlockExchange):
    """Block fetches, whole or compact, that never end (a peer that never answers): a
    block can only come another way, pushed."""

    async def fetch_block(self, peer: PeerId, block_id: bytes) -> Block | None:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def fetch_compact(self, peer: PeerId, block_id: bytes) -> CompactBlock | None:
        await trio.sleep_forever()
        raise AssertionError("unreachable")
