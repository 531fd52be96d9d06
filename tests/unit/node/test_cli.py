"""The ``bizra-node`` command line as an operator and a CI job use it: ``version``, the
wallet's keys, and what ``start`` refuses and warns about before it builds the node."""

from __future__ import annotations

import json
import logging
import os
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chain.compiled import COMPILED_MODULES, compiled_status
from node import cli
from node.config import Config
from node.daemon import InjectedFaults
from node.home import Home, warn_exposed_secrets
from node.networks import network


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version_prints_the_version_then_one_line_per_compiled_module() -> None:
    code, out, _ = invoke("version")
    assert code == 0
    first, *rest = out.splitlines()
    assert first == f"bizra-node {version('bizra-node')}"
    assert [line.split()[0] for line in rest] == list(COMPILED_MODULES)
    for line, compiled in zip(rest, compiled_status().values(), strict=True):
        if compiled:
            assert line.split()[1] == "compiled"
            assert line.rstrip(")").endswith(tuple(EXTENSION_SUFFIXES))
        else:
            assert line.split(maxsplit=1)[1] == "interpreted (pure Python)"


def test_version_json_says_the_same() -> None:
    code, out, _ = invoke("version", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["version"] == version("bizra-node")
    assert list(document["modules"]) == list(COMPILED_MODULES)
    status = compiled_status()
    for name, info in document["modules"].items():
        assert info["compiled"] is status[name]
        assert info["compiled"] == info["file"].endswith(tuple(EXTENSION_SUFFIXES))


@pytest.mark.parametrize("interpreted", [(), ("chain.poi",), COMPILED_MODULES])
def test_require_compiled_fails_exactly_when_a_module_is_interpreted(
    monkeypatch: pytest.MonkeyPatch, interpreted: tuple[str, ...]
) -> None:
    status = {name: name not in interpreted for name in COMPILED_MODULES}
    monkeypatch.setattr(cli, "compiled_status", lambda: status)
    code, out, err = invoke("version", "--require-compiled")
    if interpreted:
        assert code == 1
        assert err == f"error: running interpreted: {', '.join(interpreted)}\n"
    else:
        assert code == 0
        assert err == ""
    lines = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in out.splitlines()[1:]}
    for name in interpreted:
        assert lines[name] == "interpreted (pure Python)"


def test_help_says_what_the_program_is_and_which_commands_exist() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    assert "BIZRA NODE-0" in out
    commands = out.split("Commands:")[1]
    names = [line.split()[0] for line in commands.strip().splitlines()]
    assert names == ["bench", "devnet", "genesis", "init", "keys", "query", "start", "status", "tx",
                     "version"]
    assert "bizra-node start" in out and "BIZRA_<SECTION>_<KEY>" in out


def test_amounts_are_useed_or_seed() -> None:
    from node.cli_wallet import parse_amount

    assert parse_amount("1500") == 1_500
    assert parse_amount("2.5seed") == 2_500_000
    assert parse_amount("3SEED") == 3_000_000
    assert parse_amount("7useed") == 7
    for bad in ("1.0000001seed", "abc", "-"):
        with pytest.raises(click.BadParameter, match="expected useed"):
            parse_amount(bad)


def test_keys_are_made_listed_and_shown(tmp_path: Path) -> None:
    code, out, _ = invoke("keys", "new", "alice", "--home", str(tmp_path))
    assert code == 0
    name, address, path = out.split()
    assert (name, Path(path)) == ("alice", tmp_path / "keys" / "alice.pem")
    assert (Path(path).stat().st_mode & 0o777) == 0o600
    assert invoke("keys", "list", "--home", str(tmp_path))[1].split() == ["alice", address]
    assert json.loads(invoke("keys", "show", "alice", "--home", str(tmp_path))[1])["address"] == address
    code, _, err = invoke("keys", "new", "alice", "--home", str(tmp_path))
    assert code == 1 and "exists already" in err


