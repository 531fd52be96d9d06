"""A devnet whose validator's store holds a chain built directly (no consensus), for the
state sync test: many funded accounts, blocks of a few signed transfers each."""

from __future__ import annotations

from pathlib import Path

import trio

from chain.blocks import make_block
from chain.commits import vote_sign_bytes
from chain.crypto import PrivateKey, VerifiedCache, address_of
from chain.genesis import GenesisAccount
from chain.params import USEED_PER_SEED, Params
from chain.state import chain_config
from chain.transition import least_fee, sign_tx
from chain.types import Block, Commit, CommitFlag, CommitSig, Transfer, Vote, VoteType
from node import devnet
from node.chainstate import NodeChain
from node.config import MempoolConfig
from node.home import Home
from node.loadgen import account_key
from node.mempool import Mempool
from storage.store import Store

BALANCE = 1_000 * USEED_PER_SEED


def single_commit(chain_id: str, key: PrivateKey, block: Block) -> Commit:
    """The commit of ``block`` by a set of one validator, ``key``'s."""
    h = block.header
    ts = h.time_ns + 1_000_000
    vote = Vote(VoteType.PRECOMMIT, h.height, 0, block.block_id(), ts, address_of(key.public_key), 0, b"")
    return Commit(h.height, 0, block.block_id(),
                  (CommitSig(CommitFlag.COMMIT, ts, key.sign(vote_sign_bytes(chain_id, vote))),))


async def commit_transfers(home: Home, blocks: int, accounts: int, per_block: int) -> None:
    """``blocks`` blocks into the validator's store of ``home``, each of ``per_block``
    transfers from the next accounts in turn to their neighbours."""
    genesis, genesis_hash = home.genesis()
    config = chain_config(genesis)
    key = home.validator_key()
    assert key is not None
    store = Store.open_leveldb(home.store_dir, genesis, genesis_hash)
    try:
        verified = VerifiedCache()
        mempool = Mempool(config, store.state, MempoolConfig(), verified)
        chain = NodeChain(store, genesis, config, mempool, verified)
        nonces = [0] * accounts
        sender = 0
        for _ in range(blocks):
            txs = []
            for _ in range(per_block):
                body = Transfer(address_of(account_key((sender + 1) % accounts).public_key), 1)
                nonce = nonces[sender]
                txs.append(sign_tx(config.chain_id, account_key(sender), nonce, body,
                                   least_fee(config.params, nonce, body)))
                nonces[sender] += 1
                sender = (sender + 1) % accounts
            block = make_block(store.state, store.app_hash, config, txs=txs,
                               proposer_address=address_of(key.public_key), time_ns=chain.next_block_time(),
                               last_commit=store.blocks.seen_commit())
            await chain.commit(block, single_commit(config.chain_id, key, block))
    finally:
        store.close()


def build(directory: Path, *, chain_id: str, accounts: int, blocks: int, per_block: int, p2p_port: int,
          rpc_port: int, params: Params, full_nodes: int) -> list[devnet.DevnetNode]:
    """A devnet of one validator and ``full_nodes`` full nodes in ``directory``, whose
    genesis funds ``accounts`` accounts (``node.loadgen.account_key``) and whose
    validator's store holds ``blocks`` blocks already."""
    funded = [GenesisAccount(address_of(account_key(i).public_key), BALANCE) for i in range(accounts)]
    nodes = devnet.create(directory, 1, chain_id=chain_id, p2p_port=p2p_port, rpc_port=rpc_port,
                          params=params, accounts=funded, full_nodes=full_nodes)
    trio.run(commit_transfers, nodes[0].home, blocks, accounts, per_block)
    return nodes
