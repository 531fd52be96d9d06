"""The node as its constructor builds it, before it runs: complete, and what it does with
the txs its peers gossip."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from chain.crypto import PrivateKey
from chain.genesis import operator_key_for
from chain.params import Params
from chain.transition import least_fee, sign_tx
from chain.types import Transfer
from node import devnet
from node.config import load
from node.daemon import Node
from node.rpc.methods import CODE_MEMPOOL_FULL
from p2p.blocks import Announcement
from p2p.network import Validation
from p2p.peers import PeerId

from chainkit import LocalChain, sign_commit


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A one-validator devnet's node whose mempool holds one tx at most."""
    (home,) = devnet.create(tmp_path, 1, chain_id="bizra-devnet-7", p2p_port=26_656, rpc_port=8_080,
                            params=Params())
    built = Node(home.home, load(home.home.config_file, environ={"BIZRA_MEMPOOL_MAX_TXS": "1"}))
    try:
        yield built
    finally:
        built.close()


async def test_a_peer_that_gossips_a_forged_tx_loses_score_and_others_do_not(node: Node) -> None:
    body = Transfer(bytes(20), 1)
    fee = least_fee(node.chain_config.params, 0, body)
    unfunded = sign_tx(node.chain_id, PrivateKey.generate(), 0, body, fee)
    forged = unfunded[:-1] + bytes([unfunded[-1] ^ 1])
    forger, relay = PeerId("forger"), PeerId("relay")
    before = node.network.score(forger), node.network.score(relay)

    await node.intake.admit([(forger, forged), (relay, unfunded)])

    assert node.network.score(forger) < before[0]
    assert node.network.score(relay) == before[1]  # refused (it cannot pay), but signed
    assert node.counters.txs_received == 2 and node.counters.txs_refused == 2
    assert len(node.mempool) == 0


async def test_check_tx_says_when_the_mempool_is_full(node: Node) -> None:
    assert node.validator_key is not None
    operator = operator_key_for(node.validator_key)
    body, params = Transfer(bytes(20), 1), node.chain_config.params
    first, second = (sign_tx(node.chain_id, operator, n, body, least_fee(params, n, body)) for n in (0, 1))
    assert await node.submit_tx(first)

    answer = await node.rpc.methods.call("check_tx", {"tx": base64.b64encode(second).decode()})

    assert answer["code"] == CODE_MEMPOOL_FULL and "limit of 1 txs" in answer["log"]


def announcement(node: Node, height: int, key: PrivateKey) -> Announcement:
    """A block of ``height`` (its body does not matter here), its commit signed by ``key``
    as the node's one validator."""
    block = LocalChain(validators=1, chain_id=node.chain_id).next_block()
    block = dataclasses.replace(block, header=dataclasses.replace(block.header, height=height))
    members = node.chain.members(node.store.height + 1)
    return Announcement(block.header, sign_commit(node.chain_id, {members[0].pubkey: key}, members, block))


async def test_only_announcements_whose_commit_verifies_are_forwarded(node: Node) -> None:
    assert node.validator_key is not None
    peer = PeerId("announcer")
    async with trio.open_nursery() as nursery:
        await nursery.start(node.signatures.run)
        check = node._check_announcement
        assert await check(peer, announcement(node, 1, node.validator_key)) is Validation.ACCEPT
        assert await check(peer, announcement(node, 1, PrivateKey.generate())) is Validation.REJECT
        # Heights it has, and heights so far ahead that it knows no validator set for them.
        assert await check(peer, announcement(node, 0, node.validator_key)) is Validation.IGNORE
        assert await check(peer, announcement(node, 10**9, node.validator_key)) is Validation.IGNORE
        assert node.signatures.checked == 2  # the two commits of height 1, one signature each
        nursery.cancel_scope.cancel()


def test_a_constructed_node_has_every_part_before_it_runs(node: Node) -> None:
    assert node.store.height == 0 and node.driver is None
    assert node.rpc.methods.node is node and node.validator_key is not None
    assert node.not_ready() is None  # a one-validator chain needs no peers
