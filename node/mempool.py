"""The mempool: txs admitted and waiting for a block.

Admission (§3) refuses, with an InvalidTx that says why, a tx that does not decode, is
too large, pays less than its size is due (§3.4), is already pending or committed, is not signed
by its sender, does not carry its sender's next nonce (the account's nonce plus the
sender's pending txs), or whose sender cannot pay its fee on top of its pending ones;
and a tx over the pool's limits (count, bytes, per sender) with MempoolFull.
Signatures are checked a batch at a time, in a worker thread (a few, on the event loop,
where a thread's round trip would cost more), and remembered in the node's
verified-hash cache, so block execution does not check them again.

A tx is found by its hash (:meth:`Mempool.get`) or its short id (:meth:`by_short_id`,
to rebuild a proposed block named so): a pending one, or one seen lately that is not
pending (evicted, or refused with a valid signature: the pool was full, or its sender's
earlier tx was refused; or gossiped while the pool was full, kept unchecked:
:meth:`keep`), kept up to ``RECENT_BYTES``, least recently seen out.

Pending txs come out (:meth:`Mempool.reap`) in the order they were admitted, first come
first served (as CometBFT's mempool), which is each sender's nonce order; while a block
is built ahead, each tx admitted is also handed to it (:attr:`Mempool.arrivals`).
After each block (:meth:`Mempool.update`) the committed txs leave and the rest are
checked again against the new state: those whose nonce has passed, or whose sender can
no longer pay, are evicted.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import trio

from chain.crypto import BatchVerifier, VerifiedCache, address_of, verify_many, verify_many_in_background
from chain.errors import BizraError, InvalidTx
from chain.ledger import Ledger, StateReader
from chain.params import ChainConfig
from chain.transition import decode_tx, forged_tx, tx_sign_prefix, tx_signature, verify_tx_signature
from chain.types import Account, Tx, tx_hash
from node.config import MempoolConfig
from p2p.blocks import short_id

INLINE_CHECKS = 8
"""Fewer signatures than this are checked on the event loop (~0.1 ms each)."""
ADMIT_TURN = 256
"""Txs admitted between two turns of the event loop."""
RECENT_BYTES = 32 << 20
"""Txs seen lately and not pending, kept for rebuilding blocks (~250,000 transfers)."""
ACCOUNTS_KEPT = 65_536
"""Senders' accounts read for admission and kept until the next block (at most)."""


class MempoolFull(BizraError):
    """The pool is at a limit; the message says which. Try again after a block."""


@dataclass(frozen=True, slots=True)
class _Pending:
    raw: bytes
    hash: bytes
    sender: bytes
    nonce: int
    fee: int
    tx: Tx


