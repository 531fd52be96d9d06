"""State snapshots (§11.4): the format of a snapshot of the state at a height, and the
rules that make each of its pieces verifiable on its own against a trusted state root.

The state's trie (``docs/state-root.md``) is cut at a depth ``D`` (0 to
:data:`MAX_SPLIT_DEPTH`): each key belongs to the *prefix* formed by the first ``D``
nibbles of its path ``SHA-256(key)``, a number in ``[0, 16**D)``.

- The **manifest** ``[format, height, depth, entries, chunks]`` lists, for every prefix
  that holds keys, ``[prefix, kind, hash]``: the hash of the subtree of the keys under
  it (``kind`` :data:`LEAF` when it holds one key, whose leaf hash it is, else
  :data:`NODE`), in increasing prefix order; and ``chunks``, the first prefix of each
  chunk, strictly increasing from 0. Chunk ``i`` covers the prefixes from
  ``chunks[i]`` up to (not including) ``chunks[i + 1]`` (``16**D`` for the last).
  The subtree hashes determine the root (:func:`manifest_root`): a manifest is checked
  by computing it and comparing it with the trusted ``app_hash``.
- A **chunk** ``[[key, value], ...]`` holds every key of its prefixes with its value,
  in increasing path order. It is checked (:func:`verify_chunk`) by computing the
  subtree hash of each of its prefixes from its pairs and comparing them with the
  manifest's, for every prefix it covers: a changed value, a dropped or an added key,
  or a key outside the chunk's prefixes changes or adds a hash, so the chunk is refused.

A snapshot's **descriptor** ``[height, format, chunks, manifest_hash]`` (what a node
lists) names it: ``manifest_hash`` is SHA-256 of the manifest's encoding.

The snapshot of height ``h`` is the state after block ``h``: the ``app_hash`` of header
``h + 1`` is its root (§4.5).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256

from chain.codec import dumps, expect_array, expect_bytes, expect_list, expect_uint, loads_canonical
from chain.errors import DecodeError, InvalidProof
from chain.sizes import HASH_LEN
from chain.statetree import EMPTY_ROOT, key_path, leaf_hash, nibble, node_hash

FORMAT = 1
"""The only snapshot format this node makes and reads."""
MAX_SPLIT_DEPTH = 3
"""The deepest split: a manifest has at most 16**3 = 4,096 entries and chunks."""
PREFIX_TARGET_BYTES = 16 << 10
"""The split depth is the least at which the prefixes hold this many bytes of keys
and values on average (or :data:`MAX_SPLIT_DEPTH`)."""
CHUNK_TARGET_BYTES = 128 << 10
"""Consecutive prefixes go into one chunk while it holds no more than this (a chunk
holds one prefix at least, whatever its size)."""
MAX_CHUNK_BYTES = 16 << 20
"""The largest chunk a node makes or takes (encoded)."""
MAX_MANIFEST_BYTES = 256 << 10
"""The largest manifest (4,096 entries of about 40 bytes, and 4,096 chunk starts)."""
MAX_KEY_BYTES = 256
"""The longest state key a chunk may carry (the longest the chain makes is 50 bytes)."""
MAX_CHUNK_PAIRS = 1 << 17
"""The most pairs a chunk holds (131,072). A chunk above ``CHUNK_TARGET_BYTES`` holds one
prefix, at depth 3 1/4,096 of the state's keys on average: this takes states of about
500 million keys, and bounds what a hostile chunk costs to decode (tens of MB) whatever
its pairs' sizes."""
LEAF = 1
NODE = 2


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A snapshot as nodes list it: ``[height, format, chunks, manifest_hash]``."""

    height: int
    format: int
    chunks: int
    manifest_hash: bytes

    def to_cbor(self) -> list[object]:
        return [self.height, self.format, self.chunks, self.manifest_hash]

    @classmethod
    def from_cbor(cls, obj: object) -> Descriptor:
        height, fmt, chunks, manifest_hash = expect_array(obj, 4, "snapshot descriptor")
        return cls(expect_uint(height, "snapshot descriptor.height"),
                   expect_uint(fmt, "snapshot descriptor.format"),
                   expect_uint(chunks, "snapshot descriptor.chunks", 16 ** MAX_SPLIT_DEPTH),
                   expect_bytes(manifest_hash, "snapshot descriptor.manifest_hash", HASH_LEN))


@dataclass(frozen=True, slots=True)
class Subtree:
    """The keys under one prefix, as the manifest gives them: their subtree's hash and
    whether it is a single leaf."""

    prefix: int
    kind: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class Manifest:
    """See the module docstring. Made by :func:`make_manifest` or :meth:`decode`, which
    check its shape; whether it is the state's is :func:`manifest_root`'s question."""

    height: int
    depth: int
    entries: tuple[Subtree, ...]
    chunk_starts: tuple[int, ...]

    @property
    def chunks(self) -> int:
        return len(self.chunk_starts)

    def chunk_range(self, index: int) -> tuple[int, int]:
        """The prefixes ``[first, end)`` chunk ``index`` covers."""
        if not 0 <= index < len(self.chunk_starts):
            raise IndexError(f"chunk {index} of {len(self.chunk_starts)}")
        end = self.chunk_starts[index + 1] if index + 1 < len(self.chunk_starts) else 16 ** self.depth
        return self.chunk_starts[index], end

    def encode(self) -> bytes:
        return dumps([FORMAT, self.height, self.depth,
                      [[e.prefix, e.kind, e.hash] for e in self.entries], list(self.chunk_starts)])

    def descriptor(self) -> Descriptor:
        return Descriptor(self.height, FORMAT, self.chunks, sha256(self.encode()).digest())

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """DecodeError unless ``data`` is a manifest of :data:`FORMAT` of a valid shape:
        depth at most :data:`MAX_SPLIT_DEPTH`, prefixes below ``16**depth`` and strictly
        increasing, kinds LEAF or NODE, 32-byte hashes, chunk starts strictly
        increasing from 0."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise DecodeError(f"manifest: {len(data)} bytes, more than {MAX_MANIFEST_BYTES}")
        fmt, height, depth, raw_entries, raw_starts = expect_array(loads_canonical(data, "manifest"), 5,
                                                                   "manifest")
        if expect_uint(fmt, "manifest.format") != FORMAT:
            raise DecodeError(f"manifest: format {fmt}, this node reads {FORMAT}")
        depth = expect_uint(depth, "manifest.depth", MAX_SPLIT_DEPTH)
        span = 16 ** depth
        entries = []
        for raw in expect_list(raw_entries, "manifest.entries", span):
            prefix, kind, digest = expect_array(raw, 3, "manifest entry")
            entry = Subtree(expect_uint(prefix, "manifest entry.prefix", span - 1),
                            expect_uint(kind, "manifest entry.kind", NODE),
                            expect_bytes(digest, "manifest entry.hash", HASH_LEN))
            if entry.kind not in (LEAF, NODE):
                raise DecodeError(f"manifest entry: kind {entry.kind} is neither {LEAF} nor {NODE}")
            entries.append(entry)
        starts = [expect_uint(s, "manifest chunk start", span - 1)
                  for s in expect_list(raw_starts, "manifest.chunks", span)]
        if any(b.prefix <= a.prefix for a, b in itertools.pairwise(entries)):
            raise DecodeError("manifest: entries not in strictly increasing prefix order")
        if not starts or starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(starts)):
            raise DecodeError("manifest: chunk starts must increase strictly from 0")
        return cls(expect_uint(height, "manifest.height"), depth, tuple(entries), tuple(starts))


