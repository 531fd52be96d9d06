"""A node's gossip message ids (its peer id and a sequence number) stay new to its peers
across a restart, however many messages it sent before: its peers drop a message
whose id they saw in the last 120 s as a duplicate."""

from __future__ import annotations

from p2p.host import Libp2pNetwork

SEED = bytes(range(32))


def test_a_restarted_node_numbers_its_messages_after_the_ones_it_sent_before() -> None:
    before = Libp2pNetwork(SEED)
    sent = [before._pubsub._next_seqno() for _ in range(100_000)]  # a busy minute's votes and txs
    after = Libp2pNetwork(SEED)  # the same node, started again a moment later
    assert after._pubsub._next_seqno() > sent[-1]
