"""The consensus WAL: what is written is replayed, a torn or garbled tail is cut back at
any byte and reported, and synced writes reach the disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from consensus.wal import Wal, WalError


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


def test_messages_are_replayed_per_height(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path / "wal", start_height=4)
    wal.write(b"a")
    wal.write_sync(b"b")
    wal.end_height(5)
    wal.write(b"c")
    wal.close()
    wal = Wal.open(tmp_path / "wal")
    assert wal.recoveries == []
    assert wal.last_end_height == 5
    assert wal.messages_of(5) == [b"a", b"b"]
    assert wal.messages_of(6) == [b"c"]
    assert wal.messages_of(4) is None  # no marker of height 3
    wal.close()


def test_a_height_with_nothing_written_yet_replays_nothing_without_reading_the_segment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each height's start asks for its messages; the head segment (megabytes of
    proposals, under load) is read only when something follows the last marker."""
    wal = Wal.open(tmp_path / "wal", start_height=4)
    wal.write(b"a" * 100_000)
    wal.end_height(5)
    reads: list[Path] = []
    read_bytes = Path.read_bytes

    def counted(path: Path) -> bytes:
        reads.append(path)
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counted)
    assert wal.messages_of(6) == [] and reads == []
    wal.write(b"b")
    assert wal.messages_of(6) == [b"b"] and len(reads) == 1
    wal.close()


def build(directory: Path, messages: list[bytes]) -> tuple[int, int]:
    """A WAL with ``messages``; returns the offsets where its last record starts and ends."""
    wal = Wal.open(directory, start_height=0)
    for m in messages[:-1]:
        wal.write_sync(m)
    (path,) = segment_files(directory)
    start = path.stat().st_size
    wal.write_sync(messages[-1])
    wal.close()
    return start, path.stat().st_size


MESSAGES = [b"first", b"second" * 3, b"\x00\xff" * 20]


def reopen_and_check(directory: Path, recovered: bool) -> None:
    wal = Wal.open(directory)
    assert wal.messages_of(1) == MESSAGES[:-1]
    assert bool(wal.recoveries) == recovered
    wal.write_sync(b"after")
    wal.close()
    wal = Wal.open(directory)
    assert wal.recoveries == []
    assert wal.messages_of(1) == [*MESSAGES[:-1], b"after"]
    wal.close()


def test_a_torn_tail_is_cut_back_at_every_offset(tmp_path: Path) -> None:
    original = tmp_path / "original"
    start, end = build(original, MESSAGES)
    for cut in range(start, end):
        copy = tmp_path / f"cut-{cut}"
        shutil.copytree(original, copy)
        (path,) = segment_files(copy)
        with open(path, "r+b") as f:
            f.truncate(cut)
        reopen_and_check(copy, recovered=cut > start)
        shutil.rmtree(copy)


def test_a_garbled_tail_is_cut_back_at_every_offset(tmp_path: Path) -> None:
    original = tmp_path / "original"
    start, end = build(original, MESSAGES)
    for at in range(start, end):
        copy = tmp_path / f"flip-{at}"
        shutil.copytree(original, copy)
        (path,) = segment_files(copy)
        data = bytearray(path.read_bytes())
        data[at] ^= 0x5A
        path.write_bytes(bytes(data))
        reopen_and_check(copy, recovered=True)
        wal = Wal.open(copy)
        assert path.stat().st_size > start  # "after" was written where the bad record was
        wal.close()
        shutil.rmtree(copy)


def test_the_recovery_report_says_what_was_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "wal"
    start, end = build(directory, MESSAGES)
    (path,) = segment_files(directory)
    with open(path, "r+b") as f:
        f.truncate(end - 3)
    wal = Wal.open(directory)
    (recovery,) = wal.recoveries
    assert (recovery.path, recovery.offset, recovery.dropped) == (path, start, end - 3 - start)
    assert "torn record" in recovery.reason
    assert any("wal tail recovered" in r.getMessage() for r in caplog.records)
    wal.close()


def test_corruption_in_a_middle_segment_drops_what_follows(tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    wal = Wal.open(directory, max_segment_bytes=64)
    for i in range(12):
        wal.write_sync(b"message %d" % i)
    wal.close()
    files = segment_files(directory)
    assert len(files) >= 3
    data = bytearray(files[1].read_bytes())
    data[-1] ^= 1
    files[1].write_bytes(bytes(data))
    wal = Wal.open(directory, max_segment_bytes=64)
    (recovery,) = wal.recoveries
    assert recovery.path == files[1]
    assert segment_files(directory) == files[:2]
    kept = wal.messages_of(1)
    assert kept is not None and kept == [b"message %d" % i for i in range(len(kept))]
    assert len(kept) < 12
    wal.close()


def test_an_oversize_record_is_refused_and_the_wal_goes_on(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path / "wal", max_record_bytes=100)
    with pytest.raises(WalError, match="above the maximum 100"):
        wal.write(b"x" * 200)
    wal.write_sync(b"fine")
    wal.close()
    wal = Wal.open(tmp_path / "wal", max_record_bytes=100)
    assert wal.messages_of(1) == [b"fine"]
    wal.close()


def test_synced_writes_fsync_and_buffered_ones_do_not(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    wal = Wal.open(tmp_path / "wal")
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    wal.write(b"received")
    assert calls == []
    wal.write_sync(b"own vote")
    assert len(calls) == 1
    wal.end_height(1)
    assert len(calls) == 2
    wal.close()


def test_pruning_removes_whole_segments_before_a_height(tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    wal = Wal.open(directory, max_segment_bytes=64)
    for height in range(1, 6):
        for i in range(3):
            wal.write(b"h%d m%d" % (height, i))
        wal.end_height(height)
    before = len(segment_files(directory))
    removed = wal.prune(4)
    assert removed > 0 and len(segment_files(directory)) == before - removed
    assert wal.messages_of(5) == [b"h5 m0", b"h5 m1", b"h5 m2"]
    assert wal.prune(99) == 0
    wal.close()
    wal = Wal.open(directory, max_segment_bytes=64)
    assert wal.recoveries == []
    assert wal.messages_of(5) == [b"h5 m0", b"h5 m1", b"h5 m2"]
    wal.close()