def prefix_of(path: bytes, depth: int) -> int:
    """The first ``depth`` nibbles of ``path`` as a number."""
    value = 0
    for d in range(depth):
        value = value << 4 | nibble(path, d)
    return value


def split_depth(total_bytes: int) -> int:
    """The split depth for a state of ``total_bytes`` bytes of keys and values."""
    depth = 0
    while depth < MAX_SPLIT_DEPTH and total_bytes > 16 ** depth * PREFIX_TARGET_BYTES:
        depth += 1
    return depth


def subtree(paths: Sequence[bytes], value_hashes: Sequence[bytes], depth: int) -> tuple[int, bytes]:
    """The kind and hash of the subtree at ``depth`` of the keys at ``paths`` (at least
    one, sorted, distinct, sharing their first ``depth`` nibbles) with those value
    hashes, as the state trie defines it."""
    leaves = [leaf_hash(p, v) for p, v in zip(paths, value_hashes, strict=True)]
    if len(leaves) == 1:
        return LEAF, leaves[0]
    return NODE, _node(paths, leaves, 0, len(paths), depth)


def _node(paths: Sequence[bytes], leaves: Sequence[bytes], lo: int, hi: int, depth: int) -> bytes:
    """The hash of the subtree at ``depth`` of ``paths[lo:hi]`` (``hi - lo >= 1``)."""
    if hi - lo == 1:
        return leaves[lo]
    bitmap = 0
    children = []
    i = lo
    while i < hi:
        n = nibble(paths[i], depth)
        j = i + 1
        while j < hi and nibble(paths[j], depth) == n:
            j += 1
        bitmap |= 1 << n
        children.append(_node(paths, leaves, i, j, depth + 1))
        i = j
    return node_hash(bitmap, children)


