"""A peer's signed peer record, which py-libp2p puts in every gossip RPC, is checked once
(and again after a while, or when it changes), not in every RPC; a bad one is never
taken as checked."""

from __future__ import annotations

import pytest
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

import p2p.host
from p2p.host import _SignedRecords

PEER = ID(b"peer-a")


def records(verdicts: list[bool]) -> tuple[_SignedRecords, list[bytes]]:
    """Records whose underlying check answers ``verdicts`` in turn; the records it was
    asked to check."""
    checked: list[bytes] = []
    records = _SignedRecords()

    def consume(msg: rpc_pb2.RPC, host: object, peer_id: ID) -> bool:
        checked.append(msg.senderRecord)
        return verdicts.pop(0)
    records._consume = consume
    return records, checked


def test_a_record_is_checked_once_again_when_it_changes_and_after_a_while(
        monkeypatch: pytest.MonkeyPatch) -> None:
    signed, checked = records([True] * 4)
    rpc = rpc_pb2.RPC(senderRecord=b"record 1")
    assert all(signed.consume(rpc, None, PEER) for _ in range(5))
    assert checked == [b"record 1"]
    assert signed.consume(rpc_pb2.RPC(senderRecord=b"record 2"), None, PEER)
    assert checked == [b"record 1", b"record 2"]
    monkeypatch.setattr(p2p.host, "RECORD_RECHECK_S", -1.0)
    assert signed.consume(rpc_pb2.RPC(senderRecord=b"record 3"), None, PEER)
    assert signed.consume(rpc_pb2.RPC(senderRecord=b"record 3"), None, PEER)
    assert checked == [b"record 1", b"record 2", b"record 3", b"record 3"]  # due again at once


def test_a_record_that_fails_is_never_taken_as_checked() -> None:
    signed, checked = records([False, False])
    rpc = rpc_pb2.RPC(senderRecord=b"forged")
    assert not signed.consume(rpc, None, PEER)
    assert not signed.consume(rpc, None, PEER)
    assert checked == [b"forged", b"forged"]
    assert signed.consume(rpc_pb2.RPC(), None, PEER)  # no record: nothing to check
