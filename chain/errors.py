"""The error families of the BIZRA ledger.

Every error the node raises on bad input derives from :class:`BizraError`. Each family
maps to one JSON-RPC error code and one peer penalty (see ``node``), so callers catch a
family, never a third-party exception.
"""

from __future__ import annotations


class BizraError(Exception):
    """Root of every error the project raises on purpose."""


class DecodeError(BizraError):
    """Bytes that are not the canonical encoding of the expected object (§2)."""


class InvalidSignature(BizraError):
    """A signature, public key or key file that does not check out."""


class InvalidTx(BizraError):
    """A transaction that can never be valid: bad signature, nonce, fee, size or chain."""


class ForgedTx(InvalidTx):
    """A transaction whose signature is not its sender's (for this chain): whoever sent
    it made or altered it, which a peer relaying valid txs never does."""


class InvalidBlock(BizraError):
    """A block that breaks a rule of §4 or whose transactions cannot be applied."""


class InvalidEvidence(BizraError):
    """Misbehaviour evidence that does not prove what it claims (§6)."""


class InvalidGenesis(BizraError):
    """A genesis file that cannot start a chain; the message names the bad field."""


class InvalidProof(BizraError):
    """A merkle or state proof that does not verify against its root."""


class NotFound(BizraError):
    """A lookup for something the node does not have."""


class InvalidAddress(BizraError):
    """Text that is neither a ``bizra1…`` bech32 address nor 40 hex digits."""


class StorageError(BizraError):
    """The node's store cannot be used as asked: held by another process, written by
    another schema version or chain, corrupt, or pruned below the height asked for."""


class NetworkError(BizraError):
    """A peer, message or request the network layer cannot carry: too large, to an
    unknown or banned peer, refused, timed out, or answered with an error."""
