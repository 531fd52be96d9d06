"""The node as operators run it: real processes, real libp2p on loopback, real LevelDB,
JSON-RPC over HTTP.

- ``bizra-node devnet --validators 4`` makes blocks at the set interval, every node has
  the same blocks (so the same app hash at every height), a transfer sent to node 0 is
  found on node 3, and SIGTERM (as Ctrl-C) stops every node;
- a validator killed with SIGKILL does not stop the chain; restarted, it catches up and
  signs again; a fifth node that is not a validator, started from the genesis and one
  bootnode, syncs to the tip.
"""

from __future__ import annotations

import base64
import itertools
import os
import signal
import subprocess
from hashlib import sha256
from pathlib import Path

import pytest

from chain import statekeys
from chain.crypto import address_of, private_key_from_pem
from chain.genesis import genesis_hash
from chain.merkle import MerkleProof, verify_merkle_proof
from chain.params import Params
from chain.timefmt import parse_rfc3339_ns
from chain.types import Transfer
from node import devnet

from chainkit import sign_tx
from nodekit import free_ports, height, node_cmd, processes, rpc, signed_since, wait_synced, wait_until

pytestmark = pytest.mark.slow
BLOCK_MS = 500


def shown_genesis_hash(path: Path) -> str:
    """The genesis hash as status shows it (§10)."""
    return genesis_hash(path.read_bytes()).hex().upper()


def faucet_transfer(directory: Path, chain_id: str, to: bytes, amount: int) -> bytes:
    faucet = private_key_from_pem((directory / "faucet.key").read_bytes())
    return sign_tx(chain_id, faucet, 0, Transfer(to, amount))


