"""The sizes, in bytes, of the protocol's fixed-length byte strings (§1), and the bounds
every decoder puts on its variable-length fields: text, byte strings and lists (§3.8).

Every module that checks, slices or builds one of these strings takes its size from
here. This module imports nothing, so any module of the project can import it.

A bound that a chain's parameters also set (``max_tx_bytes``, ``max_block_txs``,
``max_validators``) is a ceiling here: a genesis whose parameter exceeds it is refused
(:class:`~chain.params.Params`), so the decoders, which know no parameters, never refuse
what a chain's rules accept.
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
"""The longest validator moniker, in bytes of UTF-8: a longer one does not decode."""

MAX_CHAIN_ID_BYTES: Final = 50
"""The longest chain id (CometBFT's limit): in a genesis file and in a header."""

TX_BYTES_LIMIT: Final = 1 << 20
"""The ceiling of ``max_tx_bytes`` (CometBFT's default ``mempool.max_tx_bytes``, 1 MiB):
a block's decoder refuses a longer tx."""

BLOCK_TXS_LIMIT: Final = 1_000_000
"""The ceiling of ``max_block_txs`` (ten times its default): a block's decoder refuses
more txs."""

VALIDATORS_LIMIT: Final = 10_000
"""The ceiling of ``max_validators`` (CometBFT's ``MaxVotesCount``): a commit's decoder
refuses more signatures, since a commit has one per member of a set."""

BLOCK_EVIDENCE_LIMIT: Final = 1_000
"""The most evidence a block carries: a duplicate-vote evidence encodes in at most 319
bytes, so at most about 320 KB, well inside the 4 MiB a block may carry besides its txs
(§8.7). Evidence beyond it waits for a later block, within ``evidence_max_age``."""
