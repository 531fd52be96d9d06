"""Where each committed tx is, and how it went: by hash, and by sender."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chain.codec import dumps, expect_array, expect_bytes, expect_text, expect_uint, loads_canonical
from chain.crypto import address_of
from chain.errors import DecodeError, StorageError
from chain.types import TX_SENDER, TxResult
from storage import schema
from storage.kv import KeyValueStore, WriteBatch, prefix_end

_ENTRY_HEAD = b"\x85"
"""The head of a tx entry's encoding: an array of 5 items (and of 3 for its tail's)."""


@dataclass(frozen=True, slots=True)
class TxLocation:
    """A committed tx: its block height, its index in the block and its result."""

    tx_hash: bytes
    height: int
    index: int
    result: TxResult


class TxIndex:
    """Committed txs by hash and by sender address."""

    __slots__ = ("_kv",)

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    def stage(self, batch: WriteBatch, height: int, txs: Sequence[bytes],
              tx_hashes: Sequence[bytes], results: Sequence[TxResult]) -> None:
        """Put the entries of block ``height``'s executed ``txs`` into ``batch``."""
        put = batch.put
        # The txs decoded when their block executed, so each holds its sender's key at
        # TX_SENDER. A block's txs come from fewer senders, and have fewer distinct
        # results, than it has txs: each is worked out once.
        addresses: dict[bytes, bytes] = {}
        senders = []
        for raw in txs:
            key = raw[TX_SENDER]
            address = addresses.get(key)
            if address is None:
                address = addresses[key] = address_of(key)
            senders.append(address)
        head = _ENTRY_HEAD + dumps(height)
        tails: dict[TxResult, bytes] = {}
        entries = zip(schema.tx_keys(tx_hashes), schema.sender_tx_keys(senders, height), tx_hashes,
                      results, strict=True)
        for index, (tx_key, sender_key, tx_hash, result) in enumerate(entries):
            tail = tails.get(result)
            if tail is None:
                tail = tails[result] = dumps([result.code, result.data, result.log])[1:]
            put(tx_key, head + dumps(index) + tail)  # = dumps([height, index, code, data, log])
            put(sender_key, tx_hash)

    def get(self, tx_hash: bytes) -> TxLocation | None:
        """Where the tx ``tx_hash`` was committed, or ``None``."""
        raw = self._kv.get(schema.tx(tx_hash))
        if raw is None:
            return None
        try:
            height, index, code, data, log = expect_array(loads_canonical(raw, "tx entry"), 5, "tx entry")
            return TxLocation(tx_hash, expect_uint(height, "height"), expect_uint(index, "index"),
                              TxResult(expect_uint(code, "code"), expect_bytes(data, "data"),
                                       expect_text(log, "log")))
        except DecodeError as exc:
            raise StorageError(f"the index entry of tx {tx_hash.hex()} does not decode ({exc}): "
                               "the store is corrupt") from None

    def by_sender(self, sender: bytes, *, from_height: int = 0,
                  limit: int = 100) -> list[tuple[int, int, bytes]]:
        """Up to ``limit`` txs sent by address ``sender`` at or above ``from_height``, as
        ``(height, index, tx_hash)`` in chain order."""
        out: list[tuple[int, int, bytes]] = []
        for key, tx_hash in self._kv.iterate(schema.sender_tx(sender, from_height, 0),
                                             prefix_end(schema.sender_txs(sender))):
            if len(out) >= limit:
                break
            height, index = schema.sender_tx_position(key)
            out.append((height, index, tx_hash))
        return out
