"""The state store against a reference: after any sequence of blocks, every retained
height reads and proves what the reference map held then, the trie records on disk are
exactly the live trie, and pruning keeps what it promises and leaves nothing behind."""

from __future__ import annotations

from collections import defaultdict
from hashlib import sha256

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import StorageError
from chain.statetree import StateTree, verify_state_proof
from storage import schema
from storage.memory import MemoryKV
from storage.statestore import StateStore


def _crowded_keys() -> list[bytes]:
    """Keys whose trie paths share leading nibbles, so that inserts and deletes push
    leaves down and pull them up several levels."""
    by_prefix: dict[str, list[bytes]] = defaultdict(list)
    for i in range(3000):
        key = b"\x01k" + i.to_bytes(4, "big")
        by_prefix[sha256(key).hexdigest()[:2]].append(key)
    deep = max(by_prefix.values(), key=len)[:5]
    near = [k for p, ks in by_prefix.items() if p[0] == sha256(deep[0]).hexdigest()[0]
            for k in ks if k not in deep][:4]
    return deep + near + [b"\x02far" + bytes([i]) for i in range(4)]


KEYS = _crowded_keys()
changes_st = st.dictionaries(st.sampled_from(KEYS),
                             st.one_of(st.none(), st.binary(min_size=1, max_size=6)), max_size=10)


def newest_versions(kv: MemoryKV, family: bytes) -> dict[bytes, list[tuple[int, bytes]]]:
    """Each item's versions (height, record), oldest first."""
    out: dict[bytes, list[tuple[int, bytes]]] = defaultdict(list)
    for key, value in kv.iterate(family, family + b"\xff"):
        out[key[:-8]].append((schema.height_of(key), value))
    return out


def check_heights(state: StateStore, snapshots: list[dict[bytes, bytes]]) -> None:
    for h in range(state.base, state.height + 1):
        snapshot = snapshots[h]
        reference = StateTree()
        reference.update(snapshot)
        assert state.root_at(h) == reference.root()
        for key in KEYS:
            assert state.get_at(key, h) == snapshot.get(key)
            value, proof, root = state.prove(key, h)
            assert value == snapshot.get(key)
            verify_state_proof(root, key, value, proof)


def check_trie_records(kv: MemoryKV, state: StateStore) -> None:
    live = {item[len(schema.TRIE):-1]: versions[-1][1]
            for item, versions in newest_versions(kv, schema.TRIE).items() if versions[-1][1]}
    assert live == state.tree.trail([sha256(k).digest() for k in KEYS])


def check_nothing_left_behind(kv: MemoryKV, base: int) -> None:
    for family in (schema.TRIE, schema.STATE_VERSION):
        for item, versions in newest_versions(kv, family).items():
            old = [(h, r) for h, r in versions if h <= base]
            assert len(old) <= 1, (item, versions)
            assert all(r for h, r in old if h < base), (item, versions)


@given(st.lists(changes_st, min_size=1, max_size=10), st.integers(1, 4), st.data())
def test_reads_proofs_and_pruning_match_the_reference(blocks: list[dict[bytes, bytes | None]],
                                                      keep: int, data: st.DataObject) -> None:
    kv = MemoryKV()
    state = StateStore(kv, -1, 0)
    current: dict[bytes, bytes] = {}
    snapshots = []
    for height, changes in enumerate(blocks):
        # The root worked out ahead, for these changes or others (a block that was not
        # committed), or on a stale root, must change nothing of what is stored.
        ahead = data.draw(st.sampled_from(["none", "same", "other", "stale"]))
        if ahead == "same":
            state.prepare_root(state.app_hash, dict(changes))
        elif ahead == "other":
            state.prepare_root(state.app_hash, data.draw(changes_st))
        elif ahead == "stale":
            state.prepare_root(bytes(32), dict(changes))
        advanced = state.advance(height, changes)
        batch = kv.write_batch(sync=False)
        root = state.stage(batch, height)
        batch.write()
        state.written(height)
        assert root == advanced
        for key, value in changes.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        snapshots.append(dict(current))
        expected = StateTree()
        expected.update(current)
        assert root == expected.root()
        check_trie_records(kv, state)
    check_heights(state, snapshots)
    state.prune(keep)
    assert state.base == max(0, state.height - keep + 1)
    check_heights(state, snapshots)
    check_nothing_left_behind(kv, state.base)
    check_trie_records(kv, state)
    if state.base > 0:
        with pytest.raises(StorageError, match="is not kept"):
            state.get_at(KEYS[0], state.base - 1)
