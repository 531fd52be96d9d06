"""The RPC server: a port that is taken is refused with a message that says which and
what to change; and what a client can make the server do is bounded, each bound
answered with an error that says what is wrong, the server serving on afterwards.

The bounds are hit through the ASGI application itself (no sockets): the rate limit per
client address (one token per request, per call of a batch and per WebSocket message),
the body and message size, WebSocket connections per client and in all, subscriptions
per connection, CORS, and the Host and Origin checks."""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from chain.errors import NetworkError
from chain.transition import apply_block
from chain.types import encode
from node.rpc.events import MAX_SUBSCRIPTIONS_PER_CLIENT, QUEUE
from node.rpc.methods import INVALID_PARAMS, Methods
from node.rpc.server import (
    FORBIDDEN,
    RATE_LIMITED,
    TOO_LARGE,
    TOO_MANY_CONNECTIONS,
    RpcApp,
    run_server,
)
from storage.memory import MemoryKV
from storage.store import Store

from chainkit import LocalChain
from rpckit import make_app
from storekit import GENESIS_HASH, commit_next, commit_next_outcome, transfers

Header = tuple[bytes, bytes]
Message = dict[str, Any]
Write = Callable[[Message, Callable[[Message], Awaitable[None]]], Awaitable[None]]


async def test_a_taken_rpc_port_is_refused_with_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app: Any = None  # never reached: the port is checked first
        with pytest.raises(NetworkError, match=f"cannot serve RPC on 127.0.0.1:{port}.*BIZRA_RPC_PORT"):
            await run_server(app, "127.0.0.1", port)


# --- driving the application ---------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: list[Header]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)

    def headers_named(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> dict[str, Any]:
        document = self.json()
        assert isinstance(document, dict) and "error" in document, document
        error: dict[str, Any] = document["error"]
        return error


async def http(app: RpcApp, method: str = "POST", path: str = "/", body: bytes | Sequence[bytes] = b"", *,
               headers: Sequence[Header] = (), client: str = "127.0.0.1",
               host: bytes = b"127.0.0.1:8080") -> tuple[Answer, int]:
    """One HTTP request (its body one chunk, or the chunks given); the answer, and how
    many chunks of the body the application read."""
    chunks = [body] if isinstance(body, bytes) else list(body)
    incoming = [{"type": "http.request", "body": c, "more_body": i + 1 < len(chunks)}
                for i, c in enumerate(chunks)]
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read < len(incoming):
            read += 1
            return incoming[read - 1]
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", host), *headers], "client": (client, 40_000),
             "server": ("127.0.0.1", 8080)}
    await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start", sent
    body_sent = b"".join(m.get("body", b"") for m in sent[1:])
    return Answer(sent[0]["status"], list(sent[0]["headers"]), body_sent), read


async def post(app: RpcApp, document: Any, *, headers: Sequence[Header] = (), client: str = "127.0.0.1",
               host: bytes = b"127.0.0.1:8080") -> Answer:
    return (await http(app, body=json.dumps(document).encode(), headers=headers, client=client, host=host))[0]


