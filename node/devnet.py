"""Local devnets: the homes of N validators on loopback that share one genesis, and the
processes that run them.

Node ``i`` lives in ``<dir>/node<i>``, listens for peers on ``p2p_port + i`` and for
RPC on ``rpc_port + i``, all on 127.0.0.1, and knows node 0 as its bootnode. The genesis
funds every validator's operator account (its key in ``operator_key.pem`` beside the
validator key) and a faucet, whose key is written to ``<dir>/faucet.key``. The homes are
made once; later runs reuse them, so the chain resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chain.crypto import PrivateKey, address_of, private_key_to_pem
from chain.genesis import DEVNET_BALANCE, GenesisAccount, make_devnet_genesis, operator_key_for
from chain.params import USEED_PER_SEED, Params
from node import config as node_config
from node.config import Config, LogConfig, P2pConfig, RpcConfig
from node.home import Home, HomeError, init_home, write_private
from p2p.host import peer_id_of
from p2p.nodekey import load_or_create

FAUCET_BALANCE = 1_000_000_000 * USEED_PER_SEED
"""A billion SEED, in useed."""
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class DevnetNode:
    index: int
    home: Home
    p2p_port: int
    rpc_port: int
    peer_id: str


def genesis_json(chain_id: str, validator_keys: Sequence[PrivateKey], faucet: PrivateKey | None,
                 params: Params, genesis_time_ns: int, accounts: Sequence[GenesisAccount] = ()) -> bytes:
    """A devnet genesis: one validator per key, their operators funded, the faucet if
    there is one, and ``accounts``."""
    genesis = make_devnet_genesis(chain_id, validator_keys, genesis_time_ns, params=params,
                                  balance=DEVNET_BALANCE)
    extra = [GenesisAccount(address_of(faucet.public_key), FAUCET_BALANCE)] if faucet is not None else []
    genesis = dataclasses.replace(genesis, accounts=(*genesis.accounts, *extra, *accounts))
    return json.dumps(genesis.to_json(), indent=2).encode() + b"\n"


def node_home(directory: Path, index: int) -> Home:
    return Home(directory / f"node{index}")


def create(directory: Path, validators: int, *, chain_id: str, p2p_port: int, rpc_port: int,
           params: Params, log_format: str = "text", full_nodes: int = 0,
           hostname: str | None = None, accounts: Sequence[GenesisAccount] = ()) -> list[DevnetNode]:
    """Make the devnet's homes under ``directory``: ``validators`` validators, then
    ``full_nodes`` nodes that only follow; HomeError if a devnet is there already.

    By default every node is on 127.0.0.1, node ``i`` on ``p2p_port + i`` and
    ``rpc_port + i``. With ``hostname`` (a template such as ``node{i}``: each node on a
    host of its own, as in a compose file or a cluster) every node listens on all
    interfaces on ``p2p_port`` and ``rpc_port`` and is reached at that name.
    ``accounts`` are funded at genesis besides the operators and the faucet.
    """
    if node_home(directory, 0).exists():
        raise HomeError(f"{directory} holds a devnet already")
    directory.mkdir(parents=True, exist_ok=True)
    keys = [PrivateKey.generate() for _ in range(validators)]
    faucet = PrivateKey.generate()
    genesis = genesis_json(chain_id, keys, faucet, params, time.time_ns(), accounts)
    write_private(directory / "faucet.key", private_key_to_pem(faucet))
    bootnode = ""
    for i in range(validators + full_nodes):
        home = node_home(directory, i)
        home.path.mkdir(parents=True, exist_ok=True)
        peer_id = peer_id_of(load_or_create(home.node_key_file).seed)
        if hostname is None:
            host, where, p2p, rpc = "127.0.0.1", "/ip4/127.0.0.1", p2p_port + i, rpc_port + i
        else:
            host, where, p2p, rpc = "0.0.0.0", f"/dns4/{hostname.format(i=i)}", p2p_port, rpc_port
        if i == 0:
            bootnode = f"{where}/tcp/{p2p}/p2p/{peer_id}"
        config = Config(moniker=f"validator-{i}" if i < validators else f"full-node-{i}",
                        p2p=P2pConfig(host=host, port=p2p, bootnodes=(bootnode,) if i else (),
                                      external_addresses=(f"{where}/tcp/{p2p}",) if hostname else ()),
                        rpc=RpcConfig(host=host, port=rpc),
                        log=LogConfig(format=log_format))
        key = keys[i] if i < validators else None
        init_home(home.path, genesis, config, key)
        if key is not None:
            write_private(home.path / "operator_key.pem", private_key_to_pem(operator_key_for(key)))
    return nodes(directory)


def nodes(directory: Path) -> list[DevnetNode]:
    """The devnet's nodes, as their homes describe them."""
    out = []
    i = 0
    while node_home(directory, i).exists():
        home = node_home(directory, i)
        config = node_config.load(home.config_file, environ={})
        out.append(DevnetNode(i, home, config.p2p.port, config.rpc.port,
                              peer_id_of(load_or_create(home.node_key_file).seed)))
        i += 1
    return out


def node_command(*args: str) -> list[str]:
    """The command line of ``bizra-node *args`` run by this interpreter. ``-P`` keeps the
    working directory off ``sys.path``: run from a checkout, the sources there would
    otherwise shadow the installed (compiled) package."""
    return [sys.executable, "-P", "-m", "node", *args]


def start(node: DevnetNode, log_file: Path, *options: str) -> subprocess.Popen[bytes]:
    """Start ``node`` as a process of its own (``bizra-node start --home … *options``),
    logging to ``log_file``."""
    command = node_command("start", "--home", str(node.home.path), *options)
    with log_file.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each, then SIGKILL to any still running after ``STOP_TIMEOUT_S``."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for p in processes:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
