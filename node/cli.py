"""The ``bizra-node`` command line."""

from __future__ import annotations

import json
import logging
import platform
import signal
import subprocess
import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

import click
import trio

from chain.address import format_address
from chain.compiled import compiled_status, module_file
from chain.crypto import PrivateKey, address_of, private_key_to_pem
from chain.errors import BizraError
from chain.genesis import genesis_hash, operator_key_for
from chain.params import Params
from node import devnet
from node.cli_bench import bench
from node.cli_genesis import genesis
from node.cli_status import status
from node.cli_wallet import keys, query, tx
from node.config import Config, P2pConfig, load
from node.daemon import InjectedFaults, Node
from node.home import Home, init_home, warn_exposed_secrets, write_private
from node.logs import setup as setup_logs
from node.networks import NETWORKS, network
from node.syncbar import sync_display

log = logging.getLogger("node")

DISTRIBUTION = "bizra-node"


def package_version() -> str:
    """The installed version of the distribution (``unknown`` in an uninstalled tree)."""
    try:
        return distribution_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


DEFAULT_HOME = Path("~/.bizra").expanduser()
LOCAL_CHAIN_ID = "bizra-local-1"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """BIZRA NODE-0, a node of the BIZRA chain.

    BIZRA is a proof-of-stake chain with Tendermint-style BFT consensus (a block every
    6 seconds), SEED transfers, a validator lifecycle and Proof of Impact.

    \b
    Start here:
      bizra-node start                 run a node; with no home yet, first make a
                                       one-validator local chain in ~/.bizra
      bizra-node devnet --validators 4 run a 4-validator chain on this machine
      bizra-node init --home DIR       make a node home (config, genesis, keys)
      bizra-node status                ask a running node (--node URL) how it is
      bizra-node tx transfer TO 5seed  send SEED, signed with the home's operator key
      bizra-node query account ADDR    read the chain's state
      bizra-node bench load            measure a devnet under tx load on this machine

    A node's home holds config.toml (every key documented in docs/), the genesis,
    its keys and its data. Configuration comes from config.toml, then BIZRA_<SECTION>_<KEY>
    environment variables (BIZRA_P2P_PORT=26700, BIZRA_LOG_FORMAT=json), then the
    command line.
    """


@main.command("version")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--require-compiled",
    is_flag=True,
    help="Exit with status 1 when any hot module runs interpreted (for CI and images).",
)
def version_command(as_json: bool, require_compiled: bool) -> None:
    """Print the version and, for each hot module, whether its compiled build is loaded.

    A module shows "interpreted" when the package was installed with BIZRA_NO_MYPYC=1,
    or when its compiled build is not the one Python loaded. The results are the same
    either way; the compiled build is faster.
    """
    status = compiled_status()
    if as_json:
        document = {
            "version": package_version(),
            "python": platform.python_version(),
            "modules": {
                name: {"compiled": compiled, "file": module_file(name)}
                for name, compiled in status.items()
            },
        }
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(f"{DISTRIBUTION} {package_version()}")
        width = max(len(name) for name in status)
        for name, compiled in status.items():
            how = f"compiled ({module_file(name)})" if compiled else "interpreted (pure Python)"
            click.echo(f"{name:<{width}}  {how}")
    interpreted = [name for name, compiled in status.items() if not compiled]
    if require_compiled and interpreted:
        click.echo(f"error: running interpreted: {', '.join(interpreted)}", err=True)
        raise SystemExit(1)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def _local_genesis(chain_id: str, key: PrivateKey, params: Params) -> bytes:
    return devnet.genesis_json(chain_id, [key], None, params, time.time_ns())


@main.command("init")
@click.option("--home", "home_dir", type=click.Path(path_type=Path), default=DEFAULT_HOME, show_default=True,
              envvar="BIZRA_HOME", help="The node's home directory (or BIZRA_HOME).")
