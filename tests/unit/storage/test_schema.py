"""The key layout of docs/storage.md, byte for byte (storage.schema): stores written by
any earlier build of this schema version must open unchanged."""

from __future__ import annotations

from storage import schema

H = (7).to_bytes(8, "big")
PATH = bytes(range(32))
SENDER = bytes(range(100, 120))


def test_the_records_outside_the_families() -> None:
    assert schema.STORE_INFO == b"\x00store-info"
    assert schema.LATEST == b"\x01m/latest"
    assert schema.CONSENSUS == b"\x01m/consensus"
    assert schema.STATE_BASE == b"\x01m/state-base"
    assert schema.encode_height(7) == H
    assert schema.decode_height(H) == 7


def test_block_keys() -> None:
    assert schema.block(7) == b"\x01b" + H
    assert schema.block_id(PATH) == b"\x01i" + PATH
    assert schema.commit(7) == b"\x01c" + H
    assert schema.seen_commit(7) == b"\x01s" + H
    assert schema.height_of(schema.seen_commit(7)) == 7


def test_tx_index_keys() -> None:
    assert schema.tx(PATH) == b"\x01t" + PATH
    assert schema.tx_keys([PATH, PATH[::-1]]) == [schema.tx(PATH), schema.tx(PATH[::-1])]
    assert schema.sender_txs(SENDER) == b"\x01a" + SENDER
    assert schema.sender_tx(SENDER, 7, 3) == b"\x01a" + SENDER + H + b"\x00\x00\x00\x03"
    assert schema.sender_tx_keys([SENDER, PATH[:20]], 7) == [schema.sender_tx(SENDER, 7, 0),
                                                             schema.sender_tx(PATH[:20], 7, 1)]
    assert schema.sender_tx_position(schema.sender_tx(SENDER, 7, 3)) == (7, 3)


def test_state_keys() -> None:
    assert schema.state(b"\x01abc") == b"\x01L\x01abc"
    assert schema.state_keys([b"\x01abc", b"\x02"]) == [b"\x01L\x01abc", b"\x01L\x02"]
    assert schema.state_key_of(schema.state(b"\x01abc")) == b"\x01abc"
    assert schema.state_versions(PATH) == b"\x01V" + PATH
    assert schema.version(schema.state_versions(PATH), 7) == b"\x01V" + PATH + H
    assert schema.state_version_keys([PATH], 7) == [b"\x01V" + PATH + H]
    assert schema.path_of(b"\x01V" + PATH + H) == PATH
    assert schema.trie_versions(b"3a") == b"\x01N3a/"
    assert schema.version(schema.trie_versions(b"3a"), 7) == b"\x01N3a/" + H
    assert schema.trie_version_keys([b"", b"3a"], 7) == [b"\x01N/" + H, b"\x01N3a/" + H]
    assert schema.upper(schema.trie_versions(b"3a"), 7) == b"\x01N3a/" + (8).to_bytes(8, "big")
    assert schema.state_changes(7) == b"\x01C" + H
    assert schema.state_root(7) == b"\x01R" + H
