"""What the RPC methods and the metrics see of a running node: a typed view of its parts
(a Protocol, which :class:`node.daemon.Node` satisfies), and the counters it keeps.

They depend on this view, never on the daemon that wires the node, so the daemon can
import them with no circle. The view's attributes are read-only; what a client may make
the node do goes through the few operations listed here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from chain.crypto import PrivateKey
from chain.errors import InvalidTx
from chain.genesis import Genesis
from chain.params import ChainConfig
from consensus.driver import Driver
from node.batch_verifier import BatchVerifier
from node.chainstate import NodeChain
from node.config import Config
from node.consensus_gossip import ConsensusGossip
from node.gcpauses import GcPauses
from node.looplag import LoopLag
from node.mempool import Mempool, MempoolFull
from node.rpc.events import EventBus
from node.sync import BlockSync
from p2p.network import Network
from p2p.status import StatusService
from p2p.txgossip import TxGossip
from storage.store import Store

Job = Callable[[], Awaitable[object]]
"""Work the node runs in the background for a client (:meth:`NodeView.start_soon`)."""


@dataclass
class Counters:
    """What the node counts for its metrics and ``status``."""

    txs_committed: int = 0
    txs_received: int = 0
    txs_refused: int = 0
    txs_shed: int = 0
    """Clients' txs refused because the node was busy."""
    blocks_committed: int = 0
    last_block_time: float = 0.0
    block_intervals: list[float] = field(default_factory=list)


class NodeView(Protocol):
    """A running node, as its RPC methods and metrics read it."""

    @property
    def config(self) -> Config: ...
    @property
    def genesis(self) -> Genesis: ...
    @property
    def genesis_hash(self) -> bytes: ...
    @property
    def chain_id(self) -> str: ...
    @property
    def chain_config(self) -> ChainConfig: ...
    @property
    def validator_key(self) -> PrivateKey | None: ...
    @property
    def store(self) -> Store: ...
    @property
    def chain(self) -> NodeChain: ...
    @property
    def mempool(self) -> Mempool: ...
    @property
    def network(self) -> Network: ...
    @property
    def status(self) -> StatusService: ...
    @property
    def sync(self) -> BlockSync: ...
    @property
    def consensus_net(self) -> ConsensusGossip: ...
    @property
    def signatures(self) -> BatchVerifier: ...
    @property
    def txs(self) -> TxGossip: ...
    @property
    def events(self) -> EventBus: ...
    @property
    def counters(self) -> Counters: ...
    @property
    def loop_lag(self) -> LoopLag: ...

    @property
    def gc_pauses(self) -> GcPauses: ...
    @property
    def driver(self) -> Driver | None:
        """Consensus, while it runs (not while the node syncs)."""

    async def submit_tx(self, raw: bytes) -> bytes:
        """Admit a client's tx and gossip it; its hash. InvalidTx, or MempoolFull (also
        while the node is busy)."""

    async def submit_txs(self, raws: list[bytes]) -> list[bytes | InvalidTx | MempoolFull]:
        """Admit a client's txs together and gossip those admitted; for each, its hash
        or why it was refused."""

    def start_soon(self, job: Job) -> None:
        """Run ``job`` in the background, in the node's task tree (its errors are the
        job's to handle). MempoolFull, saying so, when too many jobs wait already."""

    def busy(self) -> str | None:
        """Why clients' txs are refused now, or None."""

    def watch_tx(self, h: bytes) -> trio.Event:
        """An event set when the tx of hash ``h`` is committed (``unwatch_tx`` after)."""

    def unwatch_tx(self, h: bytes) -> None: ...

    def is_validator(self) -> bool:
        """Whether this node's key is in the validator set of the next height."""

    def not_ready(self) -> str | None:
        """Why the node should not get traffic yet (``/ready``), or None."""

    def catching_up(self) -> bool:
        """Whether the node is syncing, or its peers are ahead of it."""

    def advertised_addresses(self) -> list[str]:
        """Where peers can reach this node."""