def manifest_root(manifest: Manifest) -> bytes:
    """The state root the manifest's subtree hashes make: each node above the split is
    built from its present children, and one whose only key is a single leaf below is
    that leaf (a key sits where it is alone)."""
    depth = manifest.depth
    level: list[tuple[int, int, bytes]] = [(e.prefix, e.kind, e.hash) for e in manifest.entries]
    for _ in range(depth):
        parents: list[tuple[int, int, bytes]] = []
        for parent, group in itertools.groupby(level, key=lambda item: item[0] >> 4):
            children = list(group)
            if len(children) == 1 and children[0][1] == LEAF:
                parents.append((parent, LEAF, children[0][2]))
                continue
            bitmap = 0
            for prefix, _, _ in children:
                bitmap |= 1 << (prefix & 15)
            parents.append((parent, NODE, node_hash(bitmap, [h for _, _, h in children])))
        level = parents
    return level[0][2] if level else EMPTY_ROOT


def make_manifest(height: int, depth: int, subtrees: Iterable[Subtree],
                  chunk_starts: Iterable[int]) -> Manifest:
    """A manifest of these parts, checked as :meth:`Manifest.decode` checks one."""
    made = Manifest(height, depth, tuple(subtrees), tuple(chunk_starts))
    return Manifest.decode(made.encode())