def test_a_client_command_without_a_node_says_so() -> None:
    code, _, err = invoke("status", "--node", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach a node at http://127.0.0.1:9" in err


# --- start: what it refuses and warns about before the node is built --------------------


class Started:
    """What ``start`` built, with the node replaced by a recording stand-in and the run,
    and the logging setup, skipped (the root logger stays as pytest set it). ``events``
    has "checked" when the key files' modes were checked, "built" when the node was."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.nodes: list[tuple[Home, Config, InjectedFaults]] = []
        self.events: list[str] = []

        def checked(home: Home) -> list[Path]:
            self.events.append("checked")
            return warn_exposed_secrets(home)

        def build(home: Home, config: Config, faults: InjectedFaults, sync_display: object) -> object:
            self.events.append("built")
            self.nodes.append((home, config, faults))
            return object()

        async def run(node: object) -> None:
            return None

        monkeypatch.setattr(cli, "warn_exposed_secrets", checked)
        monkeypatch.setattr(cli, "Node", build)
        monkeypatch.setattr(cli, "_run_until_signalled", run)
        monkeypatch.setattr(cli, "setup_logs", lambda level, fmt: None)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Started:
    return Started(monkeypatch)


def invoke_with(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(cli.main, list(args))
    return result.exit_code, result.stdout, result.stderr


FAULT_FLAGS = [["--test-equivocate"], ["--test-clock-offset-ms", "1500"],
               ["--test-equivocate", "--test-clock-offset-ms=-200"]]


@pytest.mark.parametrize("flags", FAULT_FLAGS)
def test_fault_flags_are_refused_with_a_public_network(tmp_path: Path, started: Started,
                                                       flags: list[str]) -> None:
    code, _, err = invoke("start", "--home", str(tmp_path / "home"), "--network", "bizra-testnet-001", *flags)
    assert code == 1
    assert err.startswith("error: --test-")
    assert "refused on the public network bizra-testnet-001" in err and "devnet" in err
    assert all(flag.split("=")[0] in err for flag in flags if flag.startswith("--"))
    assert not (tmp_path / "home").exists()  # refused before anything was made
    assert started.nodes == []


def test_fault_flags_are_refused_on_a_home_of_a_public_network_without_network(
    tmp_path: Path, started: Started
) -> None:
    home = tmp_path / "home"
    assert invoke("init", "--home", str(home), "--network", "bizra-testnet-001")[0] == 0
    code, _, err = invoke("start", "--home", str(home), "--test-equivocate")
    assert code == 1
    assert err == ("error: --test-equivocate is for fault tests only, refused on the public network "
                   "bizra-testnet-001: run fault tests on a devnet (bizra-node devnet) or a local chain "
                   "(another --home)\n")
    assert started.nodes == []


def test_fault_flags_are_refused_when_the_environment_names_a_public_network(
    tmp_path: Path, started: Started
) -> None:
    home = tmp_path / "home"
    assert invoke("init", "--home", str(home))[0] == 0
    code, _, err = invoke_with({"BIZRA_NETWORK": "bizra-testnet-001"}, "start", "--home", str(home),
                               "--test-clock-offset-ms", "100")
    assert code == 1 and "refused on the public network bizra-testnet-001" in err
    assert started.nodes == []


def test_fault_flags_are_refused_on_a_home_that_joined_with_a_public_networks_genesis_file(
    tmp_path: Path, started: Started
) -> None:
    shipped = tmp_path / "genesis.json"
    shipped.write_bytes(network("bizra-testnet-001").genesis_json())
    home = tmp_path / "home"
    assert invoke("init", "--home", str(home), "--genesis", str(shipped))[0] == 0
    code, _, err = invoke("start", "--home", str(home), "--test-equivocate")
    assert code == 1 and "refused on the public network bizra-testnet-001" in err
    assert started.nodes == []


def test_fault_flags_run_on_a_local_chain(tmp_path: Path, started: Started) -> None:
    code, _, err = invoke("start", "--home", str(tmp_path / "home"), "--test-equivocate",
                          "--test-clock-offset-ms", "250")
    assert code == 0, err
    ((_, config, faults),) = started.nodes
    assert config.network == "" and faults == InjectedFaults(250, True)


def test_a_public_network_without_fault_flags_starts(tmp_path: Path, started: Started) -> None:
    code, _, err = invoke("start", "--home", str(tmp_path / "home"), "--network", "bizra-testnet-001")
    assert code == 0, err
    ((_, config, faults),) = started.nodes
    assert config.network == "bizra-testnet-001" and faults == InjectedFaults()


def test_start_warns_about_a_world_readable_key_before_building_the_node(
    tmp_path: Path, started: Started, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    assert invoke("init", "--home", str(home))[0] == 0
    key_file = home / "validator_key.pem"
    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="node.home"):
        assert invoke("start", "--home", str(home))[0] == 0
    assert started.events == ["checked", "built"]
    (record,) = [r for r in caplog.records if r.name == "node.home"]
    assert record.levelno == logging.WARNING and record.__dict__["file"] == str(key_file)
    assert record.__dict__["fix"] == f"chmod 600 {key_file}" and record.__dict__["mode"] == "0644"


def test_start_does_not_warn_about_keys_for_their_owner_only(
    tmp_path: Path, started: Started, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    assert invoke("init", "--home", str(home))[0] == 0
    with caplog.at_level(logging.WARNING, logger="node.home"):
        assert invoke("start", "--home", str(home))[0] == 0
    assert [r for r in caplog.records if r.name == "node.home"] == []
    assert len(started.nodes) == 1


# --- init and the wallet: key files' modes ---------------------------------------------------


def test_init_writes_every_key_and_the_token_for_their_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0)  # the modes are the ones the files are created with, not the umask's
    try:
        assert invoke("init", "--home", str(tmp_path / "home"))[0] == 0
        assert invoke("keys", "new", "bob", "--home", str(tmp_path / "home"))[0] == 0
    finally:
        os.umask(previous)
    for name in ("validator_key.pem", "operator_key.pem", "rpc_token", "keys/bob.pem"):
        assert (tmp_path / "home" / name).stat().st_mode & 0o777 == 0o600, name


def test_a_wallet_command_warns_about_a_world_readable_key_and_says_the_chmod(tmp_path: Path) -> None:
    assert invoke("keys", "new", "alice", "--home", str(tmp_path))[0] == 0
    key_file = tmp_path / "keys" / "alice.pem"
    key_file.chmod(0o644)
    code, out, err = invoke("keys", "show", "alice", "--home", str(tmp_path))
    assert code == 0 and json.loads(out)["name"] == "alice"  # stdout stays JSON
    assert err == f"warning: {key_file} is open to other users (mode 0644): run chmod 600 {key_file}\n"
    assert f"chmod 600 {key_file}" in invoke("keys", "list", "--home", str(tmp_path))[2]


def test_a_wallet_command_is_quiet_about_a_key_for_its_owner_only(tmp_path: Path) -> None:
    assert invoke("keys", "new", "alice", "--home", str(tmp_path))[0] == 0
    for args in (["keys", "show", "alice"], ["keys", "list"]):
        code, _, err = invoke(*args, "--home", str(tmp_path))
        assert code == 0 and err == ""


def test_tx_warns_about_the_home_keys_it_reads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert invoke("init", "--home", str(home))[0] == 0
    for name in ("validator_key.pem", "operator_key.pem"):
        (home / name).chmod(0o640)
    code, _, err = invoke("tx", "register", "val", "--home", str(home), "--node", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach a node" in err
    for name in ("validator_key.pem", "operator_key.pem"):
        path = home / name
        assert f"warning: {path} is open to other users (mode 0640): run chmod 600 {path}" in err
