"""Signature checks in worker processes, so that they run beside block execution.

Threads check signatures in parallel with each other (libsodium releases the GIL) but
not with Python code running elsewhere in the process: a verifier thread coming back
from libsodium waits for the GIL until the running thread is made to yield, so a block
executed while its signatures are checked in threads costs the sum of both. Worker
processes have no GIL in common with the node. Measured on 2 cores with
``bench/apply_block.py`` (10,000 transfers over 1,000,000 accounts): 19,650 tx/s with
threads, 22,467 tx/s with workers.

:class:`ProcessVerifier` has the signature of
:func:`chain.crypto.verify_many_in_background`, so it plugs into
:func:`chain.transition.apply_block` as its ``verifier``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from chain.crypto import SignedItem, verify_many, verify_many_in_background
from chain.sizes import PUBLIC_KEY_LEN, SIGNATURE_LEN
from node.verify_worker import U32

PROCESS_BATCH = 128
"""Smaller batches are checked by threads: shipping them costs more than it saves."""


class _Worker:
    """One worker process and the lock that gives it one request at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None

    def ask(self, items: Sequence[SignedItem]) -> list[bool]:
        """The verdicts for ``items`` (all of well-formed lengths); raises OSError or
        EOFError when the process is gone."""
        payload = [U32.pack(len(items))]
        for key, message, sig in items:
            payload.append(U32.pack(len(message)) + key + sig + message)
        with self.lock:
            process = self.process
            if process is None or process.poll() is not None:
                process = self.process = subprocess.Popen(
                    [sys.executable, "-P", "-m", "node.verify_worker"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                )
            assert process.stdin is not None and process.stdout is not None  # PIPE given
            process.stdin.write(b"".join(payload))
            process.stdin.flush()
            head = process.stdout.read(4)
            if len(head) != 4:
                raise EOFError("signature worker exited")
            (count,) = U32.unpack(head)
            verdicts = process.stdout.read(count)
            if count != len(items) or len(verdicts) != count:
                raise EOFError("signature worker answered short")
            return [v == 1 for v in verdicts]

    def close(self) -> None:
        with self.lock:
            process, self.process = self.process, None
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()  # the worker exits at end of input
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


class ProcessVerifier:
    """Checks batches of ``(public_key, message, signature)`` on one worker process per
    core, started on first use and restarted if one dies.

    A call returns a future at once, like :func:`chain.crypto.verify_many_in_background`,
    and its result is what :func:`chain.crypto.verify_many` would return. If a worker
    fails, its share is checked in this process instead: a result is never lost.
    Use as a context manager, or call :meth:`close`, to stop the workers.
    """

    def __init__(self, workers: int | None = None) -> None:
        count = workers or os.cpu_count() or 1
        self._workers = [_Worker() for _ in range(count)]
        # One thread per worker carries its request and waits for its answer.
        self._io = ThreadPoolExecutor(max_workers=count, thread_name_prefix="bizra-verify-io")

    def __call__(self, items: Sequence[SignedItem]) -> Future[list[bool]]:
        if len(items) < PROCESS_BATCH:
            return verify_many_in_background(items)
        shares = len(self._workers)
        parts = [self._io.submit(self._check, self._workers[i],
                                 items[i * len(items) // shares:(i + 1) * len(items) // shares])
                 for i in range(shares)]
        combined: Future[list[bool]] = Future()
        remaining = [len(parts)]
        lock = threading.Lock()

        def part_done(_: Future[list[bool]]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            results: list[bool] = []
            for part in parts:
                error = part.exception()
                if error is not None:
                    combined.set_exception(error)
                    return
                results.extend(part.result())
            combined.set_result(results)

        for part in parts:
            part.add_done_callback(part_done)
        return combined

    @staticmethod
    def _check(worker: _Worker, items: Sequence[SignedItem]) -> list[bool]:
        well_formed = [i for i, (key, _, sig) in enumerate(items)
                       if len(key) == PUBLIC_KEY_LEN and len(sig) == SIGNATURE_LEN]
        verdicts = [False] * len(items)
        sendable = [items[i] for i in well_formed]
        try:
            answers = worker.ask(sendable)
        except (OSError, EOFError):
            worker.close()
            answers = verify_many(sendable)
        for i, ok in zip(well_formed, answers, strict=True):
            verdicts[i] = ok
        return verdicts

    def close(self) -> None:
        """Stop the worker processes (a later call starts them again)."""
        for worker in self._workers:
            worker.close()

    def __enter__(self) -> ProcessVerifier:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        self._io.shutdown(wait=True)
