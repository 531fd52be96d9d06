"""Peers' txs into the mempool: what the tx gossip checks before a batch is forwarded,
and the admission of the batches it hands over.

The check (:meth:`TxIntake.check`) decodes a tx (one that does not decode makes its
batch rejected) and ignores one the mempool holds; it keeps the hash and decoding of the
others (the last ``DECODED`` of them), so that admission does not decode them again.
Accepted batches are admitted whole,
together with any others waiting, up to ``RECEIVED_BATCH`` txs: their signatures are
checked as one batch, off the event loop (:meth:`~node.mempool.Mempool.add_many`). A
peer that sent a forged tx loses score; a tx refused for another reason (its sender
cannot pay, the pool is full) costs nobody, as another node may have admitted it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import trio

from chain.errors import ForgedTx, InvalidTx
from chain.params import Params
from chain.transition import decode_tx
from chain.types import Tx, tx_hash
from node.mempool import Mempool, MempoolFull
from node.view import Counters
from p2p.network import INVALID_MESSAGE_PENALTY, Validation
from p2p.peers import PeerId

RECEIVED_BATCH = 1_024
"""Txs from peers admitted to the mempool in one signature-checking batch at most (a
larger one would hold the event loop for its decoding and admission at once)."""

DECODED = 32_768
"""Txs checked and not admitted yet whose decoding is kept (about a queue's worth of
batches, ``p2p.txgossip.RECEIVED_BATCHES``, at full load; 16 MiB at most)."""

Penalize = Callable[[PeerId, float, str], None]


class TxIntake:
    """See the module docstring. ``counters`` count the txs received and refused."""

    def __init__(self, mempool: Mempool, params: Params, penalize: Penalize, counters: Counters) -> None:
        self.mempool = mempool
        self.params = params
        self.penalize = penalize
        self.counters = counters
        self._decoded: OrderedDict[bytes, tuple[bytes, Tx]] = OrderedDict()

    def check(self, raw: bytes) -> Validation:
        """A gossiped tx, before its batch is forwarded."""
        try:
            tx = decode_tx(raw, self.params)
        except InvalidTx:
            return Validation.REJECT
        h = tx_hash(raw)
        if h in self.mempool:
            return Validation.IGNORE
        self._decoded[raw] = (h, tx)
        if len(self._decoded) > DECODED:
            self._decoded.popitem(last=False)
        return Validation.ACCEPT

    async def run(self, received: trio.MemoryReceiveChannel[tuple[PeerId, list[bytes]]]) -> None:
        """Admit the batches ``received`` hands over until cancelled."""
        while True:
            peer, txs = await received.receive()
            batch = [(peer, tx) for tx in txs]
            while len(batch) < RECEIVED_BATCH:
                try:
                    peer, txs = received.receive_nowait()
                except trio.WouldBlock:
                    break
                batch.extend((peer, tx) for tx in txs)
            await self.admit(batch)

    async def admit(self, batch: Sequence[tuple[PeerId, bytes]]) -> list[bytes | InvalidTx | MempoolFull]:
        """Admit txs that peers gossiped, as ``(peer, tx)``; what the mempool made of each."""
        decoded = self._decoded
        known = {raw: entry for _, raw in batch if (entry := decoded.pop(raw, None)) is not None}
        results = await self.mempool.add_many([raw for _, raw in batch], known)
        self.counters.txs_received += len(batch)
        for (peer, _), result in zip(batch, results, strict=True):
            if isinstance(result, InvalidTx):
                self.counters.txs_refused += 1
                if isinstance(result, ForgedTx):
                    self.penalize(peer, INVALID_MESSAGE_PENALTY, "a tx with an invalid signature")
        return results
