"""Peer scores and bans: the rules every network implementation applies.

A peer starts at score 0. Each invalid message costs it points (the caller says how
many); good messages slowly earn them back, up to 0. Below ``disconnect_below`` the
peer is disconnected and banned for ``ban_seconds``; a banned peer's connections and
messages are refused until the ban ends. Time is an argument: no clock here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NewType

PeerId = NewType("PeerId", str)


@dataclass
class PeerBook:
    disconnect_below: float = -100.0
    ban_seconds: float = 600.0
    reward: float = 0.1
    scores: dict[PeerId, float] = field(default_factory=dict)
    banned_until: dict[PeerId, float] = field(default_factory=dict)

    def score(self, peer: PeerId) -> float:
        return self.scores.get(peer, 0.0)

    def is_banned(self, peer: PeerId, now: float) -> bool:
        until = self.banned_until.get(peer)
        if until is None:
            return False
        if now >= until:
            del self.banned_until[peer]
            self.scores.pop(peer, None)
            return False
        return True

    def reward_valid(self, peer: PeerId) -> None:
        self.scores[peer] = min(0.0, self.score(peer) + self.reward)

    def penalize(self, peer: PeerId, points: float, now: float) -> bool:
        """Take ``points`` from ``peer``; True when it must now be disconnected (it is
        banned from now on)."""
        self.scores[peer] = self.score(peer) - points
        if self.scores[peer] < self.disconnect_below:
            self.ban(peer, now)
            return True
        return False

    def ban(self, peer: PeerId, now: float, seconds: float | None = None) -> None:
        self.banned_until[peer] = now + (self.ban_seconds if seconds is None else seconds)


@dataclass
class RateLimit:
    """A token bucket per peer: ``rate`` units a second, bursts up to ``burst``.

    ``allow(peer, cost, now)`` spends ``cost`` units of ``peer``'s bucket if it holds
    them; a peer over its limit has the rest of its traffic refused (not queued) until
    the bucket refills. Time is an argument.
    """

    rate: float
    burst: float
    _buckets: dict[PeerId, tuple[float, float]] = field(default_factory=dict)  # tokens, when

    def allow(self, peer: PeerId, cost: float, now: float) -> bool:
        tokens, when = self._buckets.get(peer, (self.burst, now))
        tokens = min(self.burst, tokens + (now - when) * self.rate)
        allowed = tokens >= cost
        self._buckets[peer] = (tokens - cost if allowed else tokens, now)
        return allowed

    def forget(self, peer: PeerId) -> None:
        self._buckets.pop(peer, None)
