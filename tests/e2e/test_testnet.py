"""A stand-in for bizra-testnet-001, launched with the tooling a real one is launched
with (``genesis validator``, ``genesis create``, ``init --genesis``, ``start``), its own
validator keys and the same chain id, as real processes on loopback; and a fresh node
that joins it with only ``--genesis`` and a bootnode: it syncs to the tip and follows."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nodekit import free_ports, height, node_cmd, processes, rpc, wait_synced, wait_until

pytestmark = pytest.mark.slow


def run(*args: str) -> str:
    done = subprocess.run(node_cmd(*args), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def test_a_fresh_node_joins_a_network_launched_from_its_validators_keys(tmp_path: Path) -> None:
    p2p, rpc_base = free_ports(5), free_ports(5) + 20
    homes = [tmp_path / f"validator{i}" for i in range(4)]
    entries = [run("genesis", "validator", "--home", str(h), "--moniker", f"stand-in-{i}",
                   "--bond", "2000seed").strip() for i, h in enumerate(homes)]
    genesis = tmp_path / "genesis.json"
    args = ["genesis", "create", "--chain-id", "bizra-testnet-001", "--genesis-time", "2026-01-01T00:00:00Z",
            "--param", "block_time_ms=500", "--out", str(genesis)]
    for entry in entries:
        args += ["--validator", entry, "--account", f"{entry.split(',')[1]},1000seed"]
    run(*args)
    for h in homes:
        run("init", "--home", str(h), "--genesis", str(genesis))
        assert (h / "validator_key.pem").exists()  # made by genesis validator, kept by init

    def env(i: int) -> dict[str, str]:
        return {**os.environ, "BIZRA_P2P_HOST": "127.0.0.1", "BIZRA_P2P_PORT": str(p2p + i),
                "BIZRA_RPC_PORT": str(rpc_base + i)}

    def start(home: Path, i: int, *extra: str) -> subprocess.Popen[bytes]:
        home.mkdir(exist_ok=True)  # for the log; the node makes the rest
        with (home / "node.log").open("ab") as log:
            return subprocess.Popen(node_cmd("start", "--home", str(home), *extra), env=env(i), stdout=log,
                                    stderr=subprocess.STDOUT)

    logs = [h / "node.log" for h in homes]
    with processes() as started:
        started.append(start(homes[0], 0))
        wait_until(lambda: height(rpc_base) >= 0, 60, "validator 0 answers", logs[:1])
        bootnode = f"/ip4/127.0.0.1/tcp/{p2p}/p2p/{rpc(rpc_base, 'status')['node_info']['other']['peer_id']}"
        started += [start(h, i, "--bootnode", bootnode) for i, h in enumerate(homes) if i]
        wait_until(lambda: height(rpc_base) >= 12, 120, "the stand-in makes blocks", logs)
        assert rpc(rpc_base + 3, "status")["node_info"]["network"] == "bizra-testnet-001"

        fresh = tmp_path / "fresh"
        started.append(start(fresh, 4, "--genesis", str(genesis), "--bootnode", bootnode))
        logs.append(fresh / "node.log")
        wait_synced(rpc_base + 4, rpc_base, 90, "the fresh node syncs", logs)
        top = min(height(rpc_base + 4), height(rpc_base))  # the fresh node may commit a height first
        same = rpc(rpc_base + 4, "block", height=str(top))["block_id"]
        assert same == rpc(rpc_base, "block", height=str(top))["block_id"]
        assert rpc(rpc_base + 4, "status")["validator_info"]["voting_power"] == "0"
        wait_until(lambda: height(rpc_base + 4) >= top + 10, 60, "the fresh node follows", logs[-1:])