def encode_chunk(pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A chunk: ``pairs`` (key, value) in increasing path order."""
    return dumps([[k, v] for k, v in pairs])


def decode_chunk(data: bytes) -> list[tuple[bytes, bytes]]:
    """The pairs of a chunk; DecodeError unless it is the canonical encoding of a list of
    at most :data:`MAX_CHUNK_PAIRS` ``[key, value]`` byte strings, within
    :data:`MAX_CHUNK_BYTES`, keys of 1 to :data:`MAX_KEY_BYTES` bytes and values not empty
    (the state holds no empty value: an empty one is a deletion), keys in strictly
    increasing path order. Decoded a pair at a time: the count in the array's head is
    checked before any pair is built, and a bad pair stops the decoding there."""
    if len(data) > MAX_CHUNK_BYTES:
        raise DecodeError(f"chunk: {len(data)} bytes, more than {MAX_CHUNK_BYTES}")
    count, pos = _head(data, 0, 4, "chunk")
    if count > MAX_CHUNK_PAIRS:
        raise DecodeError(f"chunk: {count} pairs, more than {MAX_CHUNK_PAIRS}")
    pairs: list[tuple[bytes, bytes]] = []
    last_path = b""
    for _ in range(count):
        length, pos = _head(data, pos, 4, "chunk pair")
        if length != 2:
            raise DecodeError(f"chunk pair: {length} items, expected 2")
        key, pos = _byte_string(data, pos, "chunk key", MAX_KEY_BYTES)
        value, pos = _byte_string(data, pos, "chunk value", MAX_CHUNK_BYTES)
        path = key_path(key)
        if path <= last_path:
            raise DecodeError(f"chunk: key {len(pairs)} not in strictly increasing path order")
        last_path = path
        pairs.append((key, value))
    if pos != len(data):
        raise DecodeError(f"chunk: {len(data) - pos} bytes after its pairs")
    return pairs


def _head(data: bytes, pos: int, major: int, what: str) -> tuple[int, int]:
    """The argument of the canonical CBOR head of major type ``major`` at ``pos``, and
    the position after it; DecodeError if there is none there."""
    if pos >= len(data):
        raise DecodeError(f"{what}: the data ends")
    initial = data[pos]
    if initial >> 5 != major:
        raise DecodeError(f"{what}: expected CBOR major type {major}, got {initial >> 5}")
    info = initial & 31
    if info < 24:
        return info, pos + 1
    if info > 27:
        raise DecodeError(f"{what}: not a definite length")
    size = 1 << (info - 24)
    if pos + 1 + size > len(data):
        raise DecodeError(f"{what}: the data ends")
    value = int.from_bytes(data[pos + 1:pos + 1 + size], "big")
    if value < (24 if size == 1 else 1 << (4 * size)):
        raise DecodeError(f"{what}: a length not in its shortest form")
    return value, pos + 1 + size


def _byte_string(data: bytes, pos: int, what: str, max_bytes: int) -> tuple[bytes, int]:
    """The non-empty byte string of at most ``max_bytes`` at ``pos``, and the position
    after it; DecodeError otherwise."""
    length, pos = _head(data, pos, 2, what)
    if not 1 <= length <= max_bytes:
        raise DecodeError(f"{what}: {length} bytes, not 1 to {max_bytes}")
    if pos + length > len(data):
        raise DecodeError(f"{what}: the data ends")
    return data[pos:pos + length], pos + length


def verify_chunk(manifest: Manifest, index: int, pairs: Sequence[tuple[bytes, bytes]]) -> None:
    """Return if ``pairs`` are exactly the keys and values of the prefixes chunk ``index``
    of ``manifest`` covers; raise InvalidProof saying what is wrong otherwise. With a
    manifest whose root is the trusted state root, a chunk that passes is the state's."""
    first, end = manifest.chunk_range(index)
    depth = manifest.depth
    expected = {e.prefix: e for e in manifest.entries if first <= e.prefix < end}
    paths = [key_path(k) for k, _ in pairs]
    if any(b <= a for a, b in itertools.pairwise(paths)):
        raise InvalidProof(f"chunk {index}: keys not in strictly increasing path order")
    value_hashes = [sha256(v).digest() for _, v in pairs]
    seen = 0
    i = 0
    while i < len(paths):
        prefix = prefix_of(paths[i], depth)
        j = i + 1
        while j < len(paths) and prefix_of(paths[j], depth) == prefix:
            j += 1
        if not first <= prefix < end:
            raise InvalidProof(f"chunk {index}: a key of prefix {prefix}, outside its prefixes "
                               f"[{first}, {end})")
        entry = expected.get(prefix)
        if entry is None:
            raise InvalidProof(f"chunk {index}: keys under prefix {prefix}, which the manifest has empty")
        kind, digest = subtree(paths[i:j], value_hashes[i:j], depth)
        if (kind, digest) != (entry.kind, entry.hash):
            raise InvalidProof(f"chunk {index}: the keys under prefix {prefix} hash to {digest.hex()[:16]}…, "
                               f"the manifest has {entry.hash.hex()[:16]}…")
        seen += 1
        i = j
    if seen != len(expected):
        raise InvalidProof(f"chunk {index}: keys of {len(expected) - seen} of its prefixes are missing")