class Mempool:
    """See the module docstring. ``state`` is read for nonces and balances: the node's
    latest committed state."""

    def __init__(self, config: ChainConfig, state: StateReader, limits: MempoolConfig,
                 verified: VerifiedCache, verifier: BatchVerifier | None = None) -> None:
        """``verifier`` checks the signatures of a batch of txs (the node's: worker
        processes; by default, threads); a few at a time are checked on the event loop
        instead."""
        self.config = config
        self.verifier = verifier if verifier is not None else verify_many_in_background
        self.state = state
        self.limits = limits
        self.verified = verified
        self._senders: OrderedDict[bytes, list[_Pending]] = OrderedDict()
        self._fees: dict[bytes, int] = {}
        """Each sender's pending fees, summed (so that admission does not sum them)."""
        self._hashes: dict[bytes, _Pending] = {}
        """Pending txs by hash, in the order they were admitted."""
        self._accounts: dict[bytes, Account] = {}
        """Senders' accounts as admission read them since the last block (each read and
        decoded once, not once per tx)."""
        self.arrivals: list[bytes] | None = None
        """When a list, the encoding of each tx admitted is appended to it (the block
        being built ahead takes them from there as they come)."""
        self.bytes = 0
        self._recent: OrderedDict[bytes, bytes] = OrderedDict()
        self._recent_bytes = 0
        self._short: dict[bytes, bytes] = {}
        """The hash of each pending or recent tx by its short id (the first one seen of
        txs sharing one)."""

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._hashes

    def has_room(self) -> bool:
        """Whether the pool is below its limits in count and bytes."""
        return len(self._hashes) < self.limits.max_txs and self.bytes < self.limits.max_bytes

    def get(self, tx_hash: bytes) -> bytes | None:
        """The tx of ``tx_hash`` if it is pending or was seen lately, else None."""
        pending = self._hashes.get(tx_hash)
        return pending.raw if pending is not None else self._recent.get(tx_hash)

    def decoded(self, tx_hash: bytes) -> Tx | None:
        """The decoding of the pending tx of ``tx_hash``, if any (block execution takes it
        rather than decoding the tx again). Safe from a worker thread: one dict lookup."""
        pending = self._hashes.get(tx_hash)
        return None if pending is None else pending.tx

    def by_short_id(self, sid: bytes) -> tuple[bytes, bytes] | None:
        """The hash and encoding of a pending or recent tx whose short id is ``sid``."""
        h = self._short.get(sid)
        if h is None:
            return None
        raw = self.get(h)
        return None if raw is None else (h, raw)

    def keep(self, raws: Sequence[bytes]) -> None:
        """Keep ``raws`` among the txs seen lately, unchecked and not admitted (peers'
        txs that came while the pool was full): a proposed block that names them is
        rebuilt without fetching them; it must match its header, and its execution
        checks their signatures."""
        limit = self.config.params.max_tx_bytes
        for raw in raws:
            if len(raw) <= limit:
                h = tx_hash(raw)
                if h not in self._hashes:
                    self._remember(h, raw)

    def _forget(self, h: bytes) -> None:
        """Drop ``h``'s short id once the tx is neither pending nor recent."""
        sid = short_id(h)
        if self._short.get(sid) == h and h not in self._hashes and h not in self._recent:
            del self._short[sid]

    def _remember(self, h: bytes, raw: bytes) -> None:
        if h in self._recent:
            return
        self._recent[h] = raw
        self._recent_bytes += len(raw)
        self._short.setdefault(short_id(h), h)
        while self._recent_bytes > RECENT_BYTES:
            old_hash, old = self._recent.popitem(last=False)
            self._recent_bytes -= len(old)
            self._forget(old_hash)

    async def add_many(self, raws: Sequence[bytes], known: Mapping[bytes, tuple[bytes, Tx]] | None = None
                       ) -> list[bytes | InvalidTx | MempoolFull]:
        """Admit each of ``raws`` in order: its hash, or the error that refused it (a
        ForgedTx for a signature that is not its sender's). Signatures of the ones not in
        the verified cache are checked together. ``known``: the hash and decoding of some
        of ``raws`` (by encoding), found already by :func:`~chain.transition.decode_tx`."""
        decoded: list[tuple[bytes, bytes, Tx] | InvalidTx] = []
        for raw in raws:
            found = known.get(raw) if known else None
            if found is not None:
                decoded.append((raw, *found))
                continue
            try:
                decoded.append((raw, tx_hash(raw), decode_tx(raw, self.config.params)))
            except InvalidTx as exc:
                decoded.append(exc)
        forged = await self._check_signatures([e for e in decoded if not isinstance(e, InvalidTx)])
        out: list[bytes | InvalidTx | MempoolFull] = []
        for n, entry in enumerate(decoded, 1):
            if n % ADMIT_TURN == 0:
                await trio.lowlevel.checkpoint()  # votes and block parts wait for no more
            if isinstance(entry, InvalidTx):
                out.append(entry)
            elif entry[1] in forged:
                out.append(forged_tx())
            else:
                try:
                    self._admit(*entry)
                    out.append(entry[1])
                except (InvalidTx, MempoolFull) as exc:
                    self._remember(entry[1], entry[0])  # signed by its sender: a block may name it
                    out.append(exc)
        return out

    async def preverify(self, raws: Sequence[bytes]) -> None:
        """Check the signatures of ``raws`` together and remember the valid ones, so that
        admitting them one at a time after (the txs of an RPC batch) checks none again."""
        entries = []
        for raw in raws:
            try:
                entries.append((raw, tx_hash(raw), decode_tx(raw, self.config.params)))
            except InvalidTx:
                continue  # its admission will say why
        await self._check_signatures(entries)

    async def _check_signatures(self, entries: list[tuple[bytes, bytes, Tx]]) -> set[bytes]:
        """The hashes of ``entries`` whose signature is invalid; the valid ones join the
        verified cache. Many are checked by the ``verifier``, a few on the event loop
        (where a round trip would cost more than the checks)."""
        unchecked = [entries[i] for i in self.verified.unknown([h for _, h, _ in entries])]
        if not unchecked:
            return set()
        prefix = tx_sign_prefix(self.config.chain_id)
        items = [tx_signature(prefix, raw) for raw, _, _ in unchecked]
        if len(items) < INLINE_CHECKS:
            valid = verify_many(items)
        else:
            valid = await trio.to_thread.run_sync(self.verifier(items).result)
        self.verified.add_all([h for (_, h, _), ok in zip(unchecked, valid, strict=True) if ok])
        return {h for (_, h, _), ok in zip(unchecked, valid, strict=True) if not ok}

    async def add(self, raw: bytes) -> bytes:
        """Admit ``raw``; its hash. Raises InvalidTx or MempoolFull."""
        (result,) = await self.add_many([raw])
        if isinstance(result, BizraError):
            raise result
        return result

    def check(self, raw: bytes) -> None:
        """Raise InvalidTx (or MempoolFull) unless ``raw`` would be admitted now; admits
        nothing (``check_tx``). The signature is checked on the calling thread."""
        tx = decode_tx(raw, self.config.params)
        h = tx_hash(raw)
        if h not in self.verified:
            verify_tx_signature(self.config.chain_id, raw)
        self._check(raw, h, tx)

    def _check(self, raw: bytes, h: bytes, tx: Tx) -> bytes:
        """The sender's address, once every rule but the signature's holds."""
        if h in self._hashes:
            raise InvalidTx("tx already in the mempool")
        sender = address_of(tx.sender)
        account = self._accounts.get(sender)
        if account is None:
            if len(self._accounts) >= ACCOUNTS_KEPT:
                self._accounts.clear()
            account = self._accounts[sender] = Ledger(self.state).account(sender)
        queue = self._senders.get(sender, [])
        if queue and queue[0].nonce < account.nonce:
            # Pending txs the state has already passed are committed ones this pool has
            # not heard of yet (the block's recheck comes right after the store's write).
            live = [p for p in queue if p.nonce >= account.nonce]
            count, pending_fees = len(live), sum(p.fee for p in live)
        else:
            count, pending_fees = len(queue), self._fees.get(sender, 0)
        expected = account.nonce + count
        if tx.nonce != expected:
            if tx.nonce < account.nonce:
                raise InvalidTx(f"nonce {tx.nonce} was used already: the account's next nonce is "
                                f"{account.nonce}")
            raise InvalidTx(f"nonce {tx.nonce} is not the sender's next one ({expected}, counting "
                            f"{count} pending)")
        fees = pending_fees + tx.fee
        if account.balance < fees:
            raise InvalidTx(f"balance {account.balance} cannot pay the fee {tx.fee} on top of "
                            f"{fees - tx.fee} in pending fees")
        limits = self.limits
        if len(self._hashes) >= limits.max_txs:
            raise MempoolFull(f"the mempool holds its limit of {limits.max_txs} txs")
        if self.bytes + len(raw) > limits.max_bytes:
            raise MempoolFull(f"the mempool holds its limit of {limits.max_bytes} bytes")
        if count >= limits.max_per_sender:
            raise MempoolFull(f"the sender has {count} pending txs, the limit")
        return sender

    def _admit(self, raw: bytes, h: bytes, tx: Tx) -> None:
        sender = self._check(raw, h, tx)
        pending = _Pending(raw, h, sender, tx.nonce, tx.fee, tx)
        self._senders.setdefault(sender, []).append(pending)
        self._fees[sender] = self._fees.get(sender, 0) + tx.fee
        self._hashes[h] = pending
        self._short.setdefault(short_id(h), h)
        self.bytes += len(raw)
        if self.arrivals is not None:
            self.arrivals.append(raw)

    def reap(self) -> list[bytes]:
        """Pending txs in block order: the order they were admitted in (each sender's
        in nonce order)."""
        return [p.raw for p in self._hashes.values()]

    def pending(self, limit: int) -> list[bytes]:
        """Up to ``limit`` pending txs, in block order (``unconfirmed_txs``)."""
        return [p.raw for p in itertools.islice(self._hashes.values(), limit)]

    def update(self, committed: Iterable[bytes]) -> int:
        """After a block: drop its txs (``committed``: their hashes) and those the new
        state makes stale; the number evicted (not counting the committed ones)."""
        gone = set(committed)
        evicted = 0
        self._accounts.clear()
        ledger = Ledger(self.state)
        hashes, short, recent = self._hashes, self._short, self._recent
        dropped_bytes = 0
        for sender, queue in list(self._senders.items()):
            account = ledger.account(sender)
            kept: list[_Pending] = []
            nonce, fees = account.nonce, 0
            for p in queue:
                h = p.hash
                if h not in gone and p.nonce == nonce and fees + p.fee <= account.balance:
                    kept.append(p)
                    nonce += 1
                    fees += p.fee
                    continue
                del hashes[h]
                dropped_bytes += len(p.raw)
                if h in gone:
                    sid = short_id(h)
                    if short.get(sid) == h and h not in recent:
                        del short[sid]
                else:
                    evicted += 1
                    self._remember(h, p.raw)
            if len(kept) == len(queue):
                continue
            if kept:
                self._senders[sender] = kept
                self._fees[sender] = fees
            else:
                del self._senders[sender]
                del self._fees[sender]
        self.bytes -= dropped_bytes
        return evicted
