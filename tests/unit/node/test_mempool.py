"""The mempool: what it admits and refuses (with the reason), its limits, the order txs
leave it in, and how a block cleans it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future

import pytest

import node.mempool
from chain.crypto import SignedItem, VerifiedCache, address_of, verify_many
from chain.errors import InvalidTx
from chain.transition import decode_tx
from chain.types import Transfer, tx_hash
from node.config import MempoolConfig
from node.mempool import Mempool, MempoolFull
from p2p.blocks import short_id

from chainkit import SEED, LocalChain, key, sign_tx


def pool(chain: LocalChain, **limits: int) -> Mempool:
    return Mempool(chain.config, chain.state, MempoolConfig(**limits), VerifiedCache())


def pay(chain: LocalChain, sender: int, amount: int = 1, **kw: int) -> bytes:
    to = address_of(chain.users[(sender + 1) % len(chain.users)].public_key)
    return chain.tx(chain.users[sender], Transfer(to, amount), **kw)


async def test_a_valid_tx_is_admitted_once() -> None:
    chain = LocalChain()
    mempool = pool(chain)
    tx = pay(chain, 0)
    assert await mempool.add(tx) == tx_hash(tx)
    assert tx_hash(tx) in mempool and len(mempool) == 1 and mempool.bytes == len(tx)
    with pytest.raises(InvalidTx, match="already in the mempool"):
        await mempool.add(tx)


async def test_each_kind_of_bad_tx_is_refused_with_its_reason() -> None:
    chain = LocalChain()
    mempool = pool(chain)
    good = pay(chain, 0)
    forged = good[:-1] + bytes([good[-1] ^ 1])
    poor = sign_tx(chain.config.chain_id, key(77), 0, Transfer(bytes(20), 1))
    due = decode_tx(poor, chain.config.params).fee
    results = await mempool.add_many([
        b"\x01\x02",
        forged,
        pay(chain, 1, nonce=3),
        poor,
        pay(chain, 2, fee=999),
        pay(chain, 3, amount=1, fee=2_000_000 * SEED),
    ])
    reasons = [str(r) for r in results]
    assert reasons[0].startswith("tx: ")
    assert reasons[1] == "invalid signature"
    assert reasons[2] == "nonce 3 is not the sender's next one (0, counting 0 pending)"
    assert reasons[3] == f"balance 0 cannot pay the fee {due} on top of 0 in pending fees"
    assert reasons[4].startswith("fee 999 is below ") and "min_fee 1000 + fee_per_byte 1 × " in reasons[4]
    assert reasons[5].startswith("balance ")
    assert all(isinstance(r, InvalidTx) for r in results) and len(mempool) == 0


async def test_a_sender_can_queue_its_next_nonces() -> None:
    chain = LocalChain()
    mempool = pool(chain)
    txs = [pay(chain, 0) for _ in range(3)]
    assert await mempool.add_many(txs) == [tx_hash(t) for t in txs]
    with pytest.raises(InvalidTx, match=r"nonce 1 is not the sender's next one \(3, counting 3 pending\)"):
        await mempool.add(pay(chain, 0, amount=2, nonce=1))  # a replacement is not taken either


@pytest.mark.parametrize("limits, message", [
    ({"max_txs": 2}, "limit of 2 txs"),
    ({"max_bytes": 300}, "limit of 300 bytes"),
    ({"max_per_sender": 2}, "the sender has 2 pending txs"),
])
async def test_a_full_pool_refuses_with_the_limit_it_hit(limits: dict[str, int], message: str) -> None:
    chain = LocalChain()
    mempool = pool(chain, **limits)
    await mempool.add(pay(chain, 0))
    await mempool.add(pay(chain, 0))
    with pytest.raises(MempoolFull, match=message):
        await mempool.add(pay(chain, 0))


async def test_txs_leave_first_come_first_served() -> None:
    chain = LocalChain()
    mempool = pool(chain)
    a = [pay(chain, 0) for _ in range(3)]
    b = [pay(chain, 1) for _ in range(2)]
    await mempool.add_many([a[0], b[0], a[1], a[2], b[1]])
    refused = pay(chain, 1, nonce=7)
    await mempool.add_many([refused])
    assert mempool.reap() == [a[0], b[0], a[1], a[2], b[1]]
    assert mempool.pending(2) == [a[0], b[0]]
    chain.run([a[0]])
    mempool.update([tx_hash(a[0])])
    assert mempool.reap() == [b[0], a[1], a[2], b[1]]


async def test_the_txs_admitted_are_handed_on_while_arrivals_are_watched() -> None:
    chain = LocalChain()
    mempool = pool(chain)
    before = pay(chain, 0)
    await mempool.add(before)
    mempool.arrivals = []
    after = [pay(chain, 0), pay(chain, 1)]
    await mempool.add_many([*after, pay(chain, 1, nonce=9)])
    assert mempool.arrivals == after


async def test_a_block_takes_its_txs_out_and_evicts_the_stale_ones() -> None:
    chain = LocalChain()
    mempool = pool(chain)
    mine = [pay(chain, 0) for _ in range(3)]
    theirs = pay(chain, 1)
    await mempool.add_many([*mine, theirs])
    # another node's block spends sender 1's nonce 0 with a different tx
    other = pay(chain, 1, amount=5, nonce=0)
    chain.run([mine[0], other])
    assert mempool.update([tx_hash(mine[0]), tx_hash(other)]) == 1
    assert list(mempool.reap()) == mine[1:]
    assert mempool.bytes == sum(len(t) for t in mine[1:])
    with pytest.raises(InvalidTx, match="nonce 0 was used already: the account's next nonce is 1"):
        await mempool.add(pay(chain, 1, amount=7, nonce=0))


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch of signatures the mempool checks, from now on."""
    sizes: list[int] = []

    def counting(items: Sequence[SignedItem]) -> list[bool]:
        sizes.append(len(items))
        return verify_many(items)

    def counting_in_background(items: Sequence[SignedItem]) -> Future[list[bool]]:
        done: Future[list[bool]] = Future()
        done.set_result(counting(items))
        return done

    monkeypatch.setattr(node.mempool, "verify_many", counting)  # a few, on the event loop
    monkeypatch.setattr(node.mempool, "verify_many_in_background", counting_in_background)
    return sizes


