"""Peers' txs into the mempool: each gossiped tx is decoded and hashed once, by the check
before its batch is forwarded, and admission reuses that; a forger loses score."""

from __future__ import annotations

import pytest

import node.mempool
import node.txintake
from chain.crypto import VerifiedCache, address_of
from chain.params import Params
from chain.transition import decode_tx
from chain.types import Transfer, Tx, tx_hash
from node.config import MempoolConfig
from node.mempool import Mempool
from node.txintake import TxIntake
from node.view import Counters
from p2p.network import Validation
from p2p.peers import PeerId

from chainkit import LocalChain


def counting(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every tx decoded, by the intake or the mempool."""
    decoded: list[bytes] = []

    def decode(raw: bytes, params: Params) -> Tx:
        decoded.append(raw)
        return decode_tx(raw, params)
    for module in (node.txintake, node.mempool):
        monkeypatch.setattr(module, "decode_tx", decode)
    return decoded


def intake(chain: LocalChain) -> tuple[TxIntake, dict[PeerId, float]]:
    penalties: dict[PeerId, float] = {}

    def penalize(peer: PeerId, points: float, reason: str) -> None:
        penalties[peer] = penalties.get(peer, 0) + points
    mempool = Mempool(chain.config, chain.state, MempoolConfig(), VerifiedCache())
    return TxIntake(mempool, chain.config.params, penalize, Counters()), penalties


def pay(chain: LocalChain, sender: int) -> bytes:
    return chain.tx(chain.users[sender], Transfer(address_of(chain.users[sender + 1].public_key), 1))


async def test_a_gossiped_tx_is_decoded_once_checked_then_admitted(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = LocalChain()
    txs = [pay(chain, i) for i in range(3)]
    decoded = counting(monkeypatch)
    taking, _ = intake(chain)
    assert [taking.check(tx) for tx in txs] == [Validation.ACCEPT] * 3
    results = await taking.admit([(PeerId("a"), bytes(tx)) for tx in txs])  # equal bytes, other objects
    assert results == [tx_hash(tx) for tx in txs] and decoded == txs
    assert taking.check(txs[0]) == Validation.IGNORE  # pending now


async def test_a_tx_not_checked_first_is_still_decoded_and_a_forger_loses_score(
        monkeypatch: pytest.MonkeyPatch) -> None:
    chain = LocalChain()
    good = pay(chain, 0)
    forged = good[:-1] + bytes([good[-1] ^ 1])
    decoded = counting(monkeypatch)
    taking, penalties = intake(chain)
    assert taking.check(b"not a tx") == Validation.REJECT
    results = await taking.admit([(PeerId("relay"), good), (PeerId("forger"), forged)])
    assert results[0] == tx_hash(good) and decoded.count(good) == 1
    assert set(penalties) == {PeerId("forger")}
    assert taking.counters.txs_received == 2 and taking.counters.txs_refused == 1


def test_the_decodings_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node.txintake, "DECODED", 2)
    chain = LocalChain()
    taking, _ = intake(chain)
    for i in range(4):
        taking.check(pay(chain, i))
    assert len(taking._decoded) == 2


