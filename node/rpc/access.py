"""Who may use the RPC server, and how often: the per-address rate budget, and the
parsing of ``Host`` and ``Origin`` values that the server's CORS, Origin and Host checks
rest on (docs/rpc.md). Pure: time is an argument, nothing here does I/O."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

TRACKED_CLIENTS = 4_096
"""Client addresses the rate limit tracks before it forgets those whose budget is full."""
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


class ClientBudget:
    """The rate limit: each client address holds up to ``per_minute`` tokens, refilled
    at ``per_minute`` a minute; a cost is taken whole or not at all. Once more than
    :data:`TRACKED_CLIENTS` addresses are tracked, those whose budget has refilled are
    forgotten (they hold what a new address holds), so clients that change address do
    not grow the table without bound. Time is an argument."""

    def __init__(self, per_minute: int) -> None:
        self.burst = float(per_minute)
        self.rate = per_minute / 60
        self._buckets: dict[str, tuple[float, float]] = {}  # tokens, when
        self._prune_at = TRACKED_CLIENTS

    def tokens(self, client: str, now: float) -> float:
        """The tokens ``client`` holds at ``now``."""
        held, when = self._buckets.get(client, (self.burst, now))
        return min(self.burst, held + (now - when) * self.rate)

    def take(self, client: str, cost: int, now: float) -> bool:
        """Spend ``cost`` of ``client``'s tokens if it holds them (True), else spend none
        (False)."""
        tokens = self.tokens(client, now)
        if tokens < cost:
            return False
        self._buckets[client] = (tokens - cost, now)
        if len(self._buckets) > self._prune_at:
            self._buckets = {c: b for c, b in self._buckets.items() if self.tokens(c, now) < self.burst}
            self._prune_at = max(TRACKED_CLIENTS, 2 * len(self._buckets))
        return True

    def wait(self, client: str, cost: int, now: float) -> float | None:
        """Seconds until ``client`` holds ``cost`` tokens; ``None`` if it never will (the
        cost is above the burst)."""
        if cost > self.burst:
            return None
        return max(0.0, (cost - self.tokens(client, now)) / self.rate)


def host_and_port(authority: str) -> tuple[str | None, int | None]:
    """The lower-case host name (no trailing dot, IPv6 without brackets) and the port of
    ``host[:port]``; ``(None, None)`` for what is not one."""
    try:
        parts = urlsplit("//" + authority.strip())
        name, port = parts.hostname, parts.port
    except ValueError:
        return None, None
    if not name or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None, None
    return name.rstrip("."), port


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def same_site(origin: str, host: str) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) names the same host and port as a
    ``Host`` header (a port left out is the scheme's default)."""
    try:
        parts = urlsplit(origin.strip())
        origin_name, origin_port = parts.hostname, parts.port
    except ValueError:
        return False
    default = DEFAULT_PORTS.get(parts.scheme.lower())
    host_name, host_port = host_and_port(host)
    if origin_name is None or host_name is None or default is None:
        return False
    return origin_name.rstrip(".") == host_name and (origin_port or default) == (host_port or default)
