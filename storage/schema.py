"""Every key the node stores, built in one place.

The store-info key lives outside every schema; all other keys start with the schema
version byte, so a later layout can live beside this one while a migration runs.
Heights are 8-byte and indices 4-byte big-endian, so keys sort as numbers and a block's
writes land in order. What each value holds is stated beside its key.

The stores build every key with the functions here and take keys apart with them; no
other module joins a family prefix to a key's parts. The ``*_keys`` functions build the
keys of one kind for a whole block at once, at the cost of a concatenation each, for the
loops that write a block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chain.sizes import HASH_LEN

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
"""The lowest height whose state can still be read (pruning moves it), as
:func:`encode_height` writes it."""
BLOCK_BASE = _V + b"m/block-base"
"""The lowest height whose block, results and tx index the store holds, as
:func:`encode_height` writes it; absent: the chain's initial height. A store restored
from a snapshot of height ``h`` holds from ``h + 1`` (and block ``h`` itself, whose
results it does not have, as the anchor of the next)."""
RESTORING = _V + b"m/restoring"
"""CBOR ``[height, app_hash]`` while a snapshot is being restored into the store: a
store opened with it holds a partial state and is discarded (``storage/restore.py``)."""


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def encode_height(height: int) -> bytes:
    """A height as the value of a :func:`block_id` or :data:`STATE_BASE` record."""
    return _u64(height)


def decode_height(value: bytes) -> int:
    """The height an :func:`encode_height` value holds."""
    return int.from_bytes(value, "big")


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
    """Block id → the block's height (:func:`encode_height`)."""
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


def tx_keys(tx_hashes: Iterable[bytes]) -> list[bytes]:
    """:func:`tx` of each of ``tx_hashes``, in order."""
    return [TX + tx_hash for tx_hash in tx_hashes]


def sender_txs(sender: bytes) -> bytes:
    """What the keys of sender address ``sender``'s entries start with."""
    return SENDER_TX + sender


def sender_tx(sender: bytes, height: int, index: int) -> bytes:
    """Sender address, height, index → the tx hash."""
    return SENDER_TX + sender + _u64(height) + index.to_bytes(4, "big")


def sender_tx_keys(senders: Sequence[bytes], height: int) -> list[bytes]:
    """:func:`sender_tx` of the txs of block ``height``, whose senders are ``senders``
    in block order."""
    at = _u64(height)
    return [SENDER_TX + sender + at + index.to_bytes(4, "big") for index, sender in enumerate(senders)]


def sender_tx_position(key: bytes) -> tuple[int, int]:
    """The height and index in a :func:`sender_tx` key."""
    return int.from_bytes(key[-12:-4], "big"), int.from_bytes(key[-4:], "big")


# --- the state -----------------------------------------------------------------------

STATE = _V + b"L"
STATE_VERSION = _V + b"V"
TRIE = _V + b"N"
STATE_CHANGES = _V + b"C"
STATE_ROOT = _V + b"R"


def state(key: bytes) -> bytes:
    """A state key's value at the latest height; given a prefix of state keys, what the
    keys of their entries start with."""
    return STATE + key


def state_keys(keys: Iterable[bytes]) -> list[bytes]:
    """:func:`state` of each of ``keys``, in order."""
    return [STATE + key for key in keys]


def state_key_of(key: bytes) -> bytes:
    """The state key whose value a :func:`state` key holds."""
    return key[len(STATE):]


def state_versions(path: bytes) -> bytes:
    """What the keys of the versions of the state key whose trie path is ``path``
    (SHA-256 of the key) start with; given a prefix of paths, what the keys of the
    versions of every key under it start with.

    A version (:func:`version`) holds ``0x01 || value`` as the key was set at its height,
    or is empty: deleted there.
    """
    return STATE_VERSION + path


def state_version_keys(paths: Iterable[bytes], height: int) -> list[bytes]:
    """The key of the version at ``height`` of each of ``paths``, in order."""
    at = _u64(height)
    return [STATE_VERSION + path + at for path in paths]


def path_of(key: bytes) -> bytes:
    """The trie path in the key of a state version."""
    return key[len(STATE_VERSION):len(STATE_VERSION) + HASH_LEN]


def trie_versions(position: bytes) -> bytes:
    """What the keys of the versions of the trie position ``position`` (nibbles in
    lowercase hex) start with.

    A version (:func:`version`) holds the hash preimage at the position as of its height
    (see :meth:`chain.statetree.StateTree.trail`), or is empty: nothing there from then.
    """
    return TRIE + position + b"/"


def trie_version_keys(positions: Iterable[bytes], height: int) -> list[bytes]:
    """The key of the version at ``height`` of each of ``positions``, in order."""
    at = _u64(height)
    return [TRIE + position + b"/" + at for position in positions]


def version(versions: bytes, height: int) -> bytes:
    """The key of the version at ``height`` among ``versions`` (a :func:`state_versions`
    or :func:`trie_versions` key)."""
    return versions + _u64(height)


def upper(versions: bytes, height: int) -> bytes:
    """The exclusive bound of the range of ``versions`` up to and including ``height``."""
    return version(versions, height + 1)


def state_changes(height: int) -> bytes:
    """CBOR ``[paths, positions]`` written at ``height``: what pruning it deletes."""
    return STATE_CHANGES + _u64(height)


def state_root(height: int) -> bytes:
    """The state root after ``height``."""
    return STATE_ROOT + _u64(height)
