"""Watching a devnet of node processes from outside, as its users would, while a hostile
peer attacks it (tests/e2e/test_hostile_peers.py): each node's height, how long its
RPC ``status`` takes, its resident memory, sampled by a thread per node; and what the
nodes' JSON logs say about peers they penalized and banned, and about failures."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNREACHABLE = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError, KeyError)
NODE_LOGGERS = ("node", "p2p", "consensus", "chain", "storage")
"""The node's own loggers (py-libp2p's are ``libp2p.…``; Hypercorn's ``hypercorn.…``)."""


@dataclass(frozen=True, slots=True)
class Sample:
    node: int
    at: float
    """``time.monotonic()`` when the request was sent."""
    height: int | None
    """The node's latest height, or None if ``status`` failed or took too long."""
    latency: float
    """Seconds until ``status`` answered (or failed)."""
    rss: int | None
    """The node process's resident memory in bytes (None once it is gone)."""
    error: str | None = None


def status_height(port: int, timeout: float) -> int:
    """The latest height in the JSON-RPC ``status`` of the node at ``port``."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "status", "params": {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    return int(answer["result"]["sync_info"]["latest_block_height"])


def rss_bytes(pid: int) -> int | None:
    """``VmRSS`` of process ``pid`` (/proc/<pid>/status), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Monitor:
    """One thread per node sends ``status`` every ``interval`` seconds (each request
    given up after ``timeout``) and reads the process's RSS. Use as a context manager."""

    def __init__(self, ports: Sequence[int], pids: Sequence[int], *, interval: float = 0.5,
                 timeout: float = 5.0) -> None:
        self.ports = list(ports)
        self.pids = list(pids)
        self.interval = interval
        self.timeout = timeout
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, args=(i,), daemon=True)
                         for i in range(len(self.ports))]

    def __enter__(self) -> Monitor:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 1)

    def _watch(self, i: int) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            at = time.monotonic()
            height: int | None = None
            error = None
            try:
                height = status_height(self.ports[i], self.timeout)
            except UNREACHABLE as exc:
                error = f"{type(exc).__name__}: {exc}"
            latency = time.monotonic() - at
            sample = Sample(i, at, height, latency, rss_bytes(self.pids[i]), error)
            with self._lock:
                self.samples.append(sample)
            next_at = max(next_at + self.interval, time.monotonic())
            self._stop.wait(next_at - time.monotonic())

    def between(self, start: float, end: float, node: int | None = None) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if start <= s.at <= end and (node is None or s.node == node)]

    def heights(self, node: int, start: float, end: float) -> list[tuple[float, int]]:
        return [(s.at, s.height) for s in self.between(start, end, node) if s.height is not None]

    def advance(self, node: int, start: float, end: float) -> int:
        """How many heights ``node`` committed between ``start`` and ``end``, as seen by
        its first and last answer in that time."""
        seen = self.heights(node, start, end)
        return seen[-1][1] - seen[0][1] if seen else 0

    def longest_stall(self, node: int, start: float, end: float) -> float:
        """The longest time, between ``start`` and ``end``, that ``node`` showed one
        height (a failed answer counts as no progress)."""
        samples = self.between(start, end, node)
        longest = 0.0
        since, last = start, None
        for s in samples:
            if s.height is not None and (last is None or s.height > last):
                if last is not None:
                    longest = max(longest, s.at - since)
                since, last = s.at, s.height
        return max(longest, (samples[-1].at - since) if samples else end - start)


def read_log(path: Path, *, start: int = 0) -> list[dict[str, Any]]:
    """The records of a node's JSON log from byte ``start``; a line that is no JSON (a
    traceback a library printed) becomes ``{"level": "RAW", "message": line}``."""
    records = []
    with path.open("rb") as f:
        f.seek(start)
        for raw in f:
            line = raw.decode(errors="replace").rstrip("\n")
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = {"level": "RAW", "message": line}
            records.append(record if isinstance(record, dict) else {"level": "RAW", "message": line})
    return records


def peers_named(records: Sequence[dict[str, Any]], message: str) -> Counter[str]:
    """How many records of ``message`` (e.g. "peer banned") name each peer."""
    return Counter(str(r.get("peer")) for r in records if r.get("message") == message)


def failures(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records that tell of a failure in the node rather than in its peers: errors and
    worse from the node's own loggers, any record with a traceback, and raw lines (what
    bypassed the node's logging: a traceback printed on the way out, say)."""
    out = []
    for r in records:
        name = str(r.get("name", ""))
        own = name.split(".")[0] in NODE_LOGGERS
        severe = r.get("level") in ("ERROR", "CRITICAL")
        if (own and severe) or "exc_info" in r or r.get("level") == "RAW":
            out.append(r)
    return out
