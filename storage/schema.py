"""Every key the node stores, built in one place.

The store-info key lives outside every schema; all other keys start with the schema
version byte, so a later layout can live beside this one while a migration runs.
Heights are 8-byte and indices 4-byte big-endian, so keys sort as numbers and a block's
writes land in order. What each value holds is stated beside its key.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
_V = bytes((SCHEMA_VERSION,))

STORE_INFO = b"\x00store-info"
"""CBOR ``[schema_version, chain_id, genesis_hash]``: whose store this is."""

LATEST = _V + b"m/latest"
"""CBOR ``[height, app_hash]`` of the last committed block (the genesis state: height
``initial_height - 1``). Written in the same batch as everything of that height."""
CONSENSUS = _V + b"m/consensus"
"""What consensus keeps of the latest height (the proposer priorities), opaque to the
store; written in the same batch as the block."""
STATE_BASE = _V + b"m/state-base"
"""8-byte height: the lowest height whose state can still be read (pruning moves it)."""


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def height_of(key: bytes) -> int:
    """The height in the last 8 bytes of a height-suffixed key."""
    return int.from_bytes(key[-8:], "big")


# --- blocks --------------------------------------------------------------------------

BLOCK = _V + b"b"
BLOCK_ID = _V + b"i"
COMMIT = _V + b"c"
SEEN_COMMIT = _V + b"s"


def block(height: int) -> bytes:
    """The block's canonical encoding."""
    return BLOCK + _u64(height)


def block_id(block_id: bytes) -> bytes:
    """Block id → 8-byte height."""
    return BLOCK_ID + block_id


def commit(height: int) -> bytes:
    """The commit of ``height`` that block ``height + 1`` carries."""
    return COMMIT + _u64(height)


def seen_commit(height: int) -> bytes:
    """The commit this node saw for the latest height (the only one kept)."""
    return SEEN_COMMIT + _u64(height)


# --- the tx index --------------------------------------------------------------------

TX = _V + b"t"
SENDER_TX = _V + b"a"


def tx(tx_hash: bytes) -> bytes:
    """CBOR ``[height, index, code, data, log]``."""
    return TX + tx_hash


def sender_tx(sender: bytes, height: int, index: int) -> bytes:
    """Sender address, height, index → the tx hash."""
    return SENDER_TX + sender + _u64(height) + index.to_bytes(4, "big")


def sender_txs(sender: bytes) -> bytes:
    return SENDER_TX + sender


# --- the state -----------------------------------------------------------------------

STATE = _V + b"L"
STATE_VERSION = _V + b"V"
TRIE = _V + b"N"
STATE_CHANGES = _V + b"C"
STATE_ROOT = _V + b"R"


def state(key: bytes) -> bytes:
    """A state key's value at the latest height."""
    return STATE + key


def state_versions(path: bytes) -> bytes:
    """The versions of the state key whose trie path is ``path`` (SHA-256 of the key)."""
    return STATE_VERSION + path


def state_version(path: bytes, height: int) -> bytes:
    """``0x01 || value`` as the key was set at ``height``, or empty: deleted there."""
    return STATE_VERSION + path + _u64(height)


def trie_versions(position: bytes) -> bytes:
    """The versions of the trie position ``position`` (nibbles in lowercase hex)."""
    return TRIE + position + b"/"


def trie_version(position: bytes, height: int) -> bytes:
    """The hash preimage at a trie position as of ``height`` (see
    :meth:`chain.statetree.StateTree.trail`), or empty: nothing there from ``height``."""
    return TRIE + position + b"/" + _u64(height)


def state_changes(height: int) -> bytes:
    """CBOR ``[paths, positions]`` written at ``height``: what pruning it deletes."""
    return STATE_CHANGES + _u64(height)


def state_root(height: int) -> bytes:
    """The state root after ``height``."""
    return STATE_ROOT + _u64(height)


def upper(key: bytes, height: int) -> bytes:
    """The exclusive bound of a version range that includes ``height``."""
    return key + _u64(height + 1)
