"""Running nodes for end-to-end tests: free ports, JSON-RPC calls, waiting for a
condition, and processes that are killed on the way out."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from node.devnet import node_command


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1, below the kernel's
    ephemeral range: a port in it may be taken at any moment by a connection's local
    end (a node dialing a peer), and a node started there later cannot listen."""
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32_768
    first = 20_000 + (os.getpid() % 300) * 40
    bases: list[int] = [*range(first, ephemeral - 40, 40), *range(20_000, first, 40)]
    for base in bases:
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


def rpc(port: int, method: str, *, token: str | None = None, **params: Any) -> Any:
    """The result of ``method`` on the node at ``port`` (with the admin ``token``, if
    given); AssertionError for a JSON-RPC error."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", body, headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise AssertionError(f"{method}: {answer['error']}")
    return answer["result"]


def height(port: int) -> int:
    try:
        return int(rpc(port, "status")["sync_info"]["latest_block_height"])
    except (urllib.error.URLError, http.client.HTTPException, OSError):  # down, or died answering
        return -1


def signed_since(port: int, validator: str, since: int) -> bool:
    """Whether the latest commit ``port`` has, of a height above ``since``, carries a
    signature of ``validator`` (its address as status shows it) for the block."""
    h = height(port)
    sigs = rpc(port, "commit", height=str(h))["signed_header"]["commit"]["signatures"]
    return h > since and any(s["validator_address"] == validator and s["block_id_flag"] == 2 for s in sigs)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, logs: Sequence[Path] = ()) -> None:
    """Poll ``condition`` until it holds; AssertionError after ``timeout`` seconds, with
    the end of each of ``logs`` (the nodes' logs) to tell why."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {log} ---\n{tail(log)}" for log in logs)
            raise AssertionError(f"not within {timeout} s: {what}{tails}")
        time.sleep(0.2)


def wait_synced(port: int, reference: int, timeout: float, what: str, logs: Sequence[Path] = (), *,
                within: int = 2) -> None:
    """Wait until the node on RPC ``port`` holds every block the node on ``reference``
    held when the wait began, then until it is seen at most ``within`` blocks below it:
    it synced, and it keeps up with the chain (on a loaded machine a follower can run a
    second or so late: two blocks of the tests' 0.5 s chains, less than one at 6 s)."""
    deadline = time.monotonic() + timeout
    start = height(reference)
    wait_until(lambda: height(port) >= start > 0, timeout, f"{what}: up to height {start}", logs)
    wait_until(lambda: height(port) >= height(reference) - within, max(deadline - time.monotonic(), 1),
               f"{what}: within {within} blocks of the tip", logs)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(unreadable: {exc})"


def node_cmd(*args: str) -> list[str]:
    return node_command(*args)


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes stopped on the way out: SIGTERM (a devnet command stops its nodes), and
    SIGKILL for any still running 20 s later."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for p in started:
            if p.poll() is None:
                p.terminate()
        for p in started:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
