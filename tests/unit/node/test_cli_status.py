"""``bizra-node status`` for a person (aligned lines: chain, the height and time of the
last block, sync, peers, validator and power, mempool) and, with ``--json``, for scripts
(the node's ``status`` result), against a stand-in for the node's RPC."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from chain.timefmt import parse_rfc3339_ns
from node import cli
from node.cli_status import describe
from node.client import Client

BLOCK_TIME = "2026-03-01T12:00:00.123456789Z"
STATUS: dict[str, Any] = {
    "node_info": {"network": "bizra-local-1", "moniker": "val-0", "other": {"peer_id": "12D3KooWPeer"}},
    "sync_info": {"latest_block_height": "42", "latest_block_time": BLOCK_TIME, "catching_up": False},
    "validator_info": {"address": "3DEF94", "pub_key": None, "voting_power": "100"},
}
NET_INFO = {"n_peers": "3", "peers": []}
MEMPOOL = {"n_txs": "5", "total": "5", "total_bytes": "1200", "txs": None}


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The RPC methods called, each answered as a node at height 42 would."""
    called: list[str] = []
    answers = {"status": STATUS, "net_info": NET_INFO, "num_unconfirmed_txs": MEMPOOL}

    def call(self: Client, method: str, **params: Any) -> Any:
        called.append(method)
        return answers[method]

    monkeypatch.setattr(Client, "call", call)
    return called


def test_status_prints_aligned_lines_for_a_person(node: list[str]) -> None:
    result = CliRunner().invoke(cli.main, ["status", "--node", "http://127.0.0.1:9"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["chain", "node", "height", "sync", "peers", "validator",
                                                  "mempool"]
    assert len({line.index(line.split()[1]) for line in lines}) == 1  # the values in one column
    assert lines[0].endswith("bizra-local-1") and lines[1].endswith("val-0 (12D3KooWPeer)")
    assert "42, block of 2026-03-01 12:00:00 UTC (" in lines[2]
    assert lines[3].endswith("in step with its peers") and lines[4].endswith("3")
    assert lines[5].endswith("yes, voting power 100 (address 3DEF94)")
    assert lines[6].endswith("5 txs, 1200 bytes")


def test_status_json_prints_the_nodes_status_result(node: list[str]) -> None:
    result = CliRunner().invoke(cli.main, ["status", "--json", "--node", "http://127.0.0.1:9"])
    assert result.exit_code == 0 and json.loads(result.stdout) == STATUS
    assert node == ["status"]


def test_status_says_how_a_sync_goes_how_old_the_block_is_and_what_a_full_node_is() -> None:
    syncing = {**STATUS,
               "sync_info": {**STATUS["sync_info"], "catching_up": True, "sync_target_height": "10042",
                             "sync_blocks_per_second": "150.0", "sync_eta_seconds": "3725"},
               "validator_info": {"address": "", "pub_key": None, "voting_power": "0"}}
    later = parse_rfc3339_ns(BLOCK_TIME) + 90 * 10**9
    text = describe(syncing, NET_INFO, MEMPOOL, later)
    assert "(2 min ago)" in text
    assert "catching up: 42 of 10042, 150.0 blocks/s, ETA 1:02:05" in text
    assert "no (a full node: no validator key)" in text
    about_to = {**syncing, "sync_info": {**STATUS["sync_info"], "catching_up": True}}
    assert "behind its peers: about to catch up" in describe(about_to, NET_INFO, MEMPOOL, later)
    outside = {**STATUS, "validator_info": {"address": "3DEF94", "pub_key": None, "voting_power": "0"}}
    assert "not in the validator set (key 3DEF94)" in describe(outside, NET_INFO, MEMPOOL, later)
    genesis = {**STATUS, "sync_info": {**STATUS["sync_info"], "latest_block_height": "0"}}
    assert "0 (no block yet)" in describe(genesis, NET_INFO, MEMPOOL, later)
