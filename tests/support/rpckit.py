"""An RPC application for tests that drive it without a node."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from node.config import RpcConfig
from node.rpc.events import EventBus
from node.rpc.methods import Methods
from node.rpc.server import RpcApp


def make_app(**rpc: Any) -> RpcApp:
    """An RpcApp with the [rpc] settings ``rpc``, over a node that has nothing (enough
    for ``health``, which the tests call), with the RPC's latency metric only."""
    node: Any = SimpleNamespace(busy=lambda: None)
    registry = CollectorRegistry()
    metrics: Any = SimpleNamespace(registry=registry, render=lambda: generate_latest(registry),
                                   rpc_latency=Histogram("bizra_rpc_request_duration_seconds", "latency",
                                                         ["method"], registry=registry))
    return RpcApp(Methods(node), RpcConfig(**rpc), metrics, lambda: None, EventBus(lambda _: []), "token")