def call(method: str = "health", request_id: Any = 1, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def latency_count(app: RpcApp, method: str) -> float:
    """How many calls of ``method`` the application ran."""
    value = app.metrics.registry.get_sample_value("bizra_rpc_request_duration_seconds_count",
                                                  {"method": method})
    return value or 0.0


class Socket:
    """A WebSocket client of the application, through ASGI; the application runs in
    ``nursery`` until the socket closes."""

    def __init__(self, app: RpcApp, nursery: trio.Nursery, *, client: str = "127.0.0.1",
                 headers: Sequence[Header] = (), host: bytes = b"127.0.0.1:8080", path: str = "/websocket",
                 extension: bool = True, write: Write | None = None) -> None:
        """``write``, if given, stands for the server's socket: it gets each message the
        application sends and passes it on with its second argument."""
        self._to_app, to_app = trio.open_memory_channel[dict[str, Any]](math.inf)
        self._from_app_send, self._from_app = trio.open_memory_channel[dict[str, Any]](math.inf)
        forward = self._from_app_send.send

        async def send(message: dict[str, Any]) -> None:
            await (write(message, forward) if write is not None else forward(message))

        self.ended = trio.Event()
        scope = {"type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws",
                 "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", host), *headers], "client": (client, 40_001),
                 "server": ("127.0.0.1", 8080), "subprotocols": [],
                 "extensions": {"websocket.http.response": {}} if extension else {}}

        async def run() -> None:
            try:
                await app(scope, to_app.receive, send)
            finally:
                self.ended.set()

        nursery.start_soon(run)
        self._to_app.send_nowait({"type": "websocket.connect"})

    async def opened(self) -> tuple[int, Any]:
        """101 if the application accepted the connection; else the status of its HTTP
        refusal and the JSON body (or, without the ASGI extension, the close code and
        reason)."""
        first = await self._from_app.receive()
        if first["type"] == "websocket.accept":
            return 101, None
        if first["type"] == "websocket.close":
            return first["code"], first.get("reason")
        assert first["type"] == "websocket.http.response.start", first
        body = await self._from_app.receive()
        return first["status"], json.loads(body["body"])

    async def ask(self, request: Any) -> Any:
        """Send ``request`` (JSON, or text as is); the next message the application sends."""
        self.tell(request)
        return await self.next()

    def tell(self, request: Any) -> None:
        """Send ``request`` (JSON, or text as is)."""
        text = request if isinstance(request, str) else json.dumps(request)
        self._to_app.send_nowait({"type": "websocket.receive", "text": text})

    async def next(self) -> Any:
        """The next message the application sends."""
        message = await self._from_app.receive()
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def close(self) -> None:
        self._to_app.send_nowait({"type": "websocket.disconnect", "code": 1000})
        await self.ended.wait()


async def health_is_served(app: RpcApp, client: str = "127.0.0.1") -> bool:
    return (await post(app, call(), client=client)).status == 200


# --- the rate limit ------------------------------------------------------------------------


async def test_a_batch_costs_one_token_per_call_and_one_over_the_budget_runs_none(
        mock_clock: trio.testing.MockClock) -> None:
    app = make_app(requests_per_minute=10)
    answer = await post(app, [call(request_id=i) for i in range(4)])
    assert answer.status == 200 and len(answer.json()) == 4  # 6 tokens left

    answer = await post(app, [call(request_id=i) for i in range(7)])
    assert answer.status == 429 and answer.header(b"retry-after") is not None
    error = answer.error()
    assert error["code"] == RATE_LIMITED
    assert "7 calls (a batch's calls" in error["data"] and "count as 7 requests" in error["data"]
    assert "none was run" in error["data"]
    assert latency_count(app, "health") == 4  # the refused batch ran nothing (and cost 1 token)

    assert await health_is_served(app)  # 4 left
    assert (await post(app, [call(request_id=i) for i in range(4)])).status == 200  # 0 left
    refused = await post(app, call())
    assert refused.status == 429
    assert "more than 10 requests a minute from 127.0.0.1" in refused.error()["data"]
    assert refused.header(b"retry-after") == b"6"  # one token comes every 6 s

    assert await health_is_served(app, client="127.0.0.2")  # another client's budget is its own
    mock_clock.jump(60)
    assert await health_is_served(app)


async def test_a_batch_larger_than_the_whole_budget_is_told_to_be_smaller(
        mock_clock: trio.testing.MockClock) -> None:
    app = make_app(requests_per_minute=10)
    answer = await post(app, [call(request_id=i) for i in range(11)])
    assert answer.status == 429 and answer.header(b"retry-after") is None
    assert "more than the 10 a minute a client may make: send smaller batches" in answer.error()["data"]
    assert await health_is_served(app)


async def test_websocket_upgrades_and_messages_draw_from_the_same_budget(
        mock_clock: trio.testing.MockClock) -> None:
    app = make_app(requests_per_minute=5)
    for _ in range(3):
        assert await health_is_served(app)
    async with trio.open_nursery() as nursery:
        ws = Socket(app, nursery)
        assert (await ws.opened())[0] == 101  # the upgrade: 1 token left
        assert (await ws.ask(call(request_id="a")))["result"] == {}
        refused = await ws.ask(call(request_id="b"))
        assert refused["error"]["code"] == RATE_LIMITED and "5 requests a minute" in refused["error"]["data"]
        assert (await post(app, call())).status == 429
        late = Socket(app, nursery)
        status, body = await late.opened()
        assert status == 429 and body["error"]["code"] == RATE_LIMITED
        mock_clock.jump(60)
        assert (await ws.ask(call(request_id="c")))["result"] == {}
        await ws.close()


