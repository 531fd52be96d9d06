"""A devnet whose validator's store holds a chain built directly (no consensus,
:func:`node.devnet_history.commit_all`), for the state sync test: many funded accounts,
blocks of a few signed transfers each."""

from __future__ import annotations

from pathlib import Path

import trio

from chain.params import Params
from node import devnet, devnet_history


def build(directory: Path, *, chain_id: str, accounts: int, blocks: int, per_block: int, p2p_port: int,
          rpc_port: int, params: Params, full_nodes: int) -> list[devnet.DevnetNode]:
    """A devnet of one validator and ``full_nodes`` full nodes in ``directory``, whose
    genesis funds ``accounts`` accounts (``node.devnet_history.funded``) and whose
    validator's store holds ``blocks`` blocks already."""
    nodes = devnet.create(directory, 1, chain_id=chain_id, p2p_port=p2p_port, rpc_port=rpc_port,
                          params=params, accounts=devnet_history.funded(accounts), full_nodes=full_nodes)
    trio.run(devnet_history.commit_all, nodes[0].home,
             devnet_history.few_per_block(chain_id, blocks, accounts, per_block))
    return nodes