@click.option("--network", "network_name", type=click.Choice(sorted(NETWORKS)),
              help="Join this public network (its shipped genesis and bootnodes).")
@click.option("--genesis", "genesis_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Join the chain of this genesis file.")
@click.option("--chain-id", default=LOCAL_CHAIN_ID, show_default=True,
              help="The chain id of a new one-validator chain (without --network or --genesis).")
@click.option("--moniker", default="bizra-node", show_default=True, help="The node's name, for humans.")
@click.option("--validator/--no-validator", default=None,
              help="Make a validator key (default: yes for a new chain, no when joining one).")
def init_command(home_dir: Path, network_name: str | None, genesis_file: Path | None, chain_id: str,
                 moniker: str, validator: bool | None) -> None:
    """Make a node home: config.toml, the genesis and the keys.

    With --network or --genesis the node joins that chain (a full node, unless
    --validator). Without either it makes a new local chain whose only validator is
    this node and whose operator account is funded (its key: operator_key.pem).
    """
    try:
        _init(home_dir, network_name, genesis_file, chain_id, moniker, validator)
    except BizraError as exc:
        _fail(str(exc))


def _init(home_dir: Path, network_name: str | None, genesis_file: Path | None, chain_id: str, moniker: str,
          validator: bool | None) -> Home:
    if network_name and genesis_file:
        raise BizraError("give --network or --genesis, not both")
    joining = bool(network_name or genesis_file)
    key = PrivateKey.generate() if (validator if validator is not None else not joining) else None
    if network_name:
        genesis = network(network_name).genesis_json()
    elif genesis_file is not None:
        genesis = genesis_file.read_bytes()
    else:
        if key is None:
            raise BizraError("a new chain needs a validator: drop --no-validator, or join one with "
                             "--network or --genesis")
        genesis = _local_genesis(chain_id, key, Params())
    config = Config(moniker=moniker, network=network_name or "",
                    p2p=P2pConfig() if joining else P2pConfig(host="127.0.0.1"))
    home = init_home(home_dir, genesis, config, key)
    if key is not None and not joining:
        operator = operator_key_for(key)
        write_private(home.path / "operator_key.pem", private_key_to_pem(operator))
        click.echo(f"operator account {format_address(address_of(operator.public_key))} "
                   f"(key: {home.path / 'operator_key.pem'})")
    if key is not None and joining:
        click.echo(f"validator key: {home.validator_key_file} (consensus public key {key.public_key.hex()}); "
                   "register it with: bizra-node tx register MONIKER --home ...")
    click.echo(f"node home ready: {home.path}")
    return home


@main.command("start")
@click.option("--home", "home_dir", type=click.Path(path_type=Path), default=DEFAULT_HOME, show_default=True,
              envvar="BIZRA_HOME",
              help="The node's home directory (or BIZRA_HOME). If it has no node yet, one is made: for "
                   "--network or --genesis if given, else a one-validator local chain.")
@click.option("--network", "network_name", type=click.Choice(sorted(NETWORKS)),
              help="Join this public network (e.g. bizra-testnet-001): its genesis and bootnodes.")
@click.option("--genesis", "genesis_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Join the chain of this genesis file (with --bootnode).")
@click.option("--p2p-port", type=int, help="Listen for peers on this port (p2p.port).")
@click.option("--rpc-port", type=int, help="Serve JSON-RPC on this port (rpc.port).")
@click.option("--bootnode", "bootnodes", multiple=True,
              help="A peer to dial first: /ip4/HOST/tcp/PORT/p2p/PEER_ID (repeatable; p2p.bootnodes).")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="log.format")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="log.level")
@click.option("--state-sync", is_flag=True,
              help="Join from a peer's verified state snapshot rather than from genesis (statesync.enable; "
                   "ignored once the node has blocks). See [statesync] in config.toml for the trust height "
                   "and hash.")
@click.option("--test-clock-offset-ms", type=int, default=0, hidden=True,
              help="Fault tests only: run with the clock this far off.")
