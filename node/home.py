"""A node's home directory: what is in it, creating it, and reading it back.

::

    config.toml          the configuration (node.config), every key written out
    genesis.json         the chain's genesis; its hash is the chain's identity
    node_key.pem         the libp2p identity (p2p.nodekey), made on first start (mode 0600)
    validator_key.pem    the consensus key, on validators only (PKCS#8, mode 0600)
    rpc_token            the bearer token of admin RPC methods (mode 0600)
    data/store/          blocks, txs and state (LevelDB)
    data/wal/            the consensus write-ahead log
    data/snapshots/      the state snapshots this node serves (storage.snapshots)
    data/signer.json     the double-sign guard's last signature

``init`` writes the files that are not data and refuses to touch a home that has a
configuration already. Every file holding a secret is created readable by its owner
only; :func:`warn_exposed_secrets` warns, at start, about one that is not (any more).
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from chain.crypto import PrivateKey, private_key_from_pem, private_key_to_pem
from chain.errors import BizraError, InvalidSignature
from chain.genesis import Genesis, genesis_hash, parse_genesis
from node.config import Config, render

log = logging.getLogger(__name__)

SECRET_MODE = 0o600
"""The permissions of a file holding a secret: read and write by its owner only."""


class HomeError(BizraError):
    """The home cannot be used as asked; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class Home:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config.toml"

    @property
    def genesis_file(self) -> Path:
        return self.path / "genesis.json"

    @property
    def node_key_file(self) -> Path:
        return self.path / "node_key.pem"

    @property
    def validator_key_file(self) -> Path:
        return self.path / "validator_key.pem"

    @property
    def rpc_token_file(self) -> Path:
        return self.path / "rpc_token"

    @property
    def store_dir(self) -> Path:
        return self.path / "data" / "store"

    @property
    def snapshots_dir(self) -> Path:
        return self.path / "data" / "snapshots"

    @property
    def wal_dir(self) -> Path:
        return self.path / "data" / "wal"

    @property
    def signer_state_file(self) -> Path:
        return self.path / "data" / "signer.json"

    @property
    def secret_files(self) -> tuple[Path, ...]:
        """The files of the home that only its owner may read: the validator key, the
        node key and the admin RPC token (those present or not)."""
        return (self.validator_key_file, self.node_key_file, self.rpc_token_file)

    def exists(self) -> bool:
        return self.config_file.exists()

    def genesis(self) -> tuple[Genesis, bytes]:
        """The genesis and its hash; HomeError if it is missing or invalid."""
        try:
            data = self.genesis_file.read_bytes()
        except OSError as exc:
            raise HomeError(f"cannot read the genesis {self.genesis_file}: {exc.strerror}") from None
        try:
            return parse_genesis(data), genesis_hash(data)
        except BizraError as exc:
            raise HomeError(f"{self.genesis_file}: {exc}") from None

    def validator_key(self) -> PrivateKey | None:
        """The consensus key, or None on a node that is not a validator."""
        if not self.validator_key_file.exists():
            return None
        try:
            return private_key_from_pem(self.validator_key_file.read_bytes())
        except (OSError, InvalidSignature) as exc:
            raise HomeError(f"{self.validator_key_file}: not a usable validator key ({exc})") from None

    def rpc_token(self) -> str:
        try:
            return self.rpc_token_file.read_text().strip()
        except OSError as exc:
            raise HomeError(f"cannot read {self.rpc_token_file}: {exc.strerror}") from None


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable by its owner only; HomeError if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    except FileExistsError:
        raise HomeError(f"{path} exists already; it is never overwritten") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def init_home(path: Path, genesis_json: bytes, config: Config, validator_key: PrivateKey | None) -> Home:
    """Create the home at ``path`` for the chain of ``genesis_json``; HomeError if it
    has a configuration already or the genesis is invalid."""
    home = Home(path)
    if home.exists():
        raise HomeError(f"{path} is a node home already (it has {home.config_file.name}); "
                        "choose another directory or remove it")
    try:
        parse_genesis(genesis_json)
    except BizraError as exc:
        raise HomeError(f"the genesis is not valid: {exc}") from None
    (path / "data").mkdir(parents=True, exist_ok=True)
    home.genesis_file.write_bytes(genesis_json)
    if validator_key is not None:
        write_private(home.validator_key_file, private_key_to_pem(validator_key))
    write_private(home.rpc_token_file, secrets.token_urlsafe(32).encode() + b"\n")
    home.config_file.write_text(render(config))  # last: its presence marks a complete home
    return home


def exposed_mode(path: Path) -> int | None:
    """The permission bits of ``path`` if its group or other users have any access to it
    (``0o644``, ``0o640``); None if only its owner has, or it cannot be examined (it
    does not exist: whoever reads it reports that)."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    return mode if mode & 0o077 else None


def chmod_advice(path: Path, mode: int) -> str:
    """What is wrong with the permissions ``mode`` of the secret file ``path`` and the
    command that fixes them, for a person to read."""
    return f"{path} is open to other users (mode {mode:04o}): run chmod 600 {path}"


def warn_exposed_secrets(home: Home) -> list[Path]:
    """Log a warning for each of ``home``'s secret files that other users have access to,
    with the file, its mode and the ``chmod 600`` to run; the files warned about.

    The node creates these files with mode 0600 itself; a looser mode comes from a copy,
    an archive or a volume restored by hand, and the node still starts.
    """
    exposed: list[Path] = []
    for path in home.secret_files:
        mode = exposed_mode(path)
        if mode is not None:
            log.warning("key file open to other users", extra={
                "file": str(path), "mode": f"{mode:04o}", "fix": f"chmod 600 {path}"})
            exposed.append(path)
    return exposed
