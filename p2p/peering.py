"""Keeping the node connected: bootnodes, peer exchange, target and maximum peer counts,
re-dialling with backoff.

Candidates are the bootnodes (never forgotten, dialled first) and the addresses peers
tell us in their status (their own, and their peers': :mod:`p2p.status`). While the
node has fewer than ``target`` peers it dials candidates it is not connected to; above
``maximum`` it disconnects the lowest-scored peers that are not bootnodes. A failed
dial, or a connection that drops within ``STABLE_S``, doubles the candidate's wait
before its next dial, from ``FIRST_BACKOFF_S`` up to ``BACKOFF_MAX_S``: short, so that a
peer that restarts is back within seconds. A candidate that is not a bootnode is
forgotten after ``FORGET_AFTER`` failures in a row, until a peer mentions it again
(and a restarted peer dials us itself: we are among its bootnodes or its peers' peers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from chain.errors import NetworkError
from chain.service import TaskStatus
from p2p.network import Network, peer_of
from p2p.peers import PeerId
from p2p.status import StatusService

log = logging.getLogger(__name__)

TICK_S = 0.5
FIRST_BACKOFF_S = 0.5
BACKOFF_MAX_S = 4.0
FORGET_AFTER = 8
STABLE_S = 10.0
DEFAULT_TARGET, DEFAULT_MAXIMUM = 10, 40
MAX_CANDIDATES = 256
"""Candidates kept at most besides the bootnodes: past it, addresses peers tell us are
not taken until failing ones are forgotten (peers can name any number over time)."""


@dataclass
class Candidate:
    address: str
    bootnode: bool
    failures: int = 0
    next_dial: float = 0.0
    connected_at: float | None = None

    def failed(self, now: float) -> None:
        self.failures += 1
        self.next_dial = now + min(BACKOFF_MAX_S, FIRST_BACKOFF_S * 2 ** (self.failures - 1))


class PeerManager:
    """See the module docstring. ``bootnodes`` are addresses ending in ``/p2p/<peer id>``
    (NetworkError at construction for one that does not)."""

    def __init__(self, network: Network, status: StatusService, bootnodes: Sequence[str], *,
                 target: int = DEFAULT_TARGET, maximum: int = DEFAULT_MAXIMUM) -> None:
        if not 0 < target <= maximum:
            raise NetworkError(f"peer counts: need 0 < target ({target}) <= maximum ({maximum})")
        self.network = network
        self.status = status
        self.target = target
        self.maximum = maximum
        self.candidates: dict[PeerId, Candidate] = {}
        for address in bootnodes:
            peer = peer_of(address)
            if peer != network.local_id:
                self.candidates[peer] = Candidate(address, bootnode=True)
        self._dialling: set[PeerId] = set()

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._learn()
                connected = set(self.network.peers())
                self._note_connections(connected, trio.current_time())
                for peer in self._excess(connected):
                    log.info("too many peers: disconnecting one",
                             extra={"peer": peer, "maximum": self.maximum})
                    nursery.start_soon(self.network.disconnect, peer)
                for peer in self._to_dial(connected, trio.current_time()):
                    self._dialling.add(peer)
                    nursery.start_soon(self._dial, peer)
                await trio.sleep(TICK_S)

    def _learn(self) -> None:
        """Take the addresses peers told us: a peer's own (it may have moved to a new
        port) and those of its peers."""
        own = self.network.local_id
        for peer, status in list(self.status.peers.items()):
            if status.addresses:
                known = self.candidates.get(peer)
                if known is None:
                    self._add(peer, status.addresses[0])
                else:
                    known.address = status.addresses[0]
            for address in status.peers:
                try:
                    other = peer_of(address)
                except NetworkError:
                    continue
                if other != own and other not in self.candidates:
                    self._add(other, address)

    def _add(self, peer: PeerId, address: str) -> None:
        """A candidate learned from a peer, while there is room (``MAX_CANDIDATES``)."""
        if sum(not c.bootnode for c in self.candidates.values()) < MAX_CANDIDATES:
            self.candidates[peer] = Candidate(address, bootnode=False)

    def _note_connections(self, connected: set[PeerId], now: float) -> None:
        for peer, candidate in self.candidates.items():
            if peer in connected:
                if candidate.connected_at is None:
                    candidate.connected_at = now
                elif now - candidate.connected_at >= STABLE_S:
                    candidate.failures = 0
            elif candidate.connected_at is not None:
                # A connection that drops soon after it was made counts as a failure,
                # so a peer that keeps refusing us (it is full, say) is not re-dialled
                # every tick.
                if now - candidate.connected_at < STABLE_S:
                    candidate.failed(now)
                candidate.connected_at = None

    def _excess(self, connected: set[PeerId]) -> list[PeerId]:
        extra = len(connected) - self.maximum
        if extra <= 0:
            return []
        removable = [p for p in connected if not (p in self.candidates and self.candidates[p].bootnode)]
        removable.sort(key=lambda p: (self.network.score(p), p))
        return removable[:extra]

    def _to_dial(self, connected: set[PeerId], now: float) -> list[PeerId]:
        room = self.target - len(connected) - len(self._dialling)
        if room <= 0:
            return []
        due = [peer for peer, c in self.candidates.items()
               if peer not in connected and peer not in self._dialling and c.next_dial <= now]
        due.sort(key=lambda p: (not self.candidates[p].bootnode, self.candidates[p].failures, p))
        return due[:room]

    async def _dial(self, peer: PeerId) -> None:
        candidate = self.candidates[peer]
        try:
            await self.network.connect(candidate.address)
        except NetworkError as exc:
            candidate.failed(trio.current_time())
            log.debug("dial failed", extra={"peer": peer, "address": candidate.address,
                                            "failures": candidate.failures, "error": str(exc)})
            if not candidate.bootnode and candidate.failures >= FORGET_AFTER:
                del self.candidates[peer]
        finally:
            self._dialling.discard(peer)
