"""Gossip validation's signature checks: gathered into batches, run off the event loop,
bounded in what waits."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import trio
import trio.testing

from chain.crypto import PrivateKey, SignedItem, verify_many
from node.batch_verifier import BatchVerifier

KEY = PrivateKey.generate()


def signed(i: int, *, forged: bool = False) -> SignedItem:
    message = b"vote %d" % i
    signature = KEY.sign(message)
    return (KEY.public_key, message, bytes(64) if forged else signature)


async def test_concurrent_checks_go_in_one_batch_off_the_loop_and_each_gets_its_verdicts() -> None:
    threads: list[threading.Thread] = []

    def check(items: Sequence[SignedItem]) -> list[bool]:
        threads.append(threading.current_thread())
        return verify_many(items)

    verifier = BatchVerifier(check=check)
    answers: dict[int, list[bool] | None] = {}

    async def ask(i: int) -> None:
        answers[i] = await verifier.verify([signed(i), signed(i, forged=i % 2 == 1)])

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(ask, i)
        await trio.testing.wait_all_tasks_blocked()
        await nursery.start(verifier.run)
        while len(answers) < 50:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert answers == {i: [True, i % 2 == 0] for i in range(50)}
    assert verifier.batches == 1 and verifier.checked == 100 and verifier.pending == 0
    assert threads and threading.main_thread() not in threads


async def test_a_batch_is_at_most_max_batch_signatures() -> None:
    sizes: list[int] = []

    def check(items: Sequence[SignedItem]) -> list[bool]:
        sizes.append(len(items))
        return verify_many(items)

    verifier = BatchVerifier(max_batch=8, check=check)
    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(verifier.verify, [signed(i)])
        await trio.testing.wait_all_tasks_blocked()
        await nursery.start(verifier.run)
        while verifier.checked < 20:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert sizes == [8, 8, 4]


async def test_beyond_max_pending_a_caller_is_told_busy_at_once_and_nothing_is_checked() -> None:
    verifier = BatchVerifier(max_pending=10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.verify, [signed(i) for i in range(8)])
        await trio.testing.wait_all_tasks_blocked()
        assert await verifier.verify([signed(8), signed(9), signed(10)]) is None
        assert verifier.busy == 1 and verifier.pending == 8
        assert await verifier.verify([]) == []
        nursery.cancel_scope.cancel()
