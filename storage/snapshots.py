"""Snapshots of the state on disk: made from the state at a height, kept in a directory,
read back to serve peers (§11.4; the format is :mod:`chain.snapshot`'s).

Each snapshot is a directory ``<height>`` holding ``manifest`` and ``chunk-<index>``
files. It is written whole under ``<height>.tmp``, each file synced, then renamed into
place, so a snapshot that is listed is complete; a ``.tmp`` left by a crash is removed
when the directory is opened. Only the most recent ``keep`` snapshots are kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable
from hashlib import sha256
from pathlib import Path

from chain.errors import DecodeError, StorageError
from chain.snapshot import (
    CHUNK_TARGET_BYTES,
    MAX_CHUNK_BYTES,
    MAX_CHUNK_PAIRS,
    Descriptor,
    Manifest,
    Subtree,
    encode_chunk,
    make_manifest,
    manifest_root,
    prefix_of,
    split_depth,
    subtree,
)
from chain.statetree import key_path

log = logging.getLogger(__name__)

_MANIFEST = "manifest"
_TMP = ".tmp"


def build_snapshot(height: int, root: bytes, entries: Iterable[tuple[bytes, bytes]]
                   ) -> tuple[Manifest, list[bytes]]:
    """The manifest and the encoded chunks of the state ``entries`` (every key and
    value, in any order) after block ``height``, whose root is ``root``. Holds the whole
    state in memory while it runs. StorageError if the entries do not hash to ``root``
    (the state changed under the reader) or a prefix is larger than a chunk may be."""
    items = sorted((key_path(k), k, v) for k, v in entries)
    total = sum(len(k) + len(v) for _, k, v in items)
    depth = split_depth(total)
    subtrees: list[Subtree] = []
    groups: list[tuple[int, int, int, int]] = []  # prefix, first item, end item, bytes
    i = 0
    while i < len(items):
        prefix = prefix_of(items[i][0], depth)
        j = i
        size = 0
        while j < len(items) and prefix_of(items[j][0], depth) == prefix:
            size += len(items[j][1]) + len(items[j][2]) + 8
            j += 1
        kind, digest = subtree([p for p, _, _ in items[i:j]], [sha256(v).digest() for _, _, v in items[i:j]],
                               depth)
        subtrees.append(Subtree(prefix, kind, digest))
        groups.append((prefix, i, j, size))
        i = j
    starts = [0]
    chunks: list[bytes] = []
    counts: list[int] = []
    pending: list[tuple[bytes, bytes]] = []
    pending_bytes = 0
    for prefix, first, end, size in groups:
        if pending and pending_bytes + size > CHUNK_TARGET_BYTES:
            chunks.append(encode_chunk(pending))
            counts.append(len(pending))
            starts.append(prefix)
            pending, pending_bytes = [], 0
        pending.extend((k, v) for _, k, v in items[first:end])
        pending_bytes += size
    chunks.append(encode_chunk(pending))
    counts.append(len(pending))
    for index, (chunk, count) in enumerate(zip(chunks, counts, strict=True)):
        if len(chunk) > MAX_CHUNK_BYTES or count > MAX_CHUNK_PAIRS:
            raise StorageError(f"snapshot of height {height}: chunk {index} would be {len(chunk)} bytes "
                               f"of {count} pairs, more than {MAX_CHUNK_BYTES} bytes or "
                               f"{MAX_CHUNK_PAIRS} pairs")
    manifest = make_manifest(height, depth, subtrees, starts)
    if manifest_root(manifest) != root:
        raise StorageError(f"snapshot of height {height}: the state read hashes to "
                           f"{manifest_root(manifest).hex()}, not its root {root.hex()}")
    return manifest, chunks


class SnapshotStore:
    """The snapshots in ``directory`` (created when missing), the ``keep`` most recent.

    :meth:`write` is called from one worker thread at a time; the reads from any thread.
    """

    def __init__(self, directory: Path, keep: int) -> None:
        if keep < 1:
            raise ValueError("keep at least one snapshot")
        self.directory = directory
        self.keep = keep
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob(f"*{_TMP}"):
            shutil.rmtree(leftover, ignore_errors=True)
        self._listed: dict[int, Descriptor] = {}
        for path in directory.iterdir():
            if path.is_dir() and path.name.isdigit():
                try:
                    manifest = Manifest.decode((path / _MANIFEST).read_bytes())
                except (OSError, DecodeError) as exc:
                    log.warning("unreadable snapshot removed", extra={"path": str(path), "error": str(exc)})
                    shutil.rmtree(path, ignore_errors=True)
                    continue
                self._listed[manifest.height] = manifest.descriptor()

    def descriptors(self) -> list[Descriptor]:
        """The snapshots held, the most recent first."""
        with self._lock:
            return [self._listed[h] for h in sorted(self._listed, reverse=True)]

    def write(self, manifest: Manifest, chunks: list[bytes]) -> Descriptor:
        """Store a snapshot made by :func:`build_snapshot` and drop those beyond ``keep``."""
        started = time.monotonic()
        height = manifest.height
        final = self.directory / str(height)
        tmp = self.directory / f"{height}{_TMP}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for index, chunk in enumerate(chunks):
            _write_synced(tmp / f"chunk-{index}", chunk)
        _write_synced(tmp / _MANIFEST, manifest.encode())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _sync_dir(self.directory)
        descriptor = manifest.descriptor()
        with self._lock:
            self._listed[height] = descriptor
            dropped = sorted(self._listed)[:-self.keep]
            for old in dropped:
                del self._listed[old]
        for old in dropped:
            shutil.rmtree(self.directory / str(old), ignore_errors=True)
        log.info("snapshot taken", extra={"height": height, "chunks": len(chunks), "depth": manifest.depth,
                                          "bytes": sum(map(len, chunks)),
                                          "seconds": round(time.monotonic() - started, 3)})
        return descriptor

    def manifest(self, height: int) -> bytes | None:
        """The encoded manifest of the snapshot of ``height``, or None."""
        return self._read(height, _MANIFEST)

    def chunk(self, height: int, index: int) -> bytes | None:
        """Chunk ``index`` of the snapshot of ``height``, or None."""
        descriptor = self._listed.get(height)
        if descriptor is None or not 0 <= index < descriptor.chunks:
            return None
        return self._read(height, f"chunk-{index}")

    def _read(self, height: int, name: str) -> bytes | None:
        if height not in self._listed:
            return None
        try:
            return (self.directory / str(height) / name).read_bytes()
        except FileNotFoundError:
            return None  # dropped meanwhile


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
