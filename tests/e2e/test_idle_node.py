"""An idle node as its operator sees it: a one-validator chain on loopback started with
``bizra-node start`` and left alone for a minute logs at info only the node's own
records, one line each (no library's chatter, no multi-line record); and ``bizra-node
status`` tells a person how it is, or a script with ``--json``."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nodekit import free_ports, height, node_cmd, processes, tail, wait_until

pytestmark = pytest.mark.slow

IDLE_S = 60.0
OWN_LOGGERS = ("node", "consensus", "chain", "storage", "p2p")
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) +(?P<logger>[\w.]+): \S")
"""The start of a text record (``node.logs.TEXT_FORMAT``)."""


@dataclass
class IdleNode:
    log: Path
    rpc_port: int


@pytest.fixture(scope="module")
def idle_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdleNode]:
    """A node that has run for ``IDLE_S`` at info with text logs, still running; its
    stdout and stderr both in ``log``."""
    home = tmp_path_factory.mktemp("idle") / "home"
    subprocess.run(node_cmd("init", "--home", str(home)), check=True, capture_output=True, timeout=60)
    p2p = free_ports(2)
    log = home / "node.log"
    with processes() as started, log.open("ab") as out:
        started.append(subprocess.Popen(node_cmd("start", "--home", str(home), "--p2p-port", str(p2p),
                                                 "--rpc-port", str(p2p + 1), "--log-level", "info",
                                                 "--log-format", "text"),
                                        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        began = time.monotonic()
        wait_until(lambda: height(p2p + 1) >= 1, 60, "the first block", [log])
        time.sleep(max(0.0, IDLE_S - (time.monotonic() - began)))
        assert started[0].poll() is None, tail(log)
        yield IdleNode(log, p2p + 1)


def test_an_idle_node_logs_only_its_own_records_one_line_each(idle_node: IdleNode) -> None:
    text = idle_node.log.read_text()
    lines = text[:text.rfind("\n") + 1].splitlines()  # whole lines: the node goes on logging
    strays = [line for line in lines
              if not (m := RECORD.match(line)) or m["logger"].split(".")[0] not in OWN_LOGGERS]
    assert not strays, "lines that are not records of the node's own loggers:\n" + "\n".join(strays)
    levels = [m["level"] for line in lines if (m := RECORD.match(line))]
    assert set(levels) == {"INFO"}, text
    assert sum(" committed " in line for line in lines) >= 5, text  # it made blocks all along


def test_status_tells_a_person_how_the_node_is_and_a_script_its_status(idle_node: IdleNode) -> None:
    url = f"http://127.0.0.1:{idle_node.rpc_port}"
    shown = subprocess.run(node_cmd("status", "--node", url), check=True, capture_output=True, text=True,
                           timeout=60).stdout.splitlines()
    rows = dict(line.split(None, 1) for line in shown)
    assert list(rows) == ["chain", "node", "height", "sync", "peers", "validator", "mempool"]
    assert rows["chain"] == "bizra-local-1" and rows["peers"] == "0" and rows["mempool"] == "0 txs, 0 bytes"
    assert re.fullmatch(r"\d+, block of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)", rows["height"])
    assert rows["sync"] == "in step with its peers"
    assert rows["validator"].startswith("yes, voting power ")
    status = json.loads(subprocess.run(node_cmd("status", "--json", "--node", url), check=True,
                                       capture_output=True, text=True, timeout=60).stdout)
    assert int(status["sync_info"]["latest_block_height"]) >= 5
    assert status["validator_info"]["voting_power"] == rows["validator"].split()[3]
