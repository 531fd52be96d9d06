"""A signature-checking worker process: ``python -m node.verify_worker``.

Started by :class:`node.verifier.ProcessVerifier`. It reads requests on stdin and
answers each on stdout, until stdin closes (its parent exited or closed it):

- request: ``u32 count``, then per item ``u32 message_length || public_key (32) ||
  signature (64) || message``;
- answer: ``u32 count``, then one byte per item, 1 when the signature is valid.

All integers are big-endian. Ctrl-C reaches the whole process group, so the worker
ignores SIGINT and lets its parent decide when to stop.
"""

from __future__ import annotations

import signal
import struct
import sys
from typing import BinaryIO

from chain.crypto import verify
from chain.sizes import PUBLIC_KEY_LEN, SIGNATURE_LEN

U32 = struct.Struct(">I")
ITEM_HEAD = 4 + PUBLIC_KEY_LEN + SIGNATURE_LEN


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer requests until ``requests`` ends (or ends inside a request)."""
    while (head := _read_exactly(requests, 4)) is not None:
        (count,) = U32.unpack(head)
        verdicts = bytearray(count)
        for i in range(count):
            item = _read_exactly(requests, ITEM_HEAD)
            if item is None:
                return
            (length,) = U32.unpack_from(item)
            message = _read_exactly(requests, length)
            if message is None:
                return
            key = item[4:4 + PUBLIC_KEY_LEN]
            sig = item[4 + PUBLIC_KEY_LEN:]
            verdicts[i] = verify(key, message, sig)
        answers.write(U32.pack(count) + bytes(verdicts))
        answers.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
