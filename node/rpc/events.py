"""Events for WebSocket subscribers (§9 ``subscribe``), as CometBFT v0.38 sends them.

Queries are CometBFT's, the subset a wallet or explorer uses: ``tm.event='NewBlock'``,
``tm.event='NewBlockHeader'`` and ``tm.event='Tx'``, the last optionally with
``AND tx.hash='<HEX>'`` and/or ``AND tx.height=<N>``. A subscriber that does not keep
up never slows the node: each has a bounded queue, and one that falls a whole queue
behind is cut off, as CometBFT cancels a subscription whose client "is not pulling
messages fast enough" (counted in ``EventBus.overflows``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import trio

from chain.transition import BlockOutcome
from chain.types import Block, TxResult
from node.rpc import shapes
from node.rpc.shapes import JSON, b64, hex_upper

QUEUE = 1_000
MAX_SUBSCRIPTIONS_PER_CLIENT = 10
_CONDITION = re.compile(r"^\s*([\w.]+)\s*=\s*('[^']*'|\d+)\s*$")


class QueryError(ValueError):
    """A query this node does not understand; the message says what it expected."""


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    event: str
    tx_hash: str | None = None
    tx_height: int | None = None

    @classmethod
    def parse(cls, text: str) -> Query:
        conditions: dict[str, str] = {}
        for part in re.split(r"\s+AND\s+", text.strip()):
            match = _CONDITION.match(part)
            if match is None:
                raise QueryError(f"cannot read {part!r}: expected key='value' or key=number joined by AND")
            conditions[match.group(1)] = match.group(2).strip("'")
        event = conditions.pop("tm.event", None)
        if event not in ("NewBlock", "NewBlockHeader", "Tx"):
            raise QueryError("the query needs tm.event='NewBlock', 'NewBlockHeader' or 'Tx'")
        tx_hash = conditions.pop("tx.hash", None)
        tx_height = conditions.pop("tx.height", None)
        if conditions or (event != "Tx" and (tx_hash or tx_height)):
            raise QueryError(f"unsupported conditions: {', '.join(conditions) or 'tx.* on a block event'}")
        try:
            height = int(tx_height) if tx_height is not None else None
        except ValueError:  # more digits than Python converts
            raise QueryError(f"tx.height: {len(tx_height or '')} digits, not a height") from None
        return cls(text, event, tx_hash.upper() if tx_hash else None, height)


Committed = tuple[Block, BlockOutcome, bytes]
"""A committed block, its outcome, and the app hash after it."""
Feed = trio.MemoryReceiveChannel[Committed]


class EventBus:
    """Fans committed blocks out to subscribers; ``sets(height)`` gives a height's
    validator set (for the shapes of the last commit and of evidence)."""

    def __init__(self, sets: shapes.Sets) -> None:
        self.sets = sets
        self._feeds: dict[Feed, trio.MemorySendChannel[Committed]] = {}
        self.overflows = 0

    def subscribe(self) -> Feed:
        """A feed of every committed block from now on (``unsubscribe`` it when done)."""
        send, receive = trio.open_memory_channel[Committed](QUEUE)
        self._feeds[receive] = send
        return receive

    def unsubscribe(self, feed: Feed) -> None:
        self._feeds.pop(feed, None)
        feed.close()

    def publish(self, block: Block, outcome: BlockOutcome, app_hash: bytes) -> None:
        """Queue the block (``app_hash``: the state's root after it) for every feed. A
        feed ``QUEUE`` blocks behind is cut: it gets no more, and its reader's loop ends
        once it has read what was queued (counted in ``overflows``)."""
        cut = []
        for feed, send in self._feeds.items():
            try:
                send.send_nowait((block, outcome, app_hash))
            except trio.WouldBlock:
                cut.append(feed)
        for feed in cut:
            self.overflows += 1
            self._feeds.pop(feed).close()

    def events(self, query: Query, block: Block, outcome: BlockOutcome, app_hash: bytes) -> list[JSON]:
        """What ``query`` gets of a committed block (``app_hash``: the state's root after
        it, which ``NewBlock`` gives as its ``result_finalize_block``'s, base64 as CometBFT's
        ABCI bytes): the ``result`` of each message."""
        h = block.header.height
        if query.event == "NewBlockHeader":
            return [{"query": query.text, "data": {"type": "tendermint/event/NewBlockHeader",
                                                   "value": {"header": shapes.header(block.header)}},
                     "events": {"tm.event": ["NewBlockHeader"], "block.height": [str(h)]}}]
        if query.event == "NewBlock":
            shaped: dict[TxResult, JSON] = {}  # most results are alike (success): shaped once
            results = [shaped.get(r) or shaped.setdefault(r, shapes.tx_result(r)) for r in outcome.results]
            value = {"block": shapes.block(block, self.sets), "block_id": shapes.block_id(block.block_id()),
                     "result_finalize_block": {"tx_results": results, "app_hash": b64(app_hash)}}
            return [{"query": query.text, "data": {"type": "tendermint/event/NewBlock", "value": value},
                     "events": {"tm.event": ["NewBlock"], "block.height": [str(h)]}}]
        out: list[JSON] = []
        if query.tx_height is not None and query.tx_height != h:
            return out
        for index, (raw, tx_hash, result) in enumerate(zip(block.txs, outcome.tx_hashes, outcome.results,
                                                          strict=True)):
            hash_hex = hex_upper(tx_hash)
            if query.tx_hash is not None and query.tx_hash != hash_hex:
                continue
            out.append({"query": query.text,
                        "data": {"type": "tendermint/event/Tx",
                                 "value": {"TxResult": {"height": str(h), "index": index, "tx": b64(raw),
                                                        "result": shapes.tx_result(result)}}},
                        "events": {"tm.event": ["Tx"], "tx.hash": [hash_hex], "tx.height": [str(h)]}})
        return out
