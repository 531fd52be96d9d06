"""Proof of Impact end to end on a 4-validator devnet, through the command line a
contributor and validators use: the operator of validator 0 attests impact, three
validators endorse it, the attestation is finalized, and at the epoch's end the
contributor's reward, its impact and the higher voting power of its validator show
over RPC."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chain.params import Params
from node import devnet

from nodekit import free_ports, height, node_cmd, processes, rpc, wait_until

pytestmark = pytest.mark.slow
EPOCH = 48
ROOM = 40
"""Heights left in the epoch when the attestation is sent: its endorsements must be
committed before the epoch ends, and four CLI processes take 5–8 s to start and submit
on a loaded 2-core machine (13–16 half-second heights seen)."""
SEED = 1_000_000


def cli(*args: str) -> Any:
    done = subprocess.run(node_cmd(*args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_impact_is_attested_endorsed_finalized_and_rewarded(tmp_path: Path) -> None:
    p2p, rpc_base = free_ports(4), free_ports(4) + 20
    nodes = devnet.create(tmp_path, 4, chain_id="bizra-poi-1", p2p_port=p2p, rpc_port=rpc_base,
                          params=Params(block_time_ms=500, epoch_length=EPOCH))
    url = f"http://127.0.0.1:{nodes[0].rpc_port}"
    port = nodes[0].rpc_port
    with processes() as started:
        for n in nodes:
            with (n.home.path / "node.log").open("ab") as log:
                started.append(subprocess.Popen(node_cmd("start", "--home", str(n.home.path)),
                                                stdout=log, stderr=subprocess.STDOUT))
        logs = [n.home.path / "node.log" for n in nodes]
        wait_until(lambda: height(port) >= 2, 120, "the devnet makes blocks", logs)

        def room_in_epoch() -> bool:
            epoch = rpc(port, "bizra_epoch")
            return int(epoch["last_height_of_epoch"]) - int(epoch["height"]) >= ROOM

        wait_until(room_in_epoch, 60, "the start of an epoch")
        epoch = rpc(port, "bizra_epoch")
        validators = rpc(port, "bizra_validators")["validators"]
        mine = next(v for v in validators if v["moniker"] == "validator-0")
        address = mine["operator"]
        before = rpc(port, "bizra_validator", operator=address)

        attested = cli("tx", "attest", epoch["epoch"], "ab" * 32, "1000000,1000000,1000000,1000000,1000000",
                       "--home", str(nodes[0].home.path), "--node", url, "--wait")
        assert attested["tx_result"]["code"] == 0, attested
        attestation = base64.b64decode(attested["tx_result"]["data"]).hex()
        assert rpc(port, "bizra_attestation", id=attestation)["status"] == "pending"

        endorsements = [subprocess.Popen(
            node_cmd("tx", "endorse", attestation, "1000000", "--home", str(n.home.path),
                     "--node", f"http://127.0.0.1:{n.rpc_port}", "--wait"), stdout=subprocess.PIPE, text=True)
            for n in nodes[1:]]
        for p in endorsements:
            out, _ = p.communicate(timeout=60)
            assert json.loads(out)["tx_result"]["code"] == 0, out
        found = rpc(port, "bizra_attestation", id=attestation)
        assert height(port) < int(epoch["last_height_of_epoch"]), "finalized too late: the epoch has ended"
        assert found["status"] == "finalized" and found["score"] == "1000000"
        assert found["contributor"] == address
        balance_before = int(rpc(port, "bizra_account", address=address)["balance"])

        end = int(epoch["last_height_of_epoch"])
        wait_until(lambda: height(port) >= end + 3, 60, "the epoch ends and the new set takes effect")
        score = rpc(port, "bizra_poi_score", address=address)
        assert score["impact"] == "1000000"
        balance_after = int(rpc(port, "bizra_account", address=address)["balance"])
        assert balance_after - balance_before >= 1_000 * SEED - 10_000  # the issuance, less a fee or two
        after = rpc(port, "bizra_validator", operator=address)
        assert int(after["voting_power"]) == int(before["voting_power"]) + 1_000_000
        cometbft_view = rpc(port, "validators", height=str(end + 3))["validators"]
        assert str(int(before["voting_power"]) + 1_000_000) in [v["voting_power"] for v in cometbft_view]
        raised = next(v for v in cometbft_view if v["voting_power"] == after["voting_power"])
        updates = rpc(port, "block_results", height=str(end))["validator_updates"]
        assert {"pub_key": {"Sum": {"type": "tendermint.crypto.PublicKey_Ed25519",
                                    "value": {"ed25519": raised["pub_key"]["value"]}}},
                "power": raised["voting_power"]} in updates
        assert rpc(port, "block_results", height=str(end - 1))["validator_updates"] == []
