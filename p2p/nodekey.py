"""The node key: the Ed25519 key whose public half is the node's peer id (§8).

It lives in the node's home as a PKCS#8 PEM file (``node_key.pem``), made on first
start and kept for good: peers and bootnode lists know the node by it. It is not a
validator key and signs nothing on chain.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from chain.crypto import PrivateKey, private_key_from_pem, private_key_to_pem
from chain.errors import InvalidSignature, NetworkError


def load_or_create(path: Path) -> PrivateKey:
    """The key in ``path``, made there first if the file does not exist.

    A new file is written whole or not at all (a temp file, fsynced, then linked into
    place; the directory is fsynced), readable by its owner only. NetworkError if the
    file exists and is not a node key, saying so: the node never replaces it, since
    that would change its peer id.
    """
    if path.exists():
        try:
            return private_key_from_pem(path.read_bytes())
        except (InvalidSignature, OSError) as exc:
            raise NetworkError(f"the node key file {path} cannot be used: {exc}; move it away "
                               "to start with a new peer id") from None
    key = PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_to_pem(key))
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another process made the file meanwhile
    except FileExistsError:
        tmp.unlink()
        return load_or_create(path)
    tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return key
