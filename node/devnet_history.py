"""A devnet with a history: blocks of signed transfers committed straight into its
validator's store, as that validator's consensus would have committed them.

For what needs a long chain at once (the sync benchmark, tests of sync): a devnet of
one validator is made with ``accounts`` funded (:func:`funded`), then :func:`build`
commits ``blocks`` blocks in which every one of those accounts sends one transfer (or
:func:`commit_all` those of :func:`few_per_block`: a few transfers a block over many
accounts, for the state sync benchmark and test). The
blocks are built as the proposer builds them and committed by
:class:`node.chainstate.NodeChain`, each with a commit signed by the validator's key,
so a node that syncs them checks everything it would check on a real chain.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

import trio

from chain.blocks import make_block
from chain.commits import vote_sign_bytes
from chain.crypto import PrivateKey, VerifiedCache, address_of
from chain.genesis import GenesisAccount
from chain.params import USEED_PER_SEED, Params
from chain.state import chain_config
from chain.transition import least_fee, sign_tx
from chain.types import Block, Commit, CommitFlag, CommitSig, Transfer, Vote, VoteType
from node.chainstate import NodeChain
from node.config import MempoolConfig
from node.home import Home
from node.loadgen import account_key
from node.mempool import Mempool
from storage.store import Store

BALANCE = 1_000_000 * USEED_PER_SEED
"""What each sending account holds at genesis."""
BLOCK_TIME_MS = 3_600_000
"""The block time to give such a devnet: its validator's next block is due an hour after
the history's last one, so it serves the history rather than extending it."""

Progress = Callable[[int, float], None]
"""Told each committed height and the seconds since the build began."""


@functools.cache
def senders(count: int) -> list[PrivateKey]:
    """The keys of the ``count`` sending accounts (:func:`node.loadgen.account_key`)."""
    return [account_key(i) for i in range(count)]


def funded(count: int) -> list[GenesisAccount]:
    """The genesis accounts :func:`build` needs for blocks of ``count`` transfers."""
    return [GenesisAccount(address_of(k.public_key), BALANCE) for k in senders(count)]


def block_txs(chain_id: str, height: int, count: int) -> list[bytes]:
    """The txs of block ``height``: one transfer from each of the ``count`` accounts (at
    least 2; its nonce: the height minus one) to another of them, with the least fee the
    default params ask."""
    keys = senders(count)
    params = Params()
    step = 1 + height % (count - 1)
    txs = []
    for i, key in enumerate(keys):
        to = address_of(keys[(i + step) % count].public_key)
        body = Transfer(to, 1 + (i * 7919 + height) % 1_000)
        txs.append(sign_tx(chain_id, key, height - 1, body, least_fee(params, height - 1, body)))
    return txs


def few_per_block(chain_id: str, blocks: int, accounts: int, per_block: int) -> Iterator[list[bytes]]:
    """The txs of ``blocks`` blocks of ``per_block`` transfers each, for a history over
    many accounts that does not cost a signature per account a block: the accounts
    (:func:`senders` (``accounts``), :func:`funded` at genesis) send in turn, each to the
    next, in nonce order, with the least fee the default params ask."""
    keys = senders(accounts)
    params = Params()
    sent = 0
    for _ in range(blocks):
        txs = []
        for _ in range(per_block):
            sender, nonce = sent % accounts, sent // accounts
            body = Transfer(address_of(keys[(sender + 1) % accounts].public_key), 1)
            txs.append(sign_tx(chain_id, keys[sender], nonce, body, least_fee(params, nonce, body)))
            sent += 1
        yield txs


def _block_txs(args: tuple[str, int, int]) -> list[bytes]:
    return block_txs(*args)


def sign_commit(chain_id: str, key: PrivateKey, block: Block) -> Commit:
    """The commit of ``block`` by a set of one validator, ``key``'s; its precommit
    timestamped as the driver does it: the clock, or just after the block's time."""
    h = block.header
    ts = max(time.time_ns(), h.time_ns + 1_000_000)
    vote = Vote(VoteType.PRECOMMIT, h.height, 0, block.block_id(), ts, address_of(key.public_key), 0, b"")
    return Commit(h.height, 0, block.block_id(),
                  (CommitSig(CommitFlag.COMMIT, ts, key.sign(vote_sign_bytes(chain_id, vote))),))


async def commit_all(home: Home, signed: Iterable[list[bytes]], progress: Progress | None = None) -> None:
    """Commit each list of txs ``signed`` yields as the next block of ``home``'s
    validator (all of them must be includable, in order)."""
    genesis, genesis_hash = home.genesis()
    config = chain_config(genesis)
    key = home.validator_key()
    if key is None:
        raise ValueError(f"{home.path} has no validator key")
    store = Store.open_leveldb(home.store_dir, genesis, genesis_hash)
    try:
        verified = VerifiedCache()
        chain = NodeChain(store, genesis, config, Mempool(config, store.state, MempoolConfig(), verified),
                          verified)
        started = time.monotonic()
        for txs in signed:
            block = make_block(store.state, store.app_hash, config, txs=txs,
                               proposer_address=address_of(key.public_key), time_ns=chain.next_block_time(),
                               last_commit=store.blocks.seen_commit())
            await chain.commit(block, sign_commit(config.chain_id, key, block))
            if progress is not None:
                progress(block.header.height, time.monotonic() - started)
    finally:
        store.close()


def build(home: Home, blocks: int, txs: int, *, progress: Progress | None = None,
          processes: bool = True) -> None:
    """Commit ``blocks`` blocks of ``txs`` transfers to ``home``'s validator store, which
    must be at genesis, of a genesis that holds :func:`funded` (``txs``). The txs are
    signed on every core (``processes``) or in this process."""
    chain_id = home.genesis()[0].chain_id
    jobs = [(chain_id, height, txs) for height in range(1, blocks + 1)]
    if not processes:
        trio.run(commit_all, home, map(_block_txs, jobs), progress)
        return
    with ProcessPoolExecutor() as pool:
        signed: Iterator[list[bytes]] = pool.map(_block_txs, jobs, chunksize=4)
        trio.run(commit_all, home, signed, progress)
