"""The child process of the store crash test: commits blocks of transfers to a LevelDB
store, resuming from what the store holds, until it is killed.

Usage: ``python crashwriter.py STORE_DIR TXS_PER_BLOCK``; prints ``ready HEIGHT`` once
the store is open.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chain.blocks import make_block
from chain.commits import median_time
from chain.crypto import address_of
from chain.ledger import Ledger
from chain.transition import apply_block
from chain.types import Transfer
from chain.validatorsets import validator_set_at
from storage.store import Store

from chainkit import LocalChain, sign_commit, sign_tx
from storekit import GENESIS_HASH


def main(directory: Path, txs_per_block: int) -> None:
    chain = LocalChain(users=8)
    config = chain.config
    store = Store.open_leveldb(directory, chain.genesis, GENESIS_HASH)
    print("ready", store.height, flush=True)
    users = chain.users
    while True:
        height = store.height + 1
        ledger = Ledger(store.state)
        members = validator_set_at(ledger, height, config)
        last_commit = store.blocks.seen_commit()
        time_ns = (chain.genesis.genesis_time_ns if last_commit is None
                   else median_time(last_commit, validator_set_at(ledger, height - 1, config)))
        nonces = {u.public_key: ledger.account(address_of(u.public_key)).nonce for u in users}
        txs = []
        for i in range(txs_per_block):
            sender, recipient = users[i % len(users)], users[(i + height) % len(users)]
            txs.append(sign_tx(config.chain_id, sender, nonces[sender.public_key],
                               Transfer(address_of(recipient.public_key), 1 + i)))
            nonces[sender.public_key] += 1
        block = make_block(store.state, store.app_hash, config, txs=txs,
                           proposer_address=address_of(members[0].pubkey), time_ns=time_ns,
                           last_commit=last_commit)
        outcome = apply_block(store.state, store.app_hash, block, config)
        store.commit_block(block, sign_commit(config.chain_id, chain.signers, members, block), outcome)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