# --- sizes ---------------------------------------------------------------------------------


async def test_a_body_above_the_limit_is_refused_as_it_streams_in() -> None:
    app = make_app(max_body_bytes=1_000)
    answer, read = await http(app, body=[b" " * 400] * 5)
    assert answer.status == 413 and answer.error()["code"] == TOO_LARGE
    assert "above 1000 bytes" in answer.error()["data"]
    assert read == 3  # 1,200 bytes: the last two chunks were never read

    answer, read = await http(app, body=[b" " * 400] * 5, headers=[(b"content-length", b"2000")])
    assert answer.status == 413 and read == 0  # declared too large: nothing read
    answer, read = await http(app, body=[b" " * 400] * 5, headers=[(b"content-length", b"9" * 5_000)])
    assert answer.status == 413 and read == 0

    answer, _ = await http(app, body=[json.dumps(call()).encode(), b" " * 900])
    assert answer.status == 200 and answer.json()["result"] == {}


async def test_a_websocket_message_above_the_limit_is_refused_and_the_session_goes_on() -> None:
    app = make_app(max_body_bytes=1_000)
    async with trio.open_nursery() as nursery:
        ws = Socket(app, nursery)
        assert (await ws.opened())[0] == 101
        refused = await ws.ask(json.dumps(call()) + " " * 1_000)
        assert refused["error"]["code"] == TOO_LARGE and "above 1000 bytes" in refused["error"]["data"]
        refused = await ws.ask(json.dumps(call(note="€" * 330)))  # 330 characters, 990 bytes of them
        assert refused["error"]["code"] == TOO_LARGE
        assert (await ws.ask(call()))["result"] == {}
        await ws.close()


# --- WebSocket connections and subscriptions -----------------------------------------------


async def test_websocket_connections_are_capped_per_client_and_in_all() -> None:
    app = make_app(max_websocket_connections=3, max_websocket_connections_per_client=2)
    async with trio.open_nursery() as nursery:
        first, second = Socket(app, nursery, client="10.0.0.1"), Socket(app, nursery, client="10.0.0.1")
        assert (await first.opened())[0] == (await second.opened())[0] == 101
        status, body = await Socket(app, nursery, client="10.0.0.1").opened()
        assert status == 429 and body["error"]["code"] == TOO_MANY_CONNECTIONS
        assert "10.0.0.1 has 2 WebSocket connections open already" in body["error"]["data"]

        other = Socket(app, nursery, client="10.0.0.2")
        assert (await other.opened())[0] == 101
        status, body = await Socket(app, nursery, client="10.0.0.3").opened()
        assert status == 503 and body["error"]["code"] == TOO_MANY_CONNECTIONS
        assert "serves 3 WebSocket connections already" in body["error"]["data"]
        code, reason = await Socket(app, nursery, client="10.0.0.3", extension=False).opened()
        assert code == 1013 and "serves 3 WebSocket connections" in reason  # a server without the extension

        assert (await first.ask(call()))["result"] == {}  # those open are served on
        await first.close()
        again = Socket(app, nursery, client="10.0.0.1")
        assert (await again.opened())[0] == 101
        assert app.websockets == {"10.0.0.1": 2, "10.0.0.2": 1}
        for ws in (second, other, again):
            await ws.close()
    assert app.websockets == {}


async def test_a_connection_holds_a_bounded_number_of_subscriptions() -> None:
    app = make_app()
    queries = [f"tm.event='Tx' AND tx.height={h}" for h in range(MAX_SUBSCRIPTIONS_PER_CLIENT + 1)]
    async with trio.open_nursery() as nursery:
        ws = Socket(app, nursery)
        assert (await ws.opened())[0] == 101
        for query in queries[:-1]:
            assert (await ws.ask(call("subscribe", query=query)))["result"] == {}
        refused = await ws.ask(call("subscribe", query=queries[-1]))
        assert refused["error"]["code"] == INVALID_PARAMS
        assert f"at most {MAX_SUBSCRIPTIONS_PER_CLIENT} subscriptions" in refused["error"]["data"]
        assert (await ws.ask(call("unsubscribe", query=queries[0])))["result"] == {}
        assert (await ws.ask(call("subscribe", query=queries[-1])))["result"] == {}
        await ws.close()


