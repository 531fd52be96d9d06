"""A node dials only the peers its peer manager picks: not those a peer names in a
gossip PRUNE (GossipSub's peer exchange), even when their addresses are known."""

from __future__ import annotations

from typing import Any

import multiaddr
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from p2p.host import Libp2pNetwork


def _peer_id(seed: int) -> ID:
    return ID.from_pubkey(create_new_key_pair(bytes([seed]) * 32).public_key)


async def test_a_prune_naming_peers_makes_no_dial() -> None:
    net = Libp2pNetwork(bytes(range(32)))
    named, sender = _peer_id(1), _peer_id(2)
    net._host.get_peerstore().add_addrs(named, [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/9")], 3600)
    dialed: list[Any] = []

    async def connect(peer_info: Any) -> None:
        dialed.append(peer_info)

    net._host.connect = connect
    prune = rpc_pb2.ControlPrune(topicID="bizra", peers=[rpc_pb2.PeerInfo(peerID=named.to_bytes())])
    await net._router.handle_prune(prune, sender)
    assert dialed == []
