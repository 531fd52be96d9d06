"""A peer's outbound gossip queue (the libp2p adapter's): votes, proposals and block
announcements go before tx batches and find room when tx batches fill the queue."""

from __future__ import annotations

from libp2p.pubsub.pb import rpc_pb2

from p2p.host import OUTBOUND_QUEUE, URGENT_QUEUE, _UrgentFirst

TXS, CONSENSUS = "/bizra/c/txs/1", "/bizra/c/consensus/1"


def rpc(topic: str, data: bytes) -> rpc_pb2.RPC:
    message = rpc_pb2.RPC()
    published = message.publish.add()
    published.topicIDs.append(topic)
    published.data = data
    return message


def test_votes_go_first_and_are_not_dropped_behind_tx_batches() -> None:
    queue = _UrgentFirst(OUTBOUND_QUEUE, {TXS})
    for i in range(OUTBOUND_QUEUE):
        assert queue.push(rpc(TXS, b"txs %d" % i))
    assert not queue.push(rpc(TXS, b"one batch too many"))  # dropped, as py-libp2p does
    assert len(queue) == OUTBOUND_QUEUE
    assert queue.push(rpc(CONSENSUS, b"vote"))
    assert queue.push(rpc_pb2.RPC(), priority=True)  # py-libp2p's control messages
    first = queue.pop()
    assert first is not None and first.publish[0].data == b"vote"
    assert queue.pop() == rpc_pb2.RPC()
    second = queue.pop()
    assert second is not None and second.publish[0].data == b"txs 0"


def test_urgent_messages_are_bounded_too() -> None:
    queue = _UrgentFirst(OUTBOUND_QUEUE, {TXS})
    for i in range(URGENT_QUEUE):
        assert queue.push(rpc(CONSENSUS, b"vote %d" % i))
    assert not queue.push(rpc(CONSENSUS, b"vote"))
    assert queue.push(rpc(TXS, b"txs"))
