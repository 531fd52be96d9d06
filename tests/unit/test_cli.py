"""``bizra-node version`` as an operator and a CI job use it."""

from __future__ import annotations

import json
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.metadata import version

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
    assert names == ["devnet", "init", "start", "version"]
    assert "bizra-node start" in out and "BIZRA_<SECTION>_<KEY>" in out
