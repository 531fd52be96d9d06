"""The RPC's HTTP/1.1 and WebSocket server over real loopback sockets: keep-alive
connections answered in order, bad requests refused with a JSON-RPC error that says what
is wrong (the server serving on), its bounds (body, head, connections, WebSocket
messages, time), and WebSocket answers and events leaving whole, one after another."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import h11
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, open_websocket_url

from node.rpc import transport
from node.rpc.server import RpcApp
from node.rpc.transport import Server
from storage.memory import MemoryKV
from storage.store import Store

from chainkit import LocalChain
from rpckit import make_app
from storekit import GENESIS_HASH, commit_next_outcome, transfers

Address = tuple[str, int]


@asynccontextmanager
async def serving(app: RpcApp, *, max_connections: int = 10) -> AsyncIterator[Address]:
    """``app`` served on a free loopback port, until the block ends."""
    server = Server(app, max_connections=max_connections, max_message_bytes=app.config.max_body_bytes)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, listeners)
        host, port = listeners[0].socket.getsockname()[:2]
        yield host, port
        nursery.cancel_scope.cancel()


def request(document: Any, *, extra: bytes = b"") -> bytes:
    body = json.dumps(document).encode()
    return (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def call(method: str = "health", request_id: Any = 1, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


async def answers(stream: trio.SocketStream, count: int) -> list[tuple[int, Any]]:
    """The next ``count`` answers on ``stream``: status and JSON body (informational
    answers such as 100 Continue included, with no body)."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="POST", target="/", headers=[("host", "x"), ("content-length", "0")]))
    client.send(h11.EndOfMessage())
    out: list[tuple[int, Any]] = []
    status, body = 0, b""
    while len(out) < count:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.InformationalResponse):
            out.append((event.status_code, None))
        elif isinstance(event, h11.Response):
            status, body = event.status_code, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            out.append((status, json.loads(body) if body else None))
            if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
                break
            client.start_next_cycle()
            client.send(h11.Request(method="POST", target="/", headers=[("host", "x"),
                                                                         ("content-length", "0")]))
            client.send(h11.EndOfMessage())
        elif isinstance(event, h11.ConnectionClosed):
            break
    return out


async def closed(stream: trio.SocketStream) -> bool:
    """Whether the server closed ``stream`` (reading nothing more)."""
    with trio.fail_after(60):
        while True:
            try:
                if not await stream.receive_some(65536):
                    return True
            except trio.BrokenResourceError:
                return True


async def test_requests_on_one_connection_are_answered_in_order() -> None:
    async with serving(make_app()) as (host, port):
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(b"".join(request(call(request_id=i)) for i in range(3)))  # pipelined
        got = await answers(stream, 3)
        assert [(status, body["id"]) for status, body in got] == [(200, 0), (200, 1), (200, 2)]
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n" + request(call(request_id=3)))
        got = await answers(stream, 2)  # a GET, whose end the app never reads, keeps the connection
        assert [status for status, _ in got] == [200, 200] and got[1][1]["id"] == 3
        await stream.aclose()


async def test_a_body_above_the_limit_gets_413_and_its_connection_is_closed() -> None:
    async with serving(make_app(max_body_bytes=1_000)) as (host, port):
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              + b"".join(b"190\r\n" + b" " * 400 + b"\r\n" for _ in range(3)))
        ((status, body),) = await answers(stream, 1)
        assert status == 413 and "above 1000 bytes" in body["error"]["data"]
        assert await closed(stream)  # the rest of the body is never read


@pytest.mark.parametrize(("raw", "status", "says"), [
    (b"NOT HTTP AT ALL\r\n\r\n", 400, "a malformed HTTP request"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"x" * 40_000, 431, "headers above 16384 bytes"),  # unending
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "this server speaks HTTP/1.1"),
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
     "a malformed HTTP request"),
])
async def test_a_malformed_request_gets_a_json_rpc_error_and_the_server_serves_on(
        raw: bytes, status: int, says: str) -> None:
    async with serving(make_app()) as (host, port):
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(raw)
        ((got, body),) = await answers(stream, 1)
        assert got == status and body["error"]["code"] == -32600 and says in body["error"]["data"]
        assert await closed(stream)
        again = await trio.open_tcp_stream(host, port)
        await again.send_all(request(call()))
        assert (await answers(again, 1))[0] == (200, {"jsonrpc": "2.0", "id": 1, "result": {}})


async def test_a_client_that_expects_100_continue_gets_it_then_the_answer() -> None:
    async with serving(make_app()) as (host, port):
        stream = await trio.open_tcp_stream(host, port)
        body = json.dumps(call()).encode()
        await stream.send_all(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                              b"Content-Length: %d\r\n\r\n" % len(body))
        client = h11.Connection(h11.CLIENT)
        client.send(h11.Request(method="POST", target="/", headers=[("host", "h"), ("expect", "100-continue"),
                                                                     ("content-length", str(len(body)))]))
        while (event := client.next_event()) is h11.NEED_DATA:
            client.receive_data(await stream.receive_some(65536))
        assert isinstance(event, h11.InformationalResponse) and event.status_code == 100
        await stream.send_all(body)
        assert (await answers(stream, 1))[0][0] == 200


