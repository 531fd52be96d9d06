"""The home's secret files: made readable by their owner only, and a warning, naming the
file and the command that fixes it, for one that other users can read."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.crypto import PrivateKey, private_key_to_pem
from chain.params import Params
from node import devnet
from node.config import Config
from node.home import Home, chmod_advice, exposed_mode, init_home, warn_exposed_secrets


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Run with umask 0, so that a file's mode is exactly the one it was created with."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def make_home(path: Path) -> Home:
    key = PrivateKey.generate()
    genesis = devnet.genesis_json("bizra-home-test", [key], None, Params(), 1_000_000_000)
    home = init_home(path, genesis, Config(), key)
    home.node_key_file.write_bytes(private_key_to_pem(PrivateKey.generate()))
    home.node_key_file.chmod(0o600)
    return home


def warnings_about(caplog: pytest.LogCaptureFixture) -> dict[str, logging.LogRecord]:
    return {r.__dict__["file"]: r for r in caplog.records
            if r.levelno == logging.WARNING and r.getMessage() == "key file open to other users"}


@pytest.mark.usefixtures("no_umask")
def test_init_writes_the_secret_files_for_their_owner_only(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    for path in (home.validator_key_file, home.rpc_token_file):
        assert path.stat().st_mode & 0o777 == 0o600, path


@pytest.mark.parametrize("mode, exposed", [(0o600, False), (0o400, False), (0o700, False), (0o644, True),
                                           (0o640, True), (0o604, True), (0o660, True), (0o620, True)])
def test_a_file_is_exposed_when_its_group_or_others_have_any_access(tmp_path: Path, mode: int,
                                                                    exposed: bool) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"secret")
    path.chmod(mode)
    assert exposed_mode(path) == (mode if exposed else None)


def test_a_missing_file_is_not_exposed(tmp_path: Path) -> None:
    assert exposed_mode(tmp_path / "missing.pem") is None


def test_the_advice_names_the_file_its_mode_and_the_chmod(tmp_path: Path) -> None:
    path = tmp_path / "validator_key.pem"
    assert chmod_advice(path, 0o644) == f"{path} is open to other users (mode 0644): run chmod 600 {path}"


@pytest.mark.parametrize("name", ["validator_key.pem", "node_key.pem", "rpc_token"])
def test_a_world_readable_secret_file_is_warned_about_with_the_chmod_to_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    home = make_home(tmp_path / "home")
    path = home.path / name
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="node.home"):
        assert warn_exposed_secrets(home) == [path]
    record = warnings_about(caplog)[str(path)]
    assert record.__dict__["mode"] == "0644"
    assert record.__dict__["fix"] == f"chmod 600 {path}"


def test_secret_files_for_their_owner_only_are_not_warned_about(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    home = make_home(tmp_path / "home")
    with caplog.at_level(logging.WARNING, logger="node.home"):
        assert warn_exposed_secrets(home) == []
    assert warnings_about(caplog) == {}


def test_missing_secret_files_are_not_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = Home(tmp_path / "empty")
    with caplog.at_level(logging.WARNING, logger="node.home"):
        assert warn_exposed_secrets(home) == []
    assert not caplog.records
