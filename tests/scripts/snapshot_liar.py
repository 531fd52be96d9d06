"""A peer that lies about snapshots, in its own process, for tests/e2e/test_state_sync.py.

``python snapshot_liar.py --genesis FILE --snapshots DIR --port PORT [--hold PEER_ID --stall SECONDS]``

It speaks the node's own p2p stack (``p2p.host.Libp2pNetwork`` with a fresh key, and
``p2p.status.StatusService`` with the chain id and genesis hash of ``--genesis``, and as
its height the one above its newest snapshot, so nodes take it for a peer of their
chain that may hold those snapshots) and serves the state-sync protocols
(``p2p.snapshots.SnapshotExchange``) from ``--snapshots``, another node's snapshot
directory: it lists the same snapshots and serves their manifests, but every chunk with
one value changed. Until the peer ``--hold`` first disconnects from it (the node
restoring from it killed), or for ``--stall`` seconds at most, it holds every chunk
request unanswered, so that a node restoring from it is held in the middle of its
restore; after, it answers at once.
It serves no block and no light block.

Prints ``listening <address>`` once it listens, then runs until killed.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

import trio

from chain.codec import dumps, loads_canonical
from chain.genesis import genesis_hash, parse_genesis
from chain.lightblock import LightBlock
from chain.snapshot import Descriptor
from p2p.host import Libp2pNetwork
from p2p.snapshots import SnapshotExchange
from p2p.status import StatusService
from storage.snapshots import SnapshotStore


class Corrupted:
    """Another node's snapshots, their chunks changed."""

    def __init__(self, snapshots: SnapshotStore, stall_s: float) -> None:
        self.snapshots = snapshots
        self.stall_s = stall_s
        self.released = threading.Event()

    def descriptors(self) -> list[Descriptor]:
        return self.snapshots.descriptors()

    def manifest(self, height: int) -> bytes | None:
        return self.snapshots.manifest(height)

    def chunk(self, height: int, index: int) -> bytes | None:
        """Runs in a worker thread (the exchange reads chunks off the event loop)."""
        self.released.wait(timeout=self.stall_s)
        raw = self.snapshots.chunk(height, index)
        if raw is None:
            return None
        pairs = loads_canonical(raw, "chunk")
        key, value = pairs[len(pairs) // 2]
        pairs[len(pairs) // 2] = [key, value[:-1] + bytes((value[-1] ^ 1,))]
        return dumps(pairs)

    def light_block(self, height: int) -> LightBlock | None:
        return None


async def main(args: argparse.Namespace) -> None:
    data = args.genesis.read_bytes()
    genesis = parse_genesis(data)
    net = Libp2pNetwork(os.urandom(32), port=args.port)
    served = Corrupted(SnapshotStore(args.snapshots, keep=100), args.stall)
    status = StatusService(net, genesis.chain_id, genesis_hash(data),
                           lambda: max((d.height for d in served.descriptors()), default=0) + 1, lambda: [])
    SnapshotExchange(net, genesis.chain_id, served)
    events = net.peer_events()
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        await nursery.start(status.run)
        print("listening", net.listen_addrs()[0], flush=True)
        async for event in events:
            if not event.connected and event.peer == args.hold:
                served.released.set()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genesis", type=Path, required=True)
    parser.add_argument("--snapshots", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hold", default="", help="the peer id whose first disconnection ends the stall")
    parser.add_argument("--stall", type=float, default=0.0, help="the longest a chunk request is held")
    trio.run(main, parser.parse_args())
