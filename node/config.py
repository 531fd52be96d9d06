"""The node's configuration: ``config.toml`` in its home, then ``BIZRA_<SECTION>_<KEY>``
environment variables over it (``BIZRA_P2P_PORT=26700``, ``BIZRA_LOG_FORMAT=json``,
``BIZRA_MONIKER=val-3``), then command-line options over both.

Every key has a default, so an empty file (or none) is a working configuration. An
unknown key, a value of the wrong type or out of range is refused with a ConfigError
that names the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.errors import BizraError
from node.networks import NETWORKS


class ConfigError(BizraError):
    """The configuration cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class P2pConfig:
    host: str = "0.0.0.0"
    """The interface to listen on (0.0.0.0: all)."""
    port: int = 26656
    external_addresses: tuple[str, ...] = ()
    """Addresses peers can reach this node at, told to them in place of the listening ones
    (``/ip4/203.0.113.7/tcp/26656``); empty: the listening addresses."""
    bootnodes: tuple[str, ...] = ()
    """Multiaddrs ending in ``/p2p/<peer id>``, besides the network's own."""
    target_peers: int = 10
    max_peers: int = 40


@dataclass(frozen=True, slots=True)
class RpcConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    requests_per_minute: int = 1_000
    """Per client address; over it a client gets HTTP 429."""
    max_body_bytes: int = 1 << 20
    """The largest request body and WebSocket message."""
    max_batch: int = 100
    timeout_broadcast_tx_commit_s: int = 10
    max_websocket_connections: int = 100
    """WebSocket connections open at once, from all clients together (CometBFT bounds
    them with ``max_open_connections`` and ``max_subscription_clients``)."""
    max_websocket_connections_per_client: int = 10
    """WebSocket connections open at once from one client address."""
    max_open_connections: int = 900
    """HTTP and WebSocket connections open at once, from all clients together (CometBFT's
    key and default); one more is closed as it is accepted."""
    cors_allowed_origins: tuple[str, ...] = ()
    """Origins (``scheme://host[:port]``) whose web pages may call the RPC, as CometBFT's
    key; ``"*"``: any; empty: no CORS headers at all."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names clients reach the node by, besides IP literals and ``localhost``. Empty:
    the ``Host`` header is checked only on WebSocket upgrades from another site's web
    page; set: on every request (``"*"``: any name)."""


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    max_txs: int = 200_000
    """Two blocks' worth at the default ``max_block_txs`` (100,000): a validator whose
    clients send more than one block a height can still fill the next."""
    max_bytes: int = 64 << 20
    max_per_sender: int = 1_000
    max_loop_lag_ms: int = 1_000
    """Clients' txs are refused while the event loop runs later than this (0: never)."""


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class StorageConfig:
    keep_heights: int = 0
    """Keep the state of this many recent heights (0: all); blocks are always kept."""