async def test_a_subscriber_a_whole_queue_behind_is_told_its_subscriptions_are_canceled() -> None:
    """Blocks published faster than the session can forward them (none is forwarded
    between two here): the client gets the queued ones, then CometBFT's cancellation
    under each subscription's id, and may subscribe again."""
    app = make_app()
    chain = LocalChain(users=4)
    store = Store.open(MemoryKV({}), chain.genesis, GENESIS_HASH)
    block = chain.next_block(transfers(chain, 1))
    outcome = apply_block(store.state, store.app_hash, block, chain.config)
    async with trio.open_nursery() as nursery:
        ws = Socket(app, nursery)
        assert (await ws.opened())[0] == 101
        assert (await ws.ask(call("subscribe", "headers", query="tm.event='NewBlockHeader'")))["result"] == {}
        for _ in range(QUEUE + 5):
            app.events.publish(block, outcome, store.app_hash)
        events = [await ws.next() for _ in range(1 + QUEUE)]  # the one its reader waited for, and a queue
        assert all("query" in e["result"] for e in events)
        with trio.fail_after(5):  # a subscriber cut off silently would wait here for good
            canceled = await ws.next()
        assert canceled["id"] == "headers"
        assert canceled["error"]["code"] == -32000 and canceled["error"]["message"] == "Server error"
        assert "client is not pulling messages fast enough" in canceled["error"]["data"]
        assert app.events.overflows == 1
        assert (await ws.ask(call("subscribe", query="tm.event='NewBlockHeader'")))["result"] == {}
        app.events.publish(block, outcome, store.app_hash)
        assert "query" in (await ws.next())["result"]
        await ws.close()


async def test_events_and_answers_on_one_websocket_are_written_one_at_a_time() -> None:
    app = make_app()
    chain = LocalChain(users=4)
    store = Store.open(MemoryKV({}), chain.genesis, GENESIS_HASH)
    writing, overlaps = False, 0

    async def write(message: Message, forward: Callable[[Message], Awaitable[None]]) -> None:
        nonlocal writing, overlaps
        overlaps += writing
        writing = True
        await trio.sleep(0)  # a socket's write yields, as a slow client makes it do
        writing = False
        await forward(message)

    async with trio.open_nursery() as nursery:
        ws = Socket(app, nursery, write=write)
        assert (await ws.opened())[0] == 101
        assert (await ws.ask(call("subscribe", query="tm.event='NewBlockHeader'")))["result"] == {}
        for _ in range(20):
            block, outcome = commit_next_outcome(chain, store, transfers(chain, 2))
            app.events.publish(block, outcome, store.app_hash)
            ws.tell(call())
        heights: set[str] = set()
        answers = 0
        while len(heights) < 20 or answers < 20:
            message = await ws.next()
            if "query" in message.get("result", {}):
                heights.add(message["result"]["data"]["value"]["header"]["height"])
            else:
                answers += message["result"] == {}
        await ws.close()
    assert overlaps == 0
    assert heights == {str(h) for h in range(1, 21)}


# --- CORS ----------------------------------------------------------------------------------

PAGE = b"https://explorer.example"
PREFLIGHT = [(b"origin", PAGE), (b"access-control-request-method", b"POST"),
             (b"access-control-request-headers", b"content-type")]


async def test_without_allowed_origins_there_are_no_cors_headers() -> None:
    app = make_app()
    answer = await post(app, call(), headers=[(b"origin", PAGE)])
    assert answer.status == 200
    assert not [k for k, _ in answer.headers if k.startswith(b"access-control-") or k == b"vary"]
    answer, _ = await http(app, "OPTIONS", headers=PREFLIGHT)
    assert answer.status == 404 and not [k for k, _ in answer.headers if k.startswith(b"access-control-")]


