"""The RPC server (§9): an ASGI application served by Hypercorn under trio.

- ``POST /``: JSON-RPC 2.0, one request or a batch (at most ``rpc.max_batch``);
- ``GET /<method>?name=value``: the same methods with URI parameters (as CometBFT:
  strings may be quoted, bytes may be ``0x…`` hex);
- ``/websocket``: JSON-RPC over a WebSocket, with ``subscribe``, ``unsubscribe`` and
  ``unsubscribe_all`` (:mod:`node.rpc.events`) besides every method;
- ``GET /health`` (200 while the node runs), ``GET /ready`` (200 when caught up and
  connected, else 503 with the reason), ``GET /metrics`` (Prometheus text).

Admin methods (``dial_peers``, ``bizra_ban_peer``, ``bizra_block_peers``) need the token in the node's home
(``rpc_token``) as ``Authorization: Bearer <token>``; over a WebSocket they are refused.

Limits: a body above ``rpc.max_body_bytes`` gets 413, a client (by address) above
``rpc.requests_per_minute`` gets 429; both with a JSON-RPC error saying so. No request,
however malformed, gets a stack trace or a 500: an unexpected failure is logged with
its traceback and answered with -32603.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from chain.errors import NetworkError
from chain.service import TaskStatus
from node.config import RpcConfig
from node.metrics import CONTENT_TYPE, Metrics
from node.rpc.events import MAX_SUBSCRIPTIONS_PER_CLIENT, EventBus, Feed, Query, QueryError
from node.rpc.methods import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    Methods,
    RpcError,
    invalid,
)
from p2p.peers import PeerId, RateLimit

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
RATE_LIMITED = -32000
TOO_LARGE = -32001
UNAUTHORIZED = -32002
ADMIN_METHODS = frozenset({"dial_peers", "bizra_ban_peer", "bizra_block_peers"})
RESTART_DELAY_S = 0.1
"""Methods that change what the node does, not only what it says: bearer token only."""


def _error(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


class RpcApp:
    """The ASGI application; ``ready`` says whether the node is ready, and if not why."""

    def __init__(self, methods: Methods, config: RpcConfig, metrics: Metrics,
                 ready: Callable[[], str | None], events: EventBus, admin_token: str) -> None:
        self.methods = methods
        self.admin_token = admin_token
        self.events = events
        self.config = config
        self.metrics = metrics
        self.ready = ready
        per_second = config.requests_per_minute / 60
        self._limit = RateLimit(per_second, config.requests_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if scope["type"] == "websocket":
            await self._websocket(client, scope, receive, send)
            return
        if not self._limited(client):
            await self._json(send, 429, _error(-1, RpcError(
                RATE_LIMITED, "Too many requests",
                f"more than {self.config.requests_per_minute} requests a minute from {client}")))
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/":
            body = await self._body(receive)
            if body is None:
                await self._json(send, 413, _error(-1, RpcError(
                    TOO_LARGE, "Request too large", f"the body is above {self.config.max_body_bytes} bytes")))
                return
            await self._json(send, 200, await self._post(body, self._is_admin(scope)))
        elif method == "GET" and path == "/health":
            await self._json(send, 200, {"jsonrpc": "2.0", "id": -1, "result": {}})
        elif method == "GET" and path == "/ready":
            reason = self.ready()
            await self._json(send, 503 if reason else 200,
                             {"ready": reason is None, **({"reason": reason} if reason else {})})
        elif method == "GET" and path == "/metrics":
            await self._respond(send, 200, self.metrics.render(), CONTENT_TYPE)
        elif method == "GET" and path.count("/") == 1 and path != "/":
            query = parse_qsl(scope["query_string"].decode("utf-8", "replace"), keep_blank_values=True)
            params = {k: _uri_value(v) for k, v in query}
            answer = await self._call(-1, path[1:], params, self._is_admin(scope))
            if "result" in answer:
                await self._json(send, 200, answer)
            else:
                await self._json(send, 404 if answer["error"]["code"] == METHOD_NOT_FOUND else 400, answer)
        else:
            await self._json(send, 404, _error(-1, RpcError(INVALID_REQUEST, "Not found",
                                                            f"nothing at {method} {path}")))

    def _limited(self, client: str) -> bool:
        """False when ``client`` is over its rate (the request must be refused)."""
        return self._limit.allow(PeerId(client), 1, trio.current_time())

    async def _websocket(self, client: str, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if scope["path"] != "/websocket":
            await send({"type": "websocket.close", "code": 4404})
            return
        await send({"type": "websocket.accept"})
        turn = trio.Lock()

        async def say(document: Any) -> None:
            async with turn:
                await send({"type": "websocket.send", "text": json.dumps(document)})

        subscriptions: dict[str, tuple[Any, Query]] = {}
        feed = self.events.subscribe()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._forward, feed, subscriptions, say)
                while True:
                    message = await receive()
                    if message["type"] != "websocket.receive":
                        break
                    text = message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")
                    if not self._limited(client):
                        await say(_error(-1, RpcError(RATE_LIMITED, "Too many requests",
                                                      f"more than {self.config.requests_per_minute} requests "
                                                      f"a minute from {client}")))
                    elif len(text) > self.config.max_body_bytes:
                        await say(_error(-1, RpcError(TOO_LARGE, "Request too large",
                                                      f"a message above {self.config.max_body_bytes} bytes")))
                    else:
                        await say(await self._ws_request(text, subscriptions))
                nursery.cancel_scope.cancel()
        finally:
            self.events.unsubscribe(feed)

    async def _ws_request(self, text: str, subscriptions: dict[str, tuple[Any, Query]]) -> Any:
        try:
            request = _loads(text)
        except (ValueError, RecursionError) as exc:
            return _error(None, RpcError(PARSE_ERROR, "Parse error", f"not JSON: {exc}"))
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or \
                not isinstance(request.get("method"), str):
            return _error(None, RpcError(INVALID_REQUEST, "Invalid Request",
                                         'a request needs "jsonrpc": "2.0" and a "method" string'))
        request_id, method = request.get("id"), request["method"]
        params = request.get("params") or {}
        query_text = params.get("query") if isinstance(params, dict) else None
        if method == "subscribe":
            if not isinstance(query_text, str):
                return _error(request_id, invalid("missing parameter 'query'"))
            try:
                query = Query.parse(query_text)
            except QueryError as exc:
                return _error(request_id, invalid(f"query: {exc}"))
            if len(subscriptions) >= MAX_SUBSCRIPTIONS_PER_CLIENT and query_text not in subscriptions:
                return _error(request_id, invalid(f"at most {MAX_SUBSCRIPTIONS_PER_CLIENT} subscriptions"))
            subscriptions[query_text] = (request_id, query)
            return {"jsonrpc": "2.0", "id": request_id, "result": {}}
        if method == "unsubscribe":
            if subscriptions.pop(query_text if isinstance(query_text, str) else "", None) is None:
                return _error(request_id, invalid(f"not subscribed to {query_text!r}"))
            return {"jsonrpc": "2.0", "id": request_id, "result": {}}
        if method == "unsubscribe_all":
            subscriptions.clear()
            return {"jsonrpc": "2.0", "id": request_id, "result": {}}
        return await self._call(request_id, method, request.get("params"))

    async def _forward(self, feed: Feed, subscriptions: dict[str, tuple[Any, Query]],
                       say: Callable[[Any], Awaitable[None]]) -> None:
        async for block, outcome in feed:
            for request_id, query in list(subscriptions.values()):
                for result in self.events.events(query, block, outcome):
                    await say({"jsonrpc": "2.0", "id": request_id, "result": result})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _body(self, receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.config.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _is_admin(self, scope: Scope) -> bool:
        """Whether the request carries the admin bearer token (``Authorization: Bearer …``)."""
        expected = f"Bearer {self.admin_token}".encode()
        return any(name == b"authorization" and hmac.compare_digest(value, expected)
                   for name, value in scope.get("headers", []))

    async def _post(self, body: bytes, admin: bool) -> Any:
        try:
            document = _loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return _error(None, RpcError(PARSE_ERROR, "Parse error", f"not JSON: {exc}"))
        if isinstance(document, list):
            if not document:
                return _error(None, RpcError(INVALID_REQUEST, "Invalid Request", "an empty batch"))
            if len(document) > self.config.max_batch:
                return _error(None, RpcError(INVALID_REQUEST, "Invalid Request",
                                             f"a batch of {len(document)} requests; the limit is "
                                             f"{self.config.max_batch}"))
            await self.methods.preverify(document)
            return [await self._one(request, admin) for request in document]
        return await self._one(document, admin)

    async def _one(self, request: Any, admin: bool) -> dict[str, Any]:
        if not isinstance(request, dict):
            return _error(None, RpcError(INVALID_REQUEST, "Invalid Request", "a request must be an object"))
        request_id = request.get("id")
        if request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            return _error(request_id, RpcError(INVALID_REQUEST, "Invalid Request",
                                               'a request needs "jsonrpc": "2.0" and a "method" string'))
        return await self._call(request_id, request["method"], request.get("params"), admin)

    async def _call(self, request_id: Any, method: str, params: Any, admin: bool = False) -> dict[str, Any]:
        started = time.perf_counter()
        if method in ADMIN_METHODS and not admin:
            return _error(request_id, RpcError(UNAUTHORIZED, "Unauthorized",
                                               f"{method} needs the node's admin token (the file "
                                               "rpc_token in its home) as 'Authorization: Bearer <token>'"))
        try:
            result = await self.methods.call(method, params)
            return {"jsonrpc": "2.0", "id": request_id, "result": result}
        except RpcError as exc:
            return _error(request_id, exc)
        except Exception:  # the server's edge: the client gets -32603, the log the traceback
            log.exception("RPC method failed", extra={"method": method})
            return _error(request_id, RpcError(INTERNAL_ERROR, "Internal error",
                                               f"{method} failed; see the node's log"))
        finally:
            if method in self.methods.table:
                self.metrics.rpc_latency.labels(method).observe(time.perf_counter() - started)

    async def _json(self, send: Send, status: int, document: Any) -> None:
        await self._respond(send, status, json.dumps(document).encode(), "application/json")

    @staticmethod
    async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _uri_value(text: str) -> Any:
    """A URI parameter as CometBFT reads it: "quoted" is a string, 0x… is hex bytes
    (kept as hex text here), a bare value as is."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _loads(text: str | bytes) -> Any:
    """JSON as RFC 8259 has it: ValueError for NaN, Infinity and numbers no float holds
    (Python reads them, and would echo them back as ids that are not JSON)."""
    return json.loads(text, parse_constant=_not_json, parse_float=_finite)


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token[:20]} is beyond any number this node reads")
    return value


async def run_server(app: RpcApp, host: str, port: int, *,
                     task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``host:port`` until cancelled; NetworkError at once if that
    address cannot be listened on (another node there, say)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise NetworkError(f"cannot serve RPC on {host}:{port}: {exc.strerror}; is another node "
                               "running there? (rpc.port, BIZRA_RPC_PORT or --rpc-port)") from None
    config = HypercornConfig()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 1.0
    status: TaskStatus = task_status
    while True:
        try:
            await serve(app, config, task_status=status)  # type: ignore[arg-type]
            return
        except Exception as exc:  # the server's edge: any failure of Hypercorn's own
            # Hypercorn 0.18 lets some client mistakes escape serve() (a request cut
            # short of its body, an HTTP/2 path that is not ASCII): the server starts
            # again, its open connections lost, and the node runs on.
            log.error("the RPC server failed and starts again", extra={"error": repr(exc)})
            status = trio.TASK_STATUS_IGNORED
            await trio.sleep(RESTART_DELAY_S)