@click.option("--test-equivocate", is_flag=True, hidden=True,
              help="Fault tests only: as a validator, sign and send a conflicting twin of everything.")
def start_command(home_dir: Path, network_name: str | None, genesis_file: Path | None, p2p_port: int | None,
                  rpc_port: int | None, bootnodes: tuple[str, ...], log_format: str | None,
                  log_level: str | None, state_sync: bool, test_clock_offset_ms: int,
                  test_equivocate: bool) -> None:
    """Run the node until SIGINT or SIGTERM (a clean stop within seconds).

    It opens its store as it was left, replays its consensus log, connects to its
    peers, and follows (or, as a validator, makes) the chain. Logs go to stderr.
    """
    overrides: dict[str, Any] = {}
    for key, value in (("p2p.port", p2p_port), ("rpc.port", rpc_port), ("log.format", log_format),
                       ("log.level", log_level)):
        if value is not None:
            overrides[key] = value
    if bootnodes:
        overrides["p2p.bootnodes"] = bootnodes
    if state_sync:
        overrides["statesync.enable"] = True
    faults = InjectedFaults(test_clock_offset_ms, test_equivocate)
    if network_name:
        _refuse_faults_on_public_network(faults, network_name)
    try:
        home = Home(home_dir)
        if not home.exists():
            what = network_name or genesis_file or "a one-validator local chain"
            click.echo(f"{home_dir} has no node yet: making one there for {what}", err=True)
            _init(home_dir, network_name, genesis_file, LOCAL_CHAIN_ID, "bizra-node", None)
        config = load(home.config_file, overrides=overrides)
        if network_name and config.network != network_name:
            raise BizraError(f"{home_dir} is a node of {config.network or 'a chain of its own'}, not of "
                             f"{network_name}; use another --home")
        public = _public_network_of(home, config)
        if public is not None:
            _refuse_faults_on_public_network(faults, public)
        setup_logs(config.log.level, config.log.format)
        warn_exposed_secrets(home)
        node = Node(home, config, faults, sync_display(config.log.format))
        if test_equivocate or test_clock_offset_ms:
            log.warning("fault injection on: for fault tests only", extra={
                "clock_offset_ms": test_clock_offset_ms, "equivocate": test_equivocate})
    except BizraError as exc:
        _fail(str(exc))
    try:
        trio.run(_run_until_signalled, node)
    except BizraError as exc:
        log.error("the node stopped", extra={"error": str(exc)})
        raise SystemExit(1) from None


def _refuse_faults_on_public_network(faults: InjectedFaults, network_name: str) -> None:
    """Exit with a usage error if ``faults`` injects any fault: the fault-test flags are
    for chains of one's own, never for the public network ``network_name``."""
    flags = [flag for flag, on in (("--test-clock-offset-ms", faults.clock_offset_ms != 0),
                                   ("--test-equivocate", faults.equivocate)) if on]
    if flags:
        _fail(f"{' and '.join(flags)} {'is' if len(flags) == 1 else 'are'} for fault tests only, refused on "
              f"the public network {network_name}: run fault tests on a devnet (bizra-node devnet) or a "
              "local chain (another --home)")


def _public_network_of(home: Home, config: Config) -> str | None:
    """The public network the node of ``home`` belongs to: the one its configuration
    names (``network``), else the one whose pinned genesis its ``genesis.json`` is (a
    node that joined with ``--genesis`` and the shipped file); None for a chain of its
    own, or a genesis that cannot be read (the node reports that as it starts)."""
    if config.network:
        return config.network
    try:
        found = genesis_hash(home.genesis_file.read_bytes())
    except (OSError, BizraError):
        return None
    return next((name for name, public in NETWORKS.items() if public.genesis_hash == found), None)


async def _run_until_signalled(node: Node) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            async for signum in signals:
                log.info("stopping", extra={"signal": signal.Signals(signum).name})
                nursery.cancel_scope.cancel()
                break
    log.info("stopped")