async def test_an_allowed_origin_gets_cors_headers_and_preflights_as_cometbft_answers_them() -> None:
    app = make_app(cors_allowed_origins=("https://Explorer.example",), requests_per_minute=2)
    answer, _ = await http(app, "OPTIONS", headers=PREFLIGHT)
    assert answer.status == 200 and answer.body == b""
    assert answer.header(b"access-control-allow-origin") == PAGE
    assert answer.header(b"access-control-allow-methods") == b"POST"
    assert answer.header(b"access-control-allow-headers") == b"content-type"
    assert answer.headers_named(b"vary") == [b"Origin", b"Access-Control-Request-Method",
                                             b"Access-Control-Request-Headers"]

    answer = await post(app, call(), headers=[(b"origin", PAGE)])
    assert answer.status == 200 and answer.header(b"access-control-allow-origin") == PAGE
    assert answer.headers_named(b"vary") == [b"Origin"]
    answer = await post(app, call(), headers=[(b"origin", PAGE)])  # past the 2 requests a minute
    assert answer.status == 429 and answer.header(b"access-control-allow-origin") == PAGE  # errors too


@pytest.mark.parametrize("asked", [
    [(b"origin", b"https://elsewhere.example"), (b"access-control-request-method", b"POST")],
    [(b"origin", PAGE), (b"access-control-request-method", b"PUT")],
    [(b"origin", PAGE), (b"access-control-request-method", b"POST"),
     (b"access-control-request-headers", b"content-type, x-secret")],
], ids=["origin", "method", "header"])
async def test_a_preflight_for_what_is_not_allowed_gets_no_allow_origin(asked: list[Header]) -> None:
    app = make_app(cors_allowed_origins=(PAGE.decode(),))
    answer, _ = await http(app, "OPTIONS", headers=asked)
    assert answer.status == 200 and answer.header(b"access-control-allow-origin") is None
    answer = await post(app, call(), headers=[(b"origin", b"https://elsewhere.example")])
    assert answer.status == 200 and answer.header(b"access-control-allow-origin") is None


async def test_a_star_allows_every_origin() -> None:
    app = make_app(cors_allowed_origins=("*",))
    answer = await post(app, call(), headers=[(b"origin", b"http://anywhere.example:3000")])
    assert answer.header(b"access-control-allow-origin") == b"*"
    answer, _ = await http(app, "GET", "/health", headers=[(b"origin", b"null")])
    assert answer.status == 200 and answer.header(b"access-control-allow-origin") == b"*"


# --- Host and Origin -----------------------------------------------------------------------


LOCAL = b"127.0.0.1:8080"


@pytest.mark.parametrize("host, origin, allowed_hosts, cors, status", [
    (LOCAL, None, (), (), 101),  # a program (no Origin)
    (b"node0:8080", None, (), (), 101),  # compose, Kubernetes: by service name
    (LOCAL, b"http://127.0.0.1:8080", (), (), 101),  # a page of the node's own
    (b"localhost:8080", b"http://localhost:8080", (), (), 101),
    (b"[::1]:8080", b"http://[::1]:8080", (), (), 101),
    (b"rpc.example:443", b"https://rpc.example", ("rpc.example",), (), 101),
    (b"node0:8080", PAGE, (), (PAGE.decode(),), 101),
    (LOCAL, PAGE, (), (), 403),  # another site
    (LOCAL, b"http://127.0.0.1:9999", (), (), 403),  # another port is another site
    (b"evil.example:8080", b"http://evil.example:8080", (), (), 403),  # DNS rebinding
    (b"node0:8080", b"http://node0:8080", (), (), 403),  # a name not configured
    (b"node0:8080", b"null", (), (), 403),
    (b"node0:8080", None, ("rpc.example",), (), 403),  # allowed_hosts set: every Host checked
], ids=["program", "service-name", "own-page", "localhost", "ipv6", "allowed-host", "allowed-origin",
        "other-site", "other-port", "rebinding", "unknown-name", "null-origin", "host-not-allowed"])