@dataclass(frozen=True, slots=True)
class StateSyncConfig:
    """State sync (CometBFT's ``[statesync]`` keys) and the snapshots this node serves."""

    enable: bool = False
    """Start from a peer's snapshot rather than from genesis (ignored once the store has
    blocks); ``start --state-sync`` sets it."""
    trust_height: int = 0
    """A height whose block id is ``trust_hash``, from a node one trusts; 0 (and
    ``trust_hash`` empty): trust the genesis and verify the headers from it."""
    trust_hash: str = ""
    """The block id (64 hex digits) of the block at ``trust_height``."""
    trust_period: str = "168h"
    """How old the trusted header may be (``168h``, ``90m``, ``3600s``, ``1h30m``), as
    CometBFT's: a header older than this may be signed by keys no longer bonded."""
    snapshot_interval: int = 1_000
    """Take a snapshot of the state every this many heights (0: none)."""
    snapshot_keep_recent: int = 2
    """Snapshots kept (the oldest are deleted)."""

    @property
    def trust_period_s(self) -> int:
        """``trust_period`` in seconds."""
        return duration_s(self.trust_period)


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def duration_s(text: str) -> int:
    """Seconds in a duration such as ``168h``, ``1h30m`` or ``90s``; ConfigError if it is
    not one."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ConfigError(f"{text!r} is not a duration such as 168h, 90m, 3600s or 1h30m")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True, slots=True)
class Config:
    moniker: str = "bizra-node"
    network: str = ""
    """The public network this node belongs to (its genesis is checked against the
    network's pinned hash at every start, its bootnodes dialled); empty: a chain of its
    own (a devnet, a local chain)."""
    p2p: P2pConfig = field(default_factory=P2pConfig)
    rpc: RpcConfig = field(default_factory=RpcConfig)
    mempool: MempoolConfig = field(default_factory=MempoolConfig)
    log: LogConfig = field(default_factory=LogConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    statesync: StateSyncConfig = field(default_factory=StateSyncConfig)

    def __post_init__(self) -> None:
        _check(self)


_LEVELS = ("debug", "info", "warning", "error")
_FORMATS = ("text", "json")


def _check(config: Config) -> None:
    def expect(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {what}")

    for key, port in (("p2p.port", config.p2p.port), ("rpc.port", config.rpc.port)):
        expect(0 <= port <= 65_535, key, f"{port} is not a port (0–65535)")
    expect(config.p2p.target_peers >= 1, "p2p.target_peers", "must be at least 1")
    expect(config.p2p.max_peers >= config.p2p.target_peers, "p2p.max_peers",
           f"must be at least p2p.target_peers ({config.p2p.target_peers})")
    for key in ("requests_per_minute", "max_body_bytes", "max_batch", "timeout_broadcast_tx_commit_s",
                "max_websocket_connections", "max_websocket_connections_per_client", "max_open_connections"):
        expect(getattr(config.rpc, key) >= 1, f"rpc.{key}", "must be at least 1")
    _check_rpc_lists(config.rpc, expect)
    for key in ("max_txs", "max_bytes", "max_per_sender"):
        expect(getattr(config.mempool, key) >= 1, f"mempool.{key}", "must be at least 1")
    expect(config.mempool.max_loop_lag_ms >= 0, "mempool.max_loop_lag_ms", "must be 0 (never refuse) or more")
    expect(config.log.level in _LEVELS, "log.level",
           f"{config.log.level!r} is not one of {', '.join(_LEVELS)}")
    expect(config.log.format in _FORMATS, "log.format",
           f"{config.log.format!r} is not one of {', '.join(_FORMATS)}")
    expect(config.storage.keep_heights >= 0, "storage.keep_heights", "must be 0 (all) or more")
    _check_statesync(config.statesync, expect)
    expect(bool(config.moniker) and len(config.moniker) <= 64, "moniker", "must be 1–64 characters")
    expect(not config.network or config.network in NETWORKS, "network",
           f"{config.network!r} is not one of {', '.join(sorted(NETWORKS))} (or empty: a chain of its own)")


def _check_statesync(statesync: StateSyncConfig, expect: Callable[[bool, str, str], None]) -> None:
    expect(statesync.trust_height >= 0, "statesync.trust_height", "must be 0 (trust the genesis) or more")
    expect(statesync.trust_hash == "" or re.fullmatch(r"[0-9a-fA-F]{64}", statesync.trust_hash) is not None,
           "statesync.trust_hash", "must be a block id: 64 hex digits")
    expect((statesync.trust_height == 0) == (statesync.trust_hash == ""), "statesync.trust_hash",
           "give statesync.trust_height and statesync.trust_hash together, or neither")
    try:
        period = statesync.trust_period_s
    except ConfigError as exc:
        expect(False, "statesync.trust_period", str(exc))
    else:
        expect(period > 0, "statesync.trust_period", "must be more than 0")
    expect(statesync.snapshot_interval >= 0, "statesync.snapshot_interval", "must be 0 (none) or more")
    expect(statesync.snapshot_keep_recent >= 1, "statesync.snapshot_keep_recent", "must be at least 1")


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s@]+", re.IGNORECASE)
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?",
                        re.IGNORECASE)


def _check_rpc_lists(rpc: RpcConfig, expect: Callable[[bool, str, str], None]) -> None:
    """Each entry of the [rpc] keys that are lists."""
    for origin in rpc.cors_allowed_origins:
        expect(origin == "*" or _ORIGIN.fullmatch(origin) is not None, "rpc.cors_allowed_origins",
               f"{origin!r} is not an origin (scheme://host[:port], no path) or *")
    for host in rpc.allowed_hosts:
        expect(host == "*" or _HOST_NAME.fullmatch(host) is not None, "rpc.allowed_hosts",
               f"{host!r} is not a host name (such as node0 or rpc.example.com, no scheme or port) or *")


def load(path: Path | None, environ: Mapping[str, str] = os.environ,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """The configuration in ``path`` (none, or a missing file: the defaults), with the
    ``BIZRA_*`` variables of ``environ`` and then ``overrides`` (``{"p2p.port": 1}``)
    over it."""
    document: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values = _flatten(document, "", str(path))
    for name, raw in environ.items():
        if name.startswith("BIZRA_") and name not in _NOT_CONFIG:
            key, origin = _env_key(name), f"environment variable {name}"
            values[key] = (_from_text(key, raw, origin), origin)
    for key, value in (overrides or {}).items():
        values[key] = (value, "the command line")
    return _build(values)


_NOT_CONFIG = frozenset({"BIZRA_NO_MYPYC", "BIZRA_REQUIRE_COMPILED", "BIZRA_HOME", "BIZRA_NODE",
                         "BIZRA_SIM_SCHEDULES", "BIZRA_SIM_SEED", "BIZRA_CRASH_ROUNDS", "BIZRA_CRASH_SEED",
                         "BIZRA_FUZZ_EXAMPLES"})
"""``BIZRA_*`` variables that are not configuration keys, so ``load`` passes over them: those
the build, CI and the tests read (``BIZRA_NO_MYPYC``), and those the command line reads as
its options' defaults (``BIZRA_HOME`` for ``--home``, ``BIZRA_NODE`` for ``--node``). A
variable set for one command must not stop ``bizra-node start`` as an unknown key; tests in
``tests/unit/node/test_config.py`` find every such variable and fail if one is missing here."""


_SECTION_TYPES: dict[str, type[Any]] = {
    "p2p": P2pConfig, "rpc": RpcConfig, "mempool": MempoolConfig, "log": LogConfig, "storage": StorageConfig,
    "statesync": StateSyncConfig,
}


def _field_types(section: str | None) -> dict[str, Any]:
    if section is None:
        return {"moniker": str, "network": str}
    cls = _SECTION_TYPES[section]
    defaults = cls()
    return {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(cls)}


def _env_key(name: str) -> str:
    rest = name[len("BIZRA_"):].lower()
    section, _, key = rest.partition("_")
    if section in _SECTION_TYPES and key:
        return f"{section}.{key}"
    return rest


def _flatten(document: dict[str, Any], prefix: str, origin: str) -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for name, value in document.items():
        if isinstance(value, dict) and not prefix:
            if name not in _SECTION_TYPES:
                raise ConfigError(f"{origin}: unknown section [{name}] (known: {', '.join(_SECTION_TYPES)})")
            out.update(_flatten(value, f"{name}.", origin))
        else:
            out[f"{prefix}{name}"] = (value, origin)
    return out


def _split(key: str) -> tuple[str | None, str]:
    section, dot, name = key.partition(".")
    return (section, name) if dot else (None, key)


def _kind(key: str, origin: str) -> Any:
    section, name = _split(key)
    if section is not None and section not in _SECTION_TYPES:
        raise ConfigError(f"{key} ({origin}): unknown section {section!r}")
    types = _field_types(section)
    if name not in types:
        raise ConfigError(f"{key} ({origin}): unknown key (known: "
                          f"{', '.join(sorted((section + '.' if section else '') + n for n in types))})")
    return types[name]


def _from_text(key: str, raw: str, origin: str) -> Any:
    """An environment variable's text as the key's type (lists: comma-separated)."""
    kind = _kind(key, origin)
    if kind is bool:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"{key} ({origin}): {raw!r} is not true or false")
        return raw.lower() in ("true", "1")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{key} ({origin}): {raw!r} is not an integer") from None
    if kind is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _build(values: dict[str, tuple[Any, str]]) -> Config:
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTION_TYPES}
    top: dict[str, Any] = {}
    for key, (value, origin) in values.items():
        kind = _kind(key, origin)
        if kind is tuple and isinstance(value, list):
            value = tuple(value)
        if not _is(kind, value):
            expected = {bool: "true or false", int: "an integer", str: "a string",
                        tuple: "a list of strings"}[kind]
            raise ConfigError(f"{key} ({origin}): expected {expected}, got {value!r}")
        section, name = _split(key)
        (top if section is None else sections[section])[name] = value
    return Config(**top, **{name: _SECTION_TYPES[name](**fields) for name, fields in sections.items()})


def _is(kind: Any, value: Any) -> bool:
    if kind is bool:
        return type(value) is bool
    if kind is int:
        return type(value) is int  # not a bool
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


def render(config: Config) -> str:
    """``config`` as the TOML text ``init`` writes (every key, with its value)."""
    lines = [f"moniker = {_toml(config.moniker)}", f"network = {_toml(config.network)}"]
    for name in _SECTION_TYPES:
        lines += ["", f"[{name}]"]
        section = getattr(config, name)
        lines += [f"{f.name} = {_toml(getattr(section, f.name))}" for f in dataclasses.fields(section)]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + "".join(_toml_char(c) for c in value) + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _toml_char(c: str) -> str:
    """``c`` in a TOML basic string: quotes, backslashes and control characters escaped."""
    if c in '"\\':
        return "\\" + c
    if unicodedata.category(c) == "Cc":
        return f"\\u{ord(c):04x}"
    return c
