"""``bizra-node version`` as an operator and a CI job use it."""

from __future__ import annotations

import json
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chain.compiled import COMPILED_MODULES, compiled_status
from node import cli


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
