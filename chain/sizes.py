"""The sizes, in bytes, of the protocol's fixed-length byte strings (§1) and of its
bounded text fields.

Every module that checks, slices or builds one of these strings takes its size from
here. This module imports nothing, so any module of the project can import it.
"""

from __future__ import annotations

from typing import Final

HASH_LEN: Final = 32
"""A SHA-256 digest: block ids, tx hashes, Merkle and state roots, trie key paths."""

ADDRESS_LEN: Final = 20
"""An address (account, operator, consensus key): the first bytes of the SHA-256 of an
Ed25519 public key."""

PUBLIC_KEY_LEN: Final = 32
"""An Ed25519 public key."""

SIGNATURE_LEN: Final = 64
"""An Ed25519 signature."""

SEED_LEN: Final = 32
"""An Ed25519 private key's seed (RFC 8032): the whole secret."""

MAX_MONIKER_BYTES: Final = 64
"""The longest validator moniker, in bytes of UTF-8."""