@main.command("devnet")
@click.option("--validators", type=click.IntRange(1, 100), default=4, show_default=True)
@click.option("--home", "home_dir", type=click.Path(path_type=Path), default=Path("devnet"),
              show_default=True, help="Where the nodes' homes go (node0, node1, ...) and faucet.key.")
@click.option("--chain-id", default="bizra-devnet-1", show_default=True)
@click.option("--rpc-port", type=int, default=8080, show_default=True, help="Node i serves RPC on this + i.")
@click.option("--p2p-port", type=int, default=26656, show_default=True, help="Node i listens on this + i.")
@click.option("--block-time-ms", type=click.IntRange(10), default=6_000, show_default=True)
@click.option("--epoch-length", type=click.IntRange(1), default=600, show_default=True,
              help="Blocks per epoch (rewards, validator set changes).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--full-nodes", type=click.IntRange(0, 100), default=0, show_default=True,
              help="Nodes that follow the chain without validating, after the validators.")
@click.option("--init-only", is_flag=True, help="Make the homes and stop (for containers: each node "
                                                 "then runs bizra-node start --home HOME/node<i>).")
@click.option("--hostname", help="With --init-only: node i is reached at this name, a template such as "
                                 "'node{i}' (each node on a host of its own, listening on all interfaces "
                                 "on --p2p-port and --rpc-port).")
def devnet_command(validators: int, home_dir: Path, chain_id: str, rpc_port: int, p2p_port: int,
                   block_time_ms: int, epoch_length: int, log_format: str, full_nodes: int, init_only: bool,
                   hostname: str | None) -> None:
    """Run a chain of N validators on this machine, each its own process, until Ctrl-C.

    The first run makes the homes (HOME/node<i>) and a genesis that funds every
    operator and a faucet (its key: HOME/faucet.key); later runs resume the same chain,
    and the chain options are then ignored. Node logs: HOME/node<i>/node.log.
    """
    if hostname is not None and not init_only:
        _fail("--hostname describes nodes on hosts of their own: use it with --init-only")
    try:
        nodes = devnet.nodes(home_dir)
        if not nodes:
            params = Params(block_time_ms=block_time_ms, epoch_length=epoch_length)
            nodes = devnet.create(home_dir, validators, chain_id=chain_id, p2p_port=p2p_port,
                                  rpc_port=rpc_port, params=params, log_format=log_format,
                                  full_nodes=full_nodes, hostname=hostname)
    except BizraError as exc:
        _fail(str(exc))
    if init_only:
        for n in nodes:
            click.echo(f"{n.home.path}  peer id {n.peer_id}")
        return
    processes: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop stops the nodes too
    try:
        processes = [devnet.start(n, n.home.path / "node.log") for n in nodes]
        click.echo(f"{'node':<6}{'rpc':<24}{'p2p':<60}home")
        for n in nodes:
            click.echo(f"{n.index:<6}{'http://127.0.0.1:' + str(n.rpc_port):<24}"
                       f"{'/ip4/127.0.0.1/tcp/' + str(n.p2p_port) + '/p2p/' + n.peer_id:<60}{n.home.path}")
        click.echo("Ctrl-C (or SIGTERM) stops them all.")
        reported: set[int] = set()
        while any(p.poll() is None for p in processes):
            for n, p in zip(nodes, processes, strict=True):
                if p.poll() is not None and n.index not in reported:
                    reported.add(n.index)
                    click.echo(f"node {n.index} exited (status {p.returncode}; log: {n.home.path}/node.log); "
                               f"the others go on. Restart it with: bizra-node start --home {n.home.path}",
                               err=True)
            time.sleep(0.5)
        raise SystemExit(1)
    except KeyboardInterrupt:
        click.echo("stopping ...")
    finally:
        devnet.stop(processes)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


for _command in (keys, tx, status, query, genesis, bench):
    main.add_command(_command)