def test_devnet_command_makes_blocks_that_every_node_agrees_on(tmp_path: Path) -> None:
    p2p, rpc_base = free_ports(4), free_ports(4) + 20
    home = tmp_path / "devnet"
    with processes() as started:
        command = subprocess.Popen(
            node_cmd("devnet", "--validators", "4", "--home", str(home), "--block-time-ms", str(BLOCK_MS),
                     "--p2p-port", str(p2p), "--rpc-port", str(rpc_base), "--chain-id", "bizra-e2e-1"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(command)
        ports = [rpc_base + i for i in range(4)]
        logs = [home / f"node{i}" / "node.log" for i in range(4)]
        wait_until(lambda: min(height(p) for p in ports) >= 6, 120, "4 nodes at height 6", logs)

        to = address_of(bytes(range(32)))
        tx = faucet_transfer(home, "bizra-e2e-1", to, 5_000_000)
        committed = rpc(ports[0], "broadcast_tx_commit", tx=base64.b64encode(tx).decode())
        assert committed["check_tx"]["code"] == 0 and committed["tx_result"]["code"] == 0
        wait_until(lambda: min(height(p) for p in ports) >= int(committed["height"]), 10,
                   "every node has the tx's block")
        genesis_hash = shown_genesis_hash(home / "node0" / "genesis.json")
        assert rpc(ports[3], "status")["node_info"]["other"]["genesis_hash"] == genesis_hash
        infos = [rpc(p, "status")["node_info"] for p in ports]
        node_key = private_key_from_pem((home / "node0" / "node_key.pem").read_bytes())
        assert infos[0]["id"] == address_of(node_key.public_key).hex()  # CometBFT's node id
        assert f"/p2p/{infos[0]['other']['peer_id']}" in infos[0]["listen_addr"]
        peers = [p["node_info"] for p in rpc(ports[0], "net_info")["peers"]]
        assert sorted((p["id"], p["other"]["peer_id"]) for p in peers) == \
            sorted((i["id"], i["other"]["peer_id"]) for i in infos[1:])
        found = rpc(ports[3], "tx", hash=committed["hash"])
        assert found["height"] == committed["height"] and "proof" not in found
        proved = rpc(ports[3], "tx", hash=committed["hash"], prove=True)["proof"]
        header = rpc(ports[3], "block", height=committed["height"])["block"]["header"]
        assert proved["root_hash"] == header["data_hash"] and base64.b64decode(proved["data"]) == tx
        path = proved["proof"]
        verify_merkle_proof(bytes.fromhex(header["data_hash"]), sha256(tx).digest(),
                            MerkleProof(int(path["index"]), int(path["total"]),
                                        tuple(base64.b64decode(a) for a in path.get("aunts", []))))
        account = rpc(ports[3], "bizra_account", address=to.hex())
        assert account["balance"] == "5000000"
        faucet = address_of(private_key_from_pem((home / "faucet.key").read_bytes()).public_key)
        for query in (f"tx.hash='{committed['hash']}'", f"tx.height={committed['height']}",
                      f"message.sender='{faucet.hex()}'"):
            searched = rpc(ports[2], "tx_search", query=query)
            assert [t["hash"] for t in searched["txs"]] == [committed["hash"]], query
        stored = rpc(ports[1], "abci_query", path="/store", data=statekeys.account(to).hex(), prove=True)
        assert stored["response"]["code"] == 0 and stored["response"]["proofOps"]["ops"]

        top = min(height(p) for p in ports)
        for h in range(1, top + 1):
            ids = {rpc(p, "block", height=str(h))["block_id"]["hash"] for p in ports}
            assert len(ids) == 1, f"nodes differ at height {h}"
        metas = rpc(ports[0], "blockchain", minHeight="1", maxHeight=str(top))["block_metas"]
        times = sorted(parse_rfc3339_ns(m["header"]["time"]) for m in metas)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= BLOCK_MS * 1_000_000  # never faster than the block time
        assert sorted(gaps)[len(gaps) // 2] < 3 * BLOCK_MS * 1_000_000  # and about at it

        command.send_signal(signal.SIGTERM)  # as a service manager stops it; Ctrl-C takes the same path
        assert command.wait(timeout=30) in (0, 1)
        output = command.stdout.read().decode() if command.stdout else ""
        assert "stopping" in output
        wait_until(lambda: all(height(p) == -1 for p in ports), 20, "every node stopped")


def test_a_killed_validator_rejoins_and_a_new_full_node_syncs(tmp_path: Path) -> None:
    p2p, rpc_base = free_ports(5), free_ports(5) + 20
    nodes = devnet.create(tmp_path, 4, chain_id="bizra-e2e-2", p2p_port=p2p, rpc_port=rpc_base,
                          params=Params(block_time_ms=BLOCK_MS, epoch_length=1_000))
    ports = [n.rpc_port for n in nodes]

    def start(home: Path) -> subprocess.Popen[bytes]:
        with (home / "node.log").open("ab") as log:
            return subprocess.Popen(node_cmd("start", "--home", str(home)), stdout=log,
                                    stderr=subprocess.STDOUT)

    with processes() as started:
        started += [start(n.home.path) for n in nodes]
        logs = [n.home.path / "node.log" for n in nodes]
        wait_until(lambda: min(height(p) for p in ports) >= 3, 120, "4 nodes at height 3", logs)

        started[3].send_signal(signal.SIGKILL)
        started[3].wait()
        down_at = height(ports[0])
        wait_until(lambda: height(ports[0]) >= down_at + 10, 60, "the chain goes on without node 3", logs)

        started.append(start(nodes[3].home.path))
        wait_until(lambda: height(ports[3]) >= height(ports[0]) - 1, 60, "node 3 catches up", logs)
        me = rpc(ports[3], "status")["validator_info"]["address"]
        back_at = height(ports[3])

        wait_until(lambda: signed_since(ports[0], me, back_at), 60, "node 3 signs again", logs)

        full = tmp_path / "full"
        bootnode = f"/ip4/127.0.0.1/tcp/{nodes[0].p2p_port}/p2p/{nodes[0].peer_id}"
        subprocess.run(node_cmd("init", "--home", str(full), "--genesis", str(nodes[0].home.genesis_file)),
                       check=True, capture_output=True)
        env = {**os.environ, "BIZRA_P2P_PORT": str(p2p + 4), "BIZRA_RPC_PORT": str(rpc_base + 4),
               "BIZRA_P2P_HOST": "127.0.0.1"}
        with (full / "node.log").open("ab") as log:
            started.append(subprocess.Popen(node_cmd("start", "--home", str(full), "--bootnode", bootnode),
                                            stdout=log, stderr=subprocess.STDOUT, env=env))
        wait_synced(rpc_base + 4, ports[0], 90, "the full node syncs", [*logs, full / "node.log"])
        h = min(height(rpc_base + 4), height(ports[0]))  # the full node may commit a height first
        same = rpc(rpc_base + 4, "block", height=str(h))["block_id"]
        assert same == rpc(ports[0], "block", height=str(h))["block_id"]
        assert rpc(rpc_base + 4, "status")["validator_info"]["voting_power"] == "0"
        # and then it follows the chain as it grows (consensus, not only sync)
        wait_until(lambda: height(rpc_base + 4) >= h + 10, 60, "the full node follows", [full / "node.log"])