async def test_connections_above_the_bound_are_closed_as_they_are_accepted() -> None:
    async with serving(make_app(), max_connections=2) as (host, port):
        first, second = await trio.open_tcp_stream(host, port), await trio.open_tcp_stream(host, port)
        await first.send_all(request(call()))
        await second.send_all(request(call()))
        assert (await answers(first, 1))[0][0] == (await answers(second, 1))[0][0] == 200
        third = await trio.open_tcp_stream(host, port)
        assert await closed(third)
        await first.aclose()
        await trio.sleep(0.1)
        fourth = await trio.open_tcp_stream(host, port)
        await fourth.send_all(request(call()))
        assert (await answers(fourth, 1))[0][0] == 200


async def test_an_idle_connection_and_a_request_that_never_ends_are_closed(
        autojump_clock: trio.testing.MockClock) -> None:
    async with serving(make_app()) as (host, port):
        idle = await trio.open_tcp_stream(host, port)
        started = trio.current_time()
        assert await closed(idle)
        assert trio.current_time() - started == pytest.approx(transport.KEEP_ALIVE_S, abs=0.5)

        slow = await trio.open_tcp_stream(host, port)
        await slow.send_all(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n{")
        started = trio.current_time()
        assert await closed(slow)
        assert trio.current_time() - started == pytest.approx(transport.REQUEST_S, abs=0.5)

        trickle = await trio.open_tcp_stream(host, port)  # a byte a second never finishes a head
        started = trio.current_time()
        with pytest.raises(trio.BrokenResourceError):
            for byte in b"GET /health HTTP/1.1\r\nHost: h\r\nX-Slow: " + b"x" * 100:
                await trio.sleep(1)
                await trio.sleep(0.01)  # the server's close, if any, is seen before the next write
                await trio.testing.wait_all_tasks_blocked()
                await trickle.send_all(bytes([byte]))
        assert trio.current_time() - started == pytest.approx(1 + transport.REQUEST_S, abs=1.5)


# --- WebSocket -----------------------------------------------------------------------------


async def test_a_websocket_message_above_the_limit_closes_the_connection_with_1009() -> None:
    async with serving(make_app(max_body_bytes=1_000)) as (host, port):
        async with open_websocket_url(f"ws://{host}:{port}/websocket") as ws:
            await ws.send_message(json.dumps(call()))
            assert json.loads(await ws.get_message())["result"] == {}
            await ws.send_message("x" * 1_001)
            with pytest.raises(ConnectionClosed) as closing:
                await ws.get_message()
            reason = closing.value.reason
            assert reason is not None and reason.code == transport.MESSAGE_TOO_BIG
        async with open_websocket_url(f"ws://{host}:{port}/websocket") as ws:  # the server serves on
            await ws.send_message(json.dumps(call()))
            assert json.loads(await ws.get_message())["result"] == {}


async def test_a_refused_websocket_upgrade_gets_an_http_answer_that_says_why() -> None:
    async with serving(make_app()) as (host, port):
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(b"GET /elsewhere HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              b"Sec-WebSocket-Version: 13\r\n\r\n")
        ((status, body),) = await answers(stream, 1)
        assert status == 404 and "no WebSocket at /elsewhere" in body["error"]["data"]


async def test_websocket_answers_and_events_leave_whole_one_after_another() -> None:
    """A stream of events (blocks published) and a stream of requests on one connection:
    every frame the client reads is one whole JSON document, and nothing is lost."""
    app = make_app()
    chain = LocalChain(users=4)
    store = Store.open(MemoryKV({}), chain.genesis, GENESIS_HASH)
    published = []
    for _ in range(10):
        block, outcome = commit_next_outcome(chain, store, transfers(chain, 20))
        published.append((block, outcome, store.app_hash))
    async with serving(app) as (host, port), open_websocket_url(f"ws://{host}:{port}/websocket") as ws:
        await ws.send_message(json.dumps(call("subscribe", "sub", query="tm.event='Tx'")))
        assert json.loads(await ws.get_message())["result"] == {}
        for i, (block, outcome, app_hash) in enumerate(published):
            app.events.publish(block, outcome, app_hash)
            for j in range(5):
                await ws.send_message(json.dumps(call(request_id=f"{i}-{j}")))
        events = 0
        answered: set[str] = set()
        with trio.fail_after(10):
            while events < 200 or len(answered) < 50:
                message = json.loads(await ws.get_message())
                if message["id"] == "sub":
                    events += 1
                else:
                    answered.add(message["id"])
    assert events == 200 and len(answered) == 50
