"""Signature checks in worker processes give exactly the verdicts of in-process checks,
survive a worker's death, and serve block execution."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator

import pytest

from chain.crypto import PrivateKey, SignedItem, verify_many
from chain.transition import apply_block
from chain.types import Transfer
from node.verifier import PROCESS_BATCH, ProcessVerifier
from node.verify_worker import U32, serve

from chainkit import LocalChain


def batch(size: int) -> list[SignedItem]:
    """Valid signatures, with every 7th message altered and a few malformed items."""
    keys = [PrivateKey.from_seed(bytes([i]) * 32) for i in range(8)]
    items: list[SignedItem] = []
    for i in range(size):
        k = keys[i % 8]
        msg = i.to_bytes(4, "big") * (i % 5)
        sig = k.sign(msg)
        if i % 7 == 3:
            msg += b"!"
        items.append((k.public_key, msg, sig))
    items[1] = (items[1][0][:31], items[1][1], items[1][2])  # short key
    items[2] = (items[2][0], items[2][1], b"")  # no signature
    return items


@pytest.fixture
def verifier() -> Iterator[ProcessVerifier]:
    with ProcessVerifier(workers=2) as v:
        yield v


def test_workers_agree_with_in_process_checks(verifier: ProcessVerifier) -> None:
    items = batch(PROCESS_BATCH * 2 + 3)
    expected = verify_many(items)
    assert verifier(items).result() == expected
    assert expected.count(False) > len(items) // 10
    assert verifier(items[:10]).result() == expected[:10]  # small batches: threads


def test_a_dead_worker_costs_no_verdict_and_is_replaced(verifier: ProcessVerifier) -> None:
    items = batch(PROCESS_BATCH * 2)
    expected = verify_many(items)
    assert verifier(items).result() == expected
    for worker in verifier._workers:
        assert worker.process is not None
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
    assert verifier(items).result() == expected  # the new workers answer
    assert verifier(items).result() == expected


def test_the_worker_protocol_answers_each_request_and_stops_at_end_of_input() -> None:
    items = [i for i in batch(20) if len(i[0]) == 32 and len(i[2]) == 64]
    request = U32.pack(len(items)) + b"".join(U32.pack(len(m)) + k + s + m for k, m, s in items)
    answers = io.BytesIO()
    serve(io.BytesIO(request * 2 + request[:10]), answers)  # a torn last request is dropped
    one = U32.pack(len(items)) + bytes(verify_many(items))
    assert answers.getvalue() == one * 2


def test_block_execution_with_worker_processes(verifier: ProcessVerifier) -> None:
    chain = LocalChain(users=4)
    txs = [chain.tx(chain.users[i % 4], Transfer(bytes(20), 1)) for i in range(PROCESS_BATCH + 10)]
    block = chain.next_block(txs)
    outcome = apply_block(chain.state, chain.state.app_hash, block, chain.config, verifier=verifier)
    assert len(outcome.results) == len(txs)
    threads = apply_block(chain.state, chain.state.app_hash, block, chain.config)
    assert threads.changes == outcome.changes
