"""JSON-RPC against a running node (a real process): WebSocket subscriptions to new
blocks and txs; bad input, where every kind of mistake gets an answer that names it
(a JSON-RPC error, a check_tx code with a log, or HTTP 413/429) and the node keeps
making blocks; and the bounds on WebSocket connections, web pages and batches, refused
by the real server as the ASGI application asks."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from chain.crypto import PrivateKey, address_of, private_key_from_pem
from chain.transition import sign_tx
from chain.types import Transfer, sha256

from nodekit import node_cmd

pytestmark = pytest.mark.slow

RATE = 600  # requests a minute, with a burst of as many
FEE = 2_000
"""More than a transfer is due at the default params (§3.4)."""
PIDS: dict[Path, int] = {}
"""The node process of each home the fixture started."""


def post(port: int, body: bytes, token: str | None = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", body, headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def call(port: int, method: str, params: Any = None) -> tuple[int, Any]:
    return post(port, json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode())


def request(method: str, params: Any = None) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()


def height(port: int) -> int:
    return int(call(port, "status")[1]["result"]["sync_info"]["latest_block_height"])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    home = tmp_path_factory.mktemp("bad-input") / "home"
    port = 31_700 + os.getpid() % 1_000
    env = {**os.environ, "BIZRA_HOME": str(home), "BIZRA_RPC_PORT": str(port),
           "BIZRA_P2P_PORT": str(port + 1), "BIZRA_RPC_REQUESTS_PER_MINUTE": str(RATE),
           "BIZRA_RPC_MAX_BODY_BYTES": "100000"}
    subprocess.run(node_cmd("init", "--chain-id", "bizra-bad-1"), env=env, check=True,
                   capture_output=True)
    genesis = json.loads((home / "genesis.json").read_text())
    genesis["params"]["block_time_ms"] = 500
    (home / "genesis.json").write_text(json.dumps(genesis))
    with (home / "node.log").open("wb") as log:
        process = subprocess.Popen(node_cmd("start"), env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    PIDS[home] = process.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if height(port) >= 1:
                    break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, (home / "node.log").read_text()
            time.sleep(0.3)
        yield port, home
    finally:
        process.terminate()
        process.wait(timeout=20)


def operator(home: Path) -> PrivateKey:
    return private_key_from_pem((home / "operator_key.pem").read_bytes())


def test_protocol_mistakes_get_json_rpc_errors(node: tuple[int, Path]) -> None:
    port, _ = node
    cases: list[tuple[bytes, int, str]] = [
        (b"{not json", -32700, "not JSON"),
        (b"[]", -32600, "an empty batch"),
        (b"42", -32600, "a request must be an object"),
        (json.dumps({"id": 1, "method": "status"}).encode(), -32600, '"jsonrpc": "2.0"'),
        (request("no_such"), -32601, "no method 'no_such'"),
        (request("block", {"height": "x"}),
         -32602, "height: expected a non-negative integer"),
        (request("block", {"hieght": 1}),
         -32602, "unknown parameter 'hieght'"),
        (request("block", {"height": "99999999"}),
         -32602, "must be less than or equal to the current blockchain height"),
        (request("tx", {}),
         -32602, "missing parameter 'hash'"),
        (request("tx", {"hash": "zz"}),
         -32602, "hash: expected 64 hex digits"),
        (request("bizra_account", {"address": "bizra1nope"}), -32602, "address:"),
        (request("broadcast_tx_sync", {"tx": "!!"}), -32602, "tx: not valid base64"),
        (json.dumps([{"jsonrpc": "2.0", "id": i, "method": "health"} for i in range(101)]).encode(),
         -32600, "the limit is 100"),
    ]
    for body, code, words in cases:
        status, answer = post(port, body)
        assert status == 200, body
        assert answer["error"]["code"] == code, (body, answer)
        assert words in answer["error"]["data"], (body, answer)
        assert "Traceback" not in json.dumps(answer)

    status, answer = post(port, request("status", "x" * 100_000))
    assert status == 413 and "above 100000 bytes" in answer["error"]["data"]


def test_every_kind_of_invalid_tx_is_refused_with_its_reason(node: tuple[int, Path]) -> None:
    port, home = node
    key = operator(home)
    chain_id = "bizra-bad-1"
    me = address_of(key.public_key)
    nonce = int(call(port, "bizra_account", {"address": me.hex()})[1]["result"]["nonce"])
    to = address_of(PrivateKey.generate().public_key)
    good = sign_tx(chain_id, key, nonce, Transfer(to, 1), FEE)
    committed = call(port, "broadcast_tx_commit", {"tx": base64.b64encode(good).decode()})[1]["result"]
    assert committed["tx_result"]["code"] == 0

    stranger = PrivateKey.generate()
    forged = bytearray(sign_tx(chain_id, key, nonce + 1, Transfer(to, 1), FEE))
    forged[-1] ^= 1

    def pay(signer: PrivateKey, n: int, fee: int = FEE, chain: str = chain_id) -> bytes:
        return sign_tx(chain, signer, n, Transfer(to, 1), fee)

    cases = {
        "replayed": (good, "nonce"),
        "not a tx": (b"\x01\x02\x03", "tx"),
        "bad signature": (bytes(forged), "invalid signature"),
        "other chain": (pay(key, nonce + 1, chain="bizra-other-1"), "invalid signature"),
        "nonce from the future": (pay(key, nonce + 5), f"nonce {nonce + 5} is not the sender's next one"),
        "fee below the minimum": (pay(key, nonce + 1, fee=999), "is below"),
        "no funds for the fee": (pay(stranger, 0), "cannot pay the fee"),
        "too large": (pay(key, nonce + 1) + bytes(70_000), "max_tx_bytes"),
    }
    for name, (raw, words) in cases.items():
        encoded = {"tx": base64.b64encode(raw).decode()}
        result = call(port, "broadcast_tx_sync", encoded)[1]["result"]
        assert result["code"] == 100 and result["codespace"] == "mempool", (name, result)
        assert words in result["log"], (name, result)
        assert call(port, "check_tx", encoded)[1]["result"]["code"] == 100, name


def test_many_txs_in_one_call_get_an_answer_each_in_order_and_are_committed(node: tuple[int, Path]) -> None:
    port, home = node
    key = operator(home)
    me = address_of(key.public_key).hex()
    nonce = int(call(port, "bizra_account", {"address": me})[1]["result"]["nonce"])
    to = address_of(PrivateKey.generate().public_key)
    good = [sign_tx("bizra-bad-1", key, nonce + i, Transfer(to, 1), FEE) for i in range(5)]
    txs = [*good[:3], b"\x01\x02\x03", *good[3:]]
    status, answer = call(port, "bizra_broadcast_txs", {"txs": [base64.b64encode(t).decode() for t in txs]})
    answers = answer["result"]["txs"]
    assert status == 200 and [a["code"] for a in answers] == [0, 0, 0, 100, 0, 0]
    assert [a["hash"] for a in answers] == [sha256(t).hex().upper() for t in txs]
    assert answers[3]["log"] and not answers[0]["log"]
    deadline = time.monotonic() + 30
    while int(call(port, "bizra_account", {"address": me})[1]["result"]["nonce"]) < nonce + 5:
        assert time.monotonic() < deadline, "the txs were not committed within 30 s"
        time.sleep(0.2)
    for params, words in (({"txs": []}, "non-empty array"), ({"txs": "AA=="}, "non-empty array"),
                          ({"txs": ["!!"]}, "not valid base64")):
        error = call(port, "bizra_broadcast_txs", params)[1]["error"]
        assert error["code"] == -32602 and words in error["data"], (params, error)


def test_a_busy_node_refuses_clients_txs_until_it_has_caught_up(node: tuple[int, Path]) -> None:
    """A node whose event loop runs late (here: stopped for two seconds, as a node fed more
    than it can handle) refuses clients' txs with code 101 and says so, then takes them
    again once it has caught up."""
    port, home = node
    key = operator(home)
    account = call(port, "bizra_account", {"address": address_of(key.public_key).hex()})[1]["result"]
    nonce = int(account["nonce"])
    tx = {"tx": base64.b64encode(sign_tx("bizra-bad-1", key, nonce, Transfer(bytes(20), 1), FEE)).decode()}
    pid = PIDS[home]
    os.kill(pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(call, port, "broadcast_tx_sync", tx)  # waits in the socket meanwhile
            time.sleep(2.0)
            os.kill(pid, signal.SIGCONT)
            refused = sent.result(timeout=30)[1]["result"]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert refused["code"] == 101 and "busy" in refused["log"] and "retry later" in refused["log"], refused

    deadline = time.monotonic() + 10
    while (result := call(port, "broadcast_tx_sync", tx)[1]["result"])["code"] == 101:
        assert time.monotonic() < deadline, result
        time.sleep(0.2)
    assert result["code"] == 0, result
    deadline = time.monotonic() + 20
    while "result" not in call(port, "tx", {"hash": result["hash"]})[1]:
        assert time.monotonic() < deadline, "the tx accepted after the busy spell was not committed"
        time.sleep(0.2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        shed = [line for line in response.read().decode().splitlines()
                if line.startswith("bizra_mempool_shed_txs_total ")]
    assert shed and float(shed[0].split()[1]) >= 1, shed


def test_too_many_requests_get_429_and_the_node_goes_on(node: tuple[int, Path]) -> None:
    port, _ = node
    before = height(port)
    statuses = [call(port, "health")[0] for _ in range(RATE + 50)]
    assert 429 in statuses
    refused = call(port, "health")
    assert refused[0] == 429 and "requests a minute" in refused[1]["error"]["data"]
    time.sleep(3)  # the bucket refills (10 a second)
    assert height(port) > before  # and blocks kept coming all along


async def test_websocket_subscribers_get_new_blocks_and_their_txs(node: tuple[int, Path]) -> None:
    port, home = node
    key = operator(home)
    async with open_websocket_url(f"ws://127.0.0.1:{port}/websocket") as ws:
        async def ask(method: str, **params: Any) -> Any:
            """The answer to ``method`` (events of earlier subscriptions are skipped)."""
            request = {"jsonrpc": "2.0", "id": f"ask {method}", "method": method, "params": params}
            await ws.send_message(json.dumps(request))
            while True:
                answer = json.loads(await ws.get_message())
                if answer["id"] == request["id"] and "query" not in answer.get("result", {}):
                    return answer

        assert (await ask("subscribe", query="tm.event='NewBlock'"))["result"] == {}
        event = json.loads(await ws.get_message())
        assert event["id"] == "ask subscribe"
        assert event["result"]["data"]["type"] == "tendermint/event/NewBlock"
        block_height = int(event["result"]["data"]["value"]["block"]["header"]["height"])
        assert block_height >= 1
        after = event["result"]["data"]["value"]["result_finalize_block"]["app_hash"]
        assert (await ask("unsubscribe", query="tm.event='NewBlock'"))["result"] == {}
        with trio.fail_after(20):  # the state's root after a block is in the next one's header
            while height(port) <= block_height:
                await trio.sleep(0.2)
        following = call(port, "block", {"height": str(block_height + 1)})[1]["result"]["block"]["header"]
        assert base64.b64decode(after).hex().upper() == following["app_hash"] != ""
        results = call(port, "block_results", {"height": str(block_height)})[1]["result"]
        assert results["app_hash"] == after

        bad = await ask("subscribe", query="tm.event='Gossip'")
        assert bad["error"]["code"] == -32602 and "tm.event='NewBlock'" in bad["error"]["data"]
        status = await ask("status")
        assert int(status["result"]["sync_info"]["latest_block_height"]) >= block_height

        me = address_of(key.public_key)
        nonce = int((await ask("bizra_account", address=me.hex()))["result"]["nonce"])
        raw = sign_tx("bizra-bad-1", key, nonce, Transfer(address_of(bytes(32)), 1), FEE)
        tx_hash = sha256(raw).hex().upper()
        await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": "txs", "method": "subscribe",
                                          "params": {"query": f"tm.event='Tx' AND tx.hash='{tx_hash}'"}}))
        assert json.loads(await ws.get_message())["result"] == {}
        sent = call(port, "broadcast_tx_sync", {"tx": base64.b64encode(raw).decode()})[1]["result"]
        assert sent["code"] == 0, sent
        with trio.fail_after(20):
            while True:
                message = json.loads(await ws.get_message())
                if message.get("id") == "txs":
                    break
        value = message["result"]["data"]["value"]["TxResult"]
        assert value["tx"] == base64.b64encode(raw).decode() and value["result"]["code"] == 0
        assert message["result"]["events"]["tx.hash"] == [tx_hash]


def test_genesis_and_consensus_params_come_in_cometbfts_shapes(node: tuple[int, Path]) -> None:
    port, home = node
    genesis = call(port, "genesis")[1]["result"]["genesis"]
    file = json.loads((home / "genesis.json").read_text())
    assert genesis["chain_id"] == genesis["app_state"]["chain_id"] == file["chain_id"] == "bizra-bad-1"
    assert genesis["initial_height"] == "1" and genesis["app_state"]["accounts"] == file["accounts"]
    assert genesis["consensus_params"]["block"] == {"max_bytes": str(file["params"]["max_block_bytes"]),
                                                    "max_gas": "-1"}
    assert genesis["consensus_params"]["validator"] == {"pub_key_types": ["ed25519"]}
    first = call(port, "block", {"height": "1"})[1]["result"]["block"]["header"]
    assert genesis["app_hash"] == first["app_hash"] != ""
    validators = call(port, "validators", {"height": "1"})[1]["result"]["validators"]
    assert [(v["address"], v["pub_key"], v["power"]) for v in genesis["validators"]] == \
        [(v["address"], v["pub_key"], v["voting_power"]) for v in validators]
    assert [v["name"] for v in genesis["validators"]] == [v["moniker"] for v in file["validators"]]
    params = call(port, "consensus_params")[1]["result"]
    assert params["consensus_params"] == genesis["consensus_params"] and int(params["block_height"]) >= 1


def test_admin_methods_need_the_token_from_the_home(node: tuple[int, Path]) -> None:
    port, home = node
    token = (home / "rpc_token").read_text().strip()
    peer = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
    for given in (None, "wrong"):
        _, answer = post(port, request("dial_peers", {"peers": [peer]}), given)
        assert answer["error"]["code"] == -32002 and "rpc_token" in answer["error"]["data"]
    _, answer = post(port, request("dial_peers", {"peers": [peer]}), token)
    assert answer["result"]["log"].startswith("Dialing peers")
    _, answer = post(port, request("dial_peers", {"peers": ["/ip4/1.2.3.4/tcp/1"]}), token)
    assert "must end in /p2p/<peer id>" in answer["error"]["data"]
    _, answer = post(port, request("bizra_ban_peer", {"peer": peer.rsplit("/", 1)[1]}), token)
    assert answer["result"] == {}
    _, answer = post(port, request("bizra_block_peers", {"peers": [peer.rsplit("/", 1)[1]]}))
    assert answer["error"]["code"] == -32002
    _, answer = post(port, request("bizra_block_peers", {"peers": "everyone"}), token)
    assert "expected a list of peer ids" in answer["error"]["data"]
    for blocked in ([peer.rsplit("/", 1)[1]], []):
        _, answer = post(port, request("bizra_block_peers", {"peers": blocked}), token)
        assert answer["result"] == {"blocked": blocked}


def test_consensus_state_shows_the_height_round_step_and_votes(node: tuple[int, Path]) -> None:
    """A single validator: at the height after its last block, its own votes only."""
    port, _ = node
    status, answer = call(port, "consensus_state")
    assert status == 200 and answer["result"]["syncing"] is False
    state = answer["result"]["round_state"]
    height_, round_, step = state["height/round/step"].split("/")
    assert int(height_) >= height(port) and int(round_) >= -1
    assert (step, state["step"]) in (("1", "new_height"), ("3", "propose"), ("4", "prevote"),
                                     ("6", "precommit"))
    # Every round from 0 to the current one, as CometBFT lists them, voted in or not.
    assert [votes["round"] for votes in state["height_vote_set"]][:1] == [0]
    for votes in state["height_vote_set"]:
        assert set(votes["prevotes"] + votes["precommits"]) <= {"x", "n", "_"}
        assert len(votes["prevotes"]) == len(votes["precommits"]) == 1


def test_probes_and_metrics_answer_as_operators_expect(node: tuple[int, Path]) -> None:
    port, _ = node
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=10) as response:
        assert json.loads(response.read()) == {"ready": True}  # one validator: no peers needed
    call(port, "status")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#") and "{" not in line}
    assert values["bizra_consensus_height"] >= 1 and values["bizra_consensus_validator"] == 1
    for name in ("bizra_consensus_block_interval_seconds", "bizra_consensus_txs_total", "bizra_mempool_size",
                 "bizra_mempool_size_bytes", "bizra_p2p_peers", "bizra_blocksync_syncing",
                 "bizra_rpc_events_dropped_total", "bizra_consensus_bodies_not_gossiped_total",
                 "bizra_node_event_loop_lag_worst_seconds"):
        assert name in values, name
    assert 'bizra_rpc_request_duration_seconds_count{method="status"}' in text
    # the full collection before the start's objects are frozen was timed
    assert values["bizra_node_gc_longest_pause_seconds"] > 0
    full_passes = 'bizra_node_gc_pause_seconds_total{generation="2"}'
    full = [line for line in text.splitlines() if line.startswith(full_passes)]
    assert len(full) == 1 and float(full[0].split(" ")[1]) > 0


async def test_websocket_connections_past_the_cap_and_other_sites_pages_are_refused(
        node: tuple[int, Path]) -> None:
    """The 11th WebSocket connection of a client gets HTTP 429, a web page of another
    site 403, each with a JSON-RPC error saying why; the node serves on."""
    port, _ = node
    url = f"ws://127.0.0.1:{port}/websocket"
    await trio.sleep(1.5)  # 15 tokens at least, whatever the tests before spent: 13 are used
    async with AsyncExitStack() as stack:
        for _ in range(10):
            await stack.enter_async_context(open_websocket_url(url))
        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(url):
                pass
    assert refused.value.status_code == 429, refused.value
    error = json.loads(refused.value.body or b"{}")["error"]
    assert error["code"] == -32003 and "10 WebSocket connections open already" in error["data"]

    with pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(url, extra_headers=[(b"origin", b"https://elsewhere.example")]):
            pass
    assert refused.value.status_code == 403
    assert "rpc.cors_allowed_origins" in json.loads(refused.value.body or b"{}")["error"]["data"]

    async with open_websocket_url(url) as ws:
        await ws.send_message(request("health").decode())
        assert json.loads(await ws.get_message())["result"] == {}


def test_a_batch_beyond_the_clients_budget_is_refused_whole(node: tuple[int, Path]) -> None:
    """Batches of 100 calls spend 100 tokens each: within a few the client's 600 a minute
    are gone and the next batch is answered 429, none of it run; the node goes on."""
    port, _ = node
    batch = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "health"} for i in range(100)]).encode()
    for _ in range(RATE // 100 + 1):
        time.sleep(0.3)  # a few tokens, so that the batch's request itself is let in
        status, answer = post(port, batch)
        if status == 429:
            break
        assert status == 200 and len(answer) == 100
    assert status == 429, answer
    assert "100 calls (a batch's calls" in answer["error"]["data"]
    time.sleep(1)  # 10 tokens come a second
    assert height(port) >= 1


def test_block_search_pages_heights_newest_first_and_refuses_what_it_cannot_search(
        node: tuple[int, Path]) -> None:
    port, _ = node
    deadline = time.monotonic() + 30
    while height(port) < 4:
        assert time.monotonic() < deadline, "4 blocks within 30 s"
        time.sleep(0.2)

    def heights(**params: Any) -> tuple[list[int], str]:
        status, answer = call(port, "block_search", params)
        assert status == 200, answer
        found = answer["result"]
        return [int(b["block"]["header"]["height"]) for b in found["blocks"]], found["total_count"]

    assert heights(query="block.height <= 3") == ([3, 2, 1], "3")
    assert heights(query="block.height <= 3", order_by="asc") == ([1, 2, 3], "3")
    assert heights(query="block.height > 1 AND block.height < 4", per_page="1", page="2") == ([2], "2")
    assert heights(query="block.height = 2") == ([2], "1")
    _, answer = call(port, "block_search", {"query": "tx.height = 2"})
    assert answer["error"]["code"] == -32602
    assert "cannot search by 'tx.height = 2'" in answer["error"]["data"]

    _, header = call(port, "header", {"height": "2"})
    _, block = call(port, "block", {"height": "2"})
    assert header["result"]["header"] == block["result"]["block"]["header"]
    _, by_hash = call(port, "header_by_hash", {"hash": block["result"]["block_id"]["hash"]})
    assert by_hash["result"] == header["result"]
    _, beyond = call(port, "genesis_chunked", {"chunk": "1"})
    assert "there are 1 chunks, 1 is invalid" in beyond["error"]["data"]
