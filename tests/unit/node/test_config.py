"""The node's configuration: defaults, the file, environment and command line over it,
and every mistake refused with the key it is about."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
