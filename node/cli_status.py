"""``bizra-node status``: how a running node is, for a person (a few aligned lines) or,
with ``--json``, its ``status`` result as JSON for scripts. It asks the node over
JSON-RPC (``status``, ``net_info``, ``num_unconfirmed_txs``)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import click

from chain.errors import BizraError
from chain.timefmt import parse_rfc3339_ns
from node.cli_wallet import node_option
from node.client import Client, ClientError


@click.command("status")
@node_option
@click.option("--json", "as_json", is_flag=True, help="Print the node's status result as JSON (for scripts).")
def status(node_url: str, as_json: bool) -> None:
    """How the node is: its chain, the height and time of its last block, sync, peers,
    its validator and power, the mempool."""
    client = Client(node_url)
    try:
        if as_json:
            click.echo(json.dumps(client.call("status"), indent=2))
            return
        report = describe(client.call("status"), client.call("net_info"), client.call("num_unconfirmed_txs"),
                          time.time_ns())
    except ClientError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(report)


def describe(status: Any, net_info: Any, mempool: Any, now_ns: int) -> str:
    """The lines ``status`` prints, from the node's answers to ``status``, ``net_info``
    and ``num_unconfirmed_txs`` read at ``now_ns``."""
    node, sync, validator = status["node_info"], status["sync_info"], status["validator_info"]
    rows = [
        ("chain", node["network"]),
        ("node", f"{node['moniker']} ({node['other']['peer_id']})"),
        ("height", _height(sync, now_ns)),
        ("sync", _sync(sync)),
        ("peers", net_info["n_peers"]),
        ("validator", _validator(validator)),
        ("mempool", f"{mempool['n_txs']} txs, {mempool['total_bytes']} bytes"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _height(sync: Any, now_ns: int) -> str:
    height = sync["latest_block_height"]
    if height == "0":
        return "0 (no block yet)"
    try:
        block_ns = parse_rfc3339_ns(sync["latest_block_time"])
    except BizraError:
        return f"{height}, block time {sync['latest_block_time']}"
    when = datetime.fromtimestamp(block_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{height}, block of {when} ({_ago((now_ns - block_ns) / 1e9)})"


def _ago(seconds: float) -> str:
    if seconds < 0:
        return "in the future: is this machine's clock right?"
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _sync(sync: Any) -> str:
    if not sync["catching_up"]:
        return "in step with its peers"
    if "sync_target_height" not in sync:
        return "behind its peers: about to catch up"
    eta = sync["sync_eta_seconds"]
    return (f"catching up: {sync['latest_block_height']} of {sync['sync_target_height']}, "
            f"{sync['sync_blocks_per_second']} blocks/s, ETA {_duration(int(eta)) if eta else 'unknown'}")


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3_600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def _validator(validator: Any) -> str:
    if not validator["address"]:
        return "no (a full node: no validator key)"
    power = validator["voting_power"]
    if power == "0":
        return f"not in the validator set (key {validator['address']})"
    return f"yes, voting power {power} (address {validator['address']})"
