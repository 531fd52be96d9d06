"""Where each committed tx is, and how it went: by hash, and by sender."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chain.codec import dumps, expect_array, expect_bytes, expect_text, expect_uint, loads_canonical
from chain.crypto import PUBLIC_KEY_LEN, address_of
from chain.errors import DecodeError, StorageError
from chain.types import TxResult
from storage import schema
from storage.kv import KeyValueStore, WriteBatch, prefix_end

# A tx's encoding opens with a 1-byte array head, its kind (one byte: kinds are below 24)
# and the 2-byte head of the 32-byte sender key (§3); the block it sits in has executed.
_SENDER_AT = 4


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
        tx_key = schema.TX
        sender_key = schema.SENDER_TX
        suffix = height.to_bytes(8, "big")
        for index, (raw, tx_hash, result) in enumerate(zip(txs, tx_hashes, results, strict=True)):
            put(tx_key + tx_hash, dumps([height, index, result.code, result.data, result.log]))
            sender = address_of(raw[_SENDER_AT:_SENDER_AT + PUBLIC_KEY_LEN])
            put(sender_key + sender + suffix + index.to_bytes(4, "big"), tx_hash)

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
        start = schema.sender_txs(sender)
        out: list[tuple[int, int, bytes]] = []
        for key, tx_hash in self._kv.iterate(start + from_height.to_bytes(8, "big"),
                                             prefix_end(start)):
            if len(out) >= limit:
                break
            out.append((int.from_bytes(key[-12:-4], "big"), int.from_bytes(key[-4:], "big"), tx_hash))
        return out