async def test_websocket_upgrades_from_web_pages_are_checked(host: bytes, origin: bytes | None,
                                                             allowed_hosts: tuple[str, ...],
                                                             cors: tuple[str, ...], status: int) -> None:
    app = make_app(allowed_hosts=allowed_hosts, cors_allowed_origins=cors)
    async with trio.open_nursery() as nursery:
        ws = Socket(app, nursery, host=host, headers=[(b"origin", origin)] if origin else [])
        answer, body = await ws.opened()
        assert answer == status, body
        if status == 403:
            assert body["error"]["code"] == FORBIDDEN and body["error"]["data"], body
        else:
            assert (await ws.ask(call()))["result"] == {}
            await ws.close()
    assert await health_is_served(app)


async def test_a_websocket_elsewhere_than_at_websocket_is_not_found() -> None:
    app = make_app()
    async with trio.open_nursery() as nursery:
        status, body = await Socket(app, nursery, path="/ws").opened()
    assert status == 404 and "no WebSocket at /ws" in body["error"]["data"]


@pytest.mark.parametrize("host, status", [
    (b"node0:8080", 200), (b"rpc.example", 200), (b"RPC.example.:443", 200), (b"10.1.2.3:8080", 200),
    (b"localhost:8080", 200), (b"[::1]:8080", 200), (b"evil.example:8080", 403), (b"", 403),
])
async def test_http_hosts_are_checked_once_allowed_hosts_is_set(host: bytes, status: int) -> None:
    unchecked = make_app()
    assert (await post(unchecked, call(), host=host)).status == 200  # by default, any Host
    app = make_app(allowed_hosts=("node0", "rpc.example"))
    answer = await post(app, call(), host=host)
    assert answer.status == status
    if status == 403:
        assert answer.error()["code"] == FORBIDDEN and "rpc.allowed_hosts" in answer.error()["data"]
    assert await health_is_served(app)


# --- blockchain ----------------------------------------------------------------------------


async def test_blockchain_gives_each_block_size_as_the_length_of_its_encoding() -> None:
    chain = LocalChain(users=4)
    store = Store.open(MemoryKV({}), chain.genesis, GENESIS_HASH)
    blocks = [commit_next(chain, store, transfers(chain, n)) for n in (0, 3, 1)]
    node: Any = SimpleNamespace(store=store)
    answer = await Methods(node).call("blockchain", {})
    sizes = {meta["header"]["height"]: meta["block_size"] for meta in answer["block_metas"]}
    assert sizes == {str(b.header.height): str(len(encode(b))) for b in blocks}


async def test_each_tx_of_a_bulk_broadcast_costs_a_token_and_one_over_the_budget_runs_none(
        mock_clock: trio.testing.MockClock) -> None:
    app = make_app(requests_per_minute=10)
    answer = await post(app, call("bizra_broadcast_txs", txs=["AA=="] * 11))
    assert answer.status == 429 and "11 calls" in answer.error()["data"]
    assert latency_count(app, "bizra_broadcast_txs") == 0  # not run (and it cost 1 token)
    answer = await post(app, [call("bizra_broadcast_txs", txs=["AA=="] * 9), call()])  # 8 tokens left
    assert answer.status == 429 and "10 calls" in answer.error()["data"]
    assert latency_count(app, "bizra_broadcast_txs") == 0


async def test_the_status_page_is_served_with_a_policy_that_keeps_it_to_this_node() -> None:
    app = make_app()
    page, _ = await http(app, "GET", "/")
    assert page.status == 200 and page.header(b"content-type") == b"text/html; charset=utf-8"
    assert b"<title>BIZRA node</title>" in page.body and b'src="/ui/app.js"' in page.body
    policy = page.header(b"content-security-policy") or b""
    assert b"default-src 'none'" in policy and b"connect-src 'self'" in policy
    assert b"frame-ancestors 'none'" in policy and page.header(b"x-content-type-options") == b"nosniff"
    script, _ = await http(app, "GET", "/ui/app.js")
    assert script.status == 200 and script.header(b"content-type") == b"text/javascript; charset=utf-8"
    assert b"/websocket" in script.body
    style, _ = await http(app, "GET", "/ui/style.css")
    assert style.status == 200 and style.header(b"content-type") == b"text/css; charset=utf-8"
    assert (await http(app, "GET", "/ui/other.js"))[0].status == 404