async def test_signatures_are_checked_once(checked: list[int]) -> None:
    chain = LocalChain()
    cache = VerifiedCache()
    first = Mempool(chain.config, chain.state, MempoolConfig(), cache)
    txs = [pay(chain, 0) for _ in range(4)]
    await first.add_many(txs)
    second = Mempool(chain.config, chain.state, MempoolConfig(), cache)  # e.g. after a recheck
    await second.add_many(txs)
    assert checked == [4]
    assert all(tx_hash(t) in cache for t in txs)


async def test_the_next_nonce_is_right_between_a_block_and_its_recheck() -> None:
    """The store has the block, the pool has not been told yet: a client's next tx is
    still admitted (a load test found it refused)."""
    chain = LocalChain()
    mempool = pool(chain)
    txs = [pay(chain, 0) for _ in range(3)]
    await mempool.add_many(txs)
    chain.run(txs[:2])  # committed; mempool.update not yet called
    following = pay(chain, 0)
    assert await mempool.add(following) == tx_hash(following)
    assert mempool.update([tx_hash(t) for t in txs[:2]]) == 0
    assert list(mempool.reap()) == [txs[2], following]


async def test_a_batch_preverified_together_is_admitted_without_checking_again(checked: list[int]) -> None:
    chain = LocalChain()
    mempool = pool(chain)
    txs = [pay(chain, 0) for _ in range(20)]
    forged = bytearray(pay(chain, 1))
    forged[-1] ^= 1
    await mempool.preverify([*txs, bytes(forged), b"junk"])
    assert checked == [21]  # one batch: the 20 and the forged one
    for tx in txs:
        await mempool.add(tx)
    with pytest.raises(InvalidTx, match="invalid signature"):
        await mempool.add(bytes(forged))
    assert checked == [21, 1]  # only the forged one, checked again when it came alone


async def test_a_tx_is_found_by_hash_pending_or_seen_lately_with_a_valid_signature(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What a proposed block named by short ids is rebuilt from: pending txs, and txs
    with a valid signature refused or evicted lately (the least recently seen go first
    past ``RECENT_BYTES``); never a forged one."""
    chain = LocalChain()
    mempool = pool(chain, max_txs=1)
    assert mempool.has_room()
    pending, full, gap = pay(chain, 0), pay(chain, 1), pay(chain, 2, nonce=5)
    forged = full[:-1] + bytes([full[-1] ^ 1])
    results = await mempool.add_many([pending, full, gap, forged])
    assert results[0] == tx_hash(pending) and isinstance(results[1], MempoolFull)
    assert not mempool.has_room()
    assert [mempool.get(tx_hash(tx)) for tx in (pending, full, gap, forged)] == [pending, full, gap, None]
    assert mempool.get(bytes(32)) is None

    monkeypatch.setattr(node.mempool, "RECENT_BYTES", 2 * len(full))
    later = pay(chain, 3, nonce=9)
    await mempool.add_many([later])
    assert mempool.get(tx_hash(full)) is None  # the least recently seen, out
    assert mempool.get(tx_hash(gap)) == gap and mempool.get(tx_hash(later)) == later

    def by_short_id(tx: bytes) -> tuple[bytes, bytes] | None:
        return mempool.by_short_id(short_id(tx_hash(tx)))
    assert [by_short_id(tx) for tx in (pending, full, gap, later)] == \
        [(tx_hash(pending), pending), None, (tx_hash(gap), gap), (tx_hash(later), later)]
    mempool.update([tx_hash(pending)])  # committed: gone, short id and all
    assert by_short_id(pending) is None and mempool.by_short_id(bytes(8)) is None

    gossiped = pay(chain, 4)  # while the pool was full: kept unchecked, not admitted
    mempool.keep([gossiped, bytes(chain.config.params.max_tx_bytes + 1)])
    assert by_short_id(gossiped) == (tx_hash(gossiped), gossiped) and tx_hash(gossiped) not in mempool


async def test_a_senders_account_is_read_once_between_blocks() -> None:
    """Admission reads each sender's account once until the next block (whose recheck
    reads it again): a block that moves the nonce on is seen after it."""
    chain = LocalChain()
    reads: list[bytes] = []

    class Counting:
        def get(self, key: bytes) -> bytes | None:
            reads.append(key)
            return chain.state.get(key)

        def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
            return chain.state.iter_prefix(prefix)

    mempool = Mempool(chain.config, Counting(), MempoolConfig(), VerifiedCache())
    txs = [pay(chain, 0) for _ in range(5)]
    await mempool.add_many(txs[:3])
    await mempool.add_many(txs[3:])
    assert len(reads) == 1
    chain.run(txs[:4])
    mempool.update([tx_hash(t) for t in txs[:4]])
    with pytest.raises(InvalidTx, match="nonce 0 was used already: the account's next nonce is 4"):
        await mempool.add(pay(chain, 0, nonce=0))
