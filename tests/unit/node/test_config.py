"""The node's configuration: defaults, the file, environment and command line over it,
and every mistake refused with the key it is about."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from node import cli
from node.config import Config, ConfigError, LogConfig, P2pConfig, load, render

REPO = Path(__file__).resolve().parents[3]


def test_no_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load(tmp_path / "config.toml", environ={})
    assert config == Config()
    assert (config.p2p.port, config.rpc.port, config.rpc.host) == (26656, 8080, "127.0.0.1")


def test_file_then_environment_then_command_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('moniker = "val-1"\n[p2p]\nport = 1000\nbootnodes = ["/ip4/127.0.0.1/tcp/1/p2p/X"]\n'
                    '[log]\nformat = "json"\n')
    config = load(path, environ={"BIZRA_P2P_PORT": "2000", "BIZRA_RPC_REQUESTS_PER_MINUTE": "50",
                                 "BIZRA_P2P_BOOTNODES": "/a/p2p/A, /b/p2p/B", "BIZRA_NO_MYPYC": "1",
                                 "HOME": "/root"},
                  overrides={"rpc.port": 9000})
    assert config.moniker == "val-1"
    assert config.p2p == P2pConfig(port=2000, bootnodes=("/a/p2p/A", "/b/p2p/B"))
    assert (config.rpc.port, config.rpc.requests_per_minute) == (9000, 50)
    assert config.log == LogConfig(format="json")


def test_what_render_writes_loads_back_the_same(tmp_path: Path) -> None:
    config = Config(moniker='a "quoted" name', p2p=P2pConfig(bootnodes=("/x/p2p/Y",)))
    path = tmp_path / "config.toml"
    path.write_text(render(config))
    assert load(path, environ={}) == config


@pytest.mark.parametrize("text, env, message", [
    ("[p2p]\nprot = 1\n", {}, r"p2p.prot \(.*config.toml\): unknown key \(known: .*p2p.port"),
    ("[p2pp]\nport = 1\n", {}, r"unknown section \[p2pp\]"),
    ('[p2p]\nport = "26656"\n', {}, r"p2p.port \(.*\): expected an integer, got '26656'"),
    ("[p2p]\nport = true\n", {}, r"p2p.port .*expected an integer, got True"),
    ("[p2p]\nport = 70000\n", {}, r"p2p.port: 70000 is not a port"),
    ("[p2p]\nbootnodes = [1]\n", {}, r"p2p.bootnodes .*expected a list of strings"),
    ('[log]\nformat = "xml"\n', {}, r"log.format: 'xml' is not one of text, json"),
    ("[p2p]\ntarget_peers = 50\n", {}, r"p2p.max_peers: must be at least p2p.target_peers \(50\)"),
    ("[p2p\n", {}, r"config.toml: not valid TOML"),
    ("", {"BIZRA_P2P_PORT": "many"}, r"p2p.port \(environment variable BIZRA_P2P_PORT\): .many. is not an"),
    ("", {"BIZRA_RPC_PROT": "1"}, r"rpc.prot \(environment variable BIZRA_RPC_PROT\): unknown key"),
])
def test_a_bad_value_is_refused_naming_its_key(tmp_path: Path, text: str, env: dict[str, str],
                                               message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(path, environ=env)


def test_the_variables_the_build_and_tests_read_are_not_taken_for_configuration(tmp_path: Path) -> None:
    """A ``BIZRA_*`` variable read directly (by the build, CI or a test) is no config key:
    a node started with it set must not refuse it as an unknown key."""
    sources = [*REPO.glob("*.py"), *(REPO / "tests").rglob("*.py"), REPO / ".ci" / "run"]
    pattern = re.compile(r"""(?:environ(?:\.get)?[\[(]|getenv\(|export )["']?(BIZRA_[A-Z_]+)""")
    names = {name for path in sources for name in pattern.findall(path.read_text(encoding="utf-8"))}
    assert {"BIZRA_NO_MYPYC", "BIZRA_REQUIRE_COMPILED"} <= names  # the scan finds them
    (tmp_path / "config.toml").write_text(render(Config()))
    for name in sorted(names):
        load(tmp_path / "config.toml", environ={name: "1"})


def click_envvars(command: click.Command) -> set[str]:
    """Every environment variable an option of ``command`` or of its subcommands, at any
    depth, reads (``envvar=``), and those click would derive from an ``auto_envvar_prefix``."""
    names: set[str] = set()
    for param in command.params:
        envvar = param.envvar
        names.update([envvar] if isinstance(envvar, str) else envvar or ())
    prefix = (command.context_settings or {}).get("auto_envvar_prefix")
    assert prefix is None, f"{command.name}: auto_envvar_prefix {prefix!r} derives variables to list here"
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= click_envvars(sub)
    return names


def test_the_variables_the_command_line_reads_are_not_taken_for_configuration(tmp_path: Path) -> None:
    """An option's variable (``--node`` or ``BIZRA_NODE``) is set for the commands that read
    it, and ``bizra-node start`` must not refuse it as an unknown key."""
    names = click_envvars(cli.main)
    assert {"BIZRA_HOME", "BIZRA_NODE"} <= names  # the walk finds them
    (tmp_path / "config.toml").write_text(render(Config()))
    for name in sorted(names):
        assert load(tmp_path / "config.toml", environ={name: "http://127.0.0.1:8080"}) == Config(), name


def test_start_runs_with_the_command_lines_variables_set(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``bizra-node start`` itself, with every option's variable set (BIZRA_HOME naming the
    home), gets as far as building the node."""
    built: list[Config] = []

    def build(home: object, config: Config, faults: object, sync_display: object) -> object:
        built.append(config)
        return object()

    async def run(node: object) -> None:
        return None

    monkeypatch.setattr(cli, "Node", build)
    monkeypatch.setattr(cli, "_run_until_signalled", run)
    monkeypatch.setattr(cli, "setup_logs", lambda level, fmt: None)
    env = dict.fromkeys(click_envvars(cli.main), "http://127.0.0.1:8080")
    env["BIZRA_HOME"] = str(tmp_path / "home")
    result = CliRunner(env=env).invoke(cli.main, ["start"])
    assert result.exit_code == 0, result.stderr
    assert len(built) == 1 and (tmp_path / "home" / "config.toml").exists()


def test_the_rpc_limits_and_browser_keys_have_defaults_and_come_from_file_and_environment(
        tmp_path: Path) -> None:
    rpc = Config().rpc
    assert (rpc.max_websocket_connections, rpc.max_websocket_connections_per_client) == (100, 10)
    assert rpc.max_open_connections == 900
    assert rpc.cors_allowed_origins == () and rpc.allowed_hosts == ()
    path = tmp_path / "config.toml"
    path.write_text('[rpc]\ncors_allowed_origins = ["https://explorer.example", "http://localhost:3000"]\n'
                    "max_websocket_connections = 20\n")
    config = load(path, environ={"BIZRA_RPC_ALLOWED_HOSTS": "node0, rpc.example.com",
                                 "BIZRA_RPC_MAX_WEBSOCKET_CONNECTIONS_PER_CLIENT": "3",
                                 "BIZRA_RPC_MAX_OPEN_CONNECTIONS": "50"})
    assert config.rpc.cors_allowed_origins == ("https://explorer.example", "http://localhost:3000")
    assert config.rpc.allowed_hosts == ("node0", "rpc.example.com")
    assert (config.rpc.max_websocket_connections, config.rpc.max_websocket_connections_per_client) == (20, 3)
    assert config.rpc.max_open_connections == 50
    text = render(config)
    assert 'cors_allowed_origins = ["https://explorer.example", "http://localhost:3000"]' in text
    assert 'allowed_hosts = ["node0", "rpc.example.com"]' in text
    assert "max_websocket_connections_per_client = 3" in text
    path.write_text(text)
    assert load(path, environ={}) == config


@pytest.mark.parametrize("text, message", [
    ("[rpc]\nmax_websocket_connections = 0\n", r"rpc.max_websocket_connections: must be at least 1"),
    ("[rpc]\nmax_websocket_connections_per_client = 0\n",
     r"rpc.max_websocket_connections_per_client: must be at least 1"),
    ("[rpc]\nmax_open_connections = 0\n", r"rpc.max_open_connections: must be at least 1"),
    ('[rpc]\ncors_allowed_origins = "*"\n', r"rpc.cors_allowed_origins .*expected a list of strings"),
    ('[rpc]\ncors_allowed_origins = ["explorer.example"]\n',
     r"rpc.cors_allowed_origins: 'explorer.example' is not an origin \(scheme://host\[:port\], no path\)"),
    ('[rpc]\ncors_allowed_origins = ["https://explorer.example/"]\n',
     r"rpc.cors_allowed_origins: .* no path"),
    ('[rpc]\nallowed_hosts = ["http://node0"]\n', r"rpc.allowed_hosts: 'http://node0' is not a host name"),
    ('[rpc]\nallowed_hosts = ["node0:8080"]\n', r"rpc.allowed_hosts: 'node0:8080' is not a host name"),
])
def test_a_bad_rpc_limit_or_browser_key_is_refused_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(path, environ={})
