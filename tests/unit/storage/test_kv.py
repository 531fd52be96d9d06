"""The key/value backends behave identically: one suite, run on memory and LevelDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.kv import KeyValueStore, iter_prefix, last_before, prefix_end

from storekit import BACKENDS, Backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path)


@pytest.fixture
def kv(backend: Backend) -> Iterator[KeyValueStore]:
    store = backend.open()
    yield store
    store.close()


def put_all(kv: KeyValueStore, items: dict[bytes, bytes]) -> None:
    batch = kv.write_batch(sync=False)
    for k, v in items.items():
        batch.put(k, v)
    batch.write()


def test_a_missing_key_reads_none(kv: KeyValueStore) -> None:
    assert kv.get(b"nope") is None


def test_a_batch_is_invisible_until_written(kv: KeyValueStore) -> None:
    batch = kv.write_batch(sync=True)
    batch.put(b"a", b"1")
    batch.put(b"b", b"2")
    assert kv.get(b"a") is None
    batch.write()
    assert (kv.get(b"a"), kv.get(b"b")) == (b"1", b"2")


def test_operations_in_a_batch_apply_in_order(kv: KeyValueStore) -> None:
    put_all(kv, {b"k": b"old"})
    batch = kv.write_batch(sync=False)
    batch.delete(b"k")
    batch.put(b"k", b"new")
    batch.put(b"gone", b"x")
    batch.delete(b"gone")
    batch.write()
    assert kv.get(b"k") == b"new"
    assert kv.get(b"gone") is None


def test_values_may_be_empty_and_keys_binary(kv: KeyValueStore) -> None:
    put_all(kv, {b"\x00\xff": b"", b"\xff": b"\x00"})
    assert kv.get(b"\x00\xff") == b""
    assert kv.get(b"\xff") == b"\x00"


def test_iteration_is_bytewise_ordered_and_bounded(kv: KeyValueStore) -> None:
    keys = [b"a", b"a\x00", b"ab", b"b", b"\x01", b"\xfe\xff"]
    put_all(kv, {k: k * 2 for k in keys})
    assert [k for k, _ in kv.iterate(b"", b"")] == sorted(keys)
    assert [k for k, _ in kv.iterate(b"a", b"b")] == [b"a", b"a\x00", b"ab"]
    assert [k for k, _ in kv.iterate(b"a", b"b", reverse=True)] == [b"ab", b"a\x00", b"a"]
    assert [v for _, v in kv.iterate(b"b", b"c")] == [b"bb"]
    assert list(kv.iterate(b"c", b"d")) == []


def test_an_iterator_sees_the_store_as_it_was(kv: KeyValueStore) -> None:
    put_all(kv, {b"a": b"1", b"b": b"2"})
    it = kv.iterate(b"", b"")
    put_all(kv, {b"c": b"3", b"a": b"changed"})
    assert list(it) == [(b"a", b"1"), (b"b", b"2")]


def test_prefix_helpers(kv: KeyValueStore) -> None:
    put_all(kv, {b"p\x01": b"1", b"p\x02": b"2", b"p\xff": b"3", b"q": b"4", b"o": b"0"})
    assert [k for k, _ in iter_prefix(kv, b"p")] == [b"p\x01", b"p\x02", b"p\xff"]
    assert last_before(kv, b"p", b"p\x02") == (b"p\x01", b"1")
    assert last_before(kv, b"p", b"p\x01") is None
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff") == b""


def test_data_survives_reopening(backend: Backend) -> None:
    kv = backend.open()
    put_all(kv, {b"k": b"v"})
    kv.close()
    kv = backend.open()
    assert kv.get(b"k") == b"v"
    kv.close()
