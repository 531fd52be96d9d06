"""The RPC server (§9): an ASGI application, served by :mod:`node.rpc.transport`.

- ``POST /``: JSON-RPC 2.0, one request or a batch (at most ``rpc.max_batch``);
- ``GET /<method>?name=value``: the same methods with URI parameters (as CometBFT:
  strings may be quoted, bytes may be ``0x…`` hex);
- ``/websocket``: JSON-RPC over a WebSocket, with ``subscribe``, ``unsubscribe`` and
  ``unsubscribe_all`` (:mod:`node.rpc.events`) besides every method;
- ``GET /health`` (200 while the node runs), ``GET /ready`` (200 when caught up and
  connected, else 503 with the reason), ``GET /metrics`` (Prometheus text).

Admin methods (``dial_peers``, ``dial_seeds``, ``bizra_ban_peer``, ``bizra_block_peers``)
need the token in the node's home (``rpc_token``) as ``Authorization: Bearer <token>``;
over a WebSocket they are refused.

Limits (docs/rpc.md lists them): a body above ``rpc.max_body_bytes`` gets 413 (refused
as it streams in; the transport closes a WebSocket message above it with 1009); each client
address has ``rpc.requests_per_minute`` tokens, one per HTTP request, per call of a batch
and per WebSocket message, and past them gets 429; a client holds at most
``rpc.max_websocket_connections_per_client`` WebSocket connections, all clients together
``rpc.max_websocket_connections``. Every refusal carries a JSON-RPC error saying what is
wrong. No request, however malformed, gets a stack trace or a 500: an unexpected failure
is logged with its traceback and answered with -32603.

Browsers: with ``rpc.cors_allowed_origins`` set, answers carry CORS headers as CometBFT's
do; a WebSocket upgrade from a web page (an ``Origin`` header) is refused unless its
origin is allowed there, or is the node's own and names the node by an IP address,
``localhost`` or one of ``rpc.allowed_hosts`` (a page reaching the node by another name
may have rebound that name to it: DNS rebinding). With ``rpc.allowed_hosts`` set, every
request's ``Host`` must be one of those, an IP address or ``localhost``.
"""

from __future__ import annotations

import functools
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import trio

from chain.errors import NetworkError
from chain.service import TaskStatus
from node.config import RpcConfig
from node.metrics import CONTENT_TYPE, Metrics
from node.rpc import jsontext
from node.rpc.access import ClientBudget, host_and_port, is_ip, same_site
from node.rpc.events import MAX_SUBSCRIPTIONS_PER_CLIENT, EventBus, Query, QueryError
from node.rpc.methods import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    Methods,
    RpcError,
    invalid,
)
from node.rpc.transport import Server

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
RATE_LIMITED = -32000
SERVER_ERROR = -32000
"""CometBFT's code for a server error, such as a subscription it canceled."""
CANCELED = "subscription was canceled (reason: client is not pulling messages fast enough)"
TOO_LARGE = -32001
UNAUTHORIZED = -32002
TOO_MANY_CONNECTIONS = -32003
FORBIDDEN = -32004
ADMIN_METHODS = frozenset({"dial_peers", "dial_seeds", "bizra_ban_peer", "bizra_block_peers"})
BULK_METHOD = "bizra_broadcast_txs"
"""Each of its txs costs a request token, as a call of a batch does; HTTP POST only."""
"""Methods that change what the node does, not only what it says: bearer token only."""
CORS_METHODS = ("HEAD", "GET", "POST")
CORS_HEADERS = ("Origin", "Accept", "Content-Type", "X-Requested-With", "X-Server-Time")
"""CometBFT's default ``cors_allowed_methods`` and ``cors_allowed_headers``."""


def _error(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


@dataclass(frozen=True, slots=True)
class _Reply:
    """An HTTP answer: its status, its JSON document and any headers besides the type."""

    status: int
    document: Any
    headers: tuple[tuple[bytes, bytes], ...] = ()


class _ClientGone(Exception):
    """The client disconnected before its request's body was whole."""


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
        self.budget = ClientBudget(config.requests_per_minute)
        self.websockets: dict[str, int] = {}
        """Open WebSocket connections by client address."""
        self._origins = {origin.lower() for origin in config.cors_allowed_origins}
        self._hosts = {host.lower().rstrip(".") for host in config.allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("unknown", 0))[0]
        headers = _header_map(scope)
        if scope["type"] == "websocket":
            await self._websocket(client, scope, headers, receive, send)
        else:
            await self._http(client, scope, headers, receive, send)

    # --- HTTP --------------------------------------------------------------------------

    async def _http(self, client: str, scope: Scope, headers: dict[bytes, bytes], receive: Receive,
                    send: Send) -> None:
        path, method = scope["path"], scope["method"]
        cors = self._cors(method, headers)
        if cors:
            send = _adding_headers(send, cors)
        if not self.budget.take(client, 1, trio.current_time()):
            await self._reply(send, self._too_many(client, 1, -1))
            return
        if self._hosts and not self._host_known(headers.get(b"host")):
            await self._reply(send, _Reply(403, _error(-1, self._unknown_host(headers.get(b"host")))))
            return
        if method == "OPTIONS" and self._origins and b"access-control-request-method" in headers:
            await self._respond(send, 200, b"", None)  # a CORS preflight: the headers are the answer
        elif method == "POST" and path == "/":
            await self._post_route(client, scope, headers, receive, send)
        elif method in ("GET", "HEAD") and path in PAGE_FILES:
            name, content_type = PAGE_FILES[path]
            await self._respond(send, 200, _page_file(name), content_type, PAGE_HEADERS)
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

    async def _post_route(self, client: str, scope: Scope, headers: dict[bytes, bytes], receive: Receive,
                          send: Send) -> None:
        """``POST /``: the body, read no further than ``rpc.max_body_bytes``, then its
        request or batch."""
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and (len(declared) > 18 or int(declared) > self.config.max_body_bytes):
            await self._reply(send, self._too_large())  # said to be too large: not read at all
            return
        try:
            body = await self._body(receive)
        except _ClientGone:
            return
        if body is None:
            await self._reply(send, self._too_large())
            return
        await self._reply(send, await self._post(client, body, self._is_admin(scope)))

    def _too_large(self) -> _Reply:
        return _Reply(413, _error(-1, RpcError(TOO_LARGE, "Request too large",
                                               f"the body is above {self.config.max_body_bytes} bytes")))

    def _too_many(self, client: str, cost: int, request_id: Any) -> _Reply:
        """HTTP 429 for a request (``cost`` 1) or a batch of ``cost`` calls that
        ``client``'s tokens do not cover; ``Retry-After`` says when they will."""
        per_minute = self.config.requests_per_minute
        if cost == 1:
            data = f"more than {per_minute} requests a minute from {client}"
        elif cost > per_minute:
            data = (f"{cost} calls (a batch's calls, or the txs of {BULK_METHOD}) count as {cost} requests, "
                    f"more than the {per_minute} a minute a client may make: send smaller batches")
        else:
            data = (f"{cost} calls (a batch's calls, or the txs of {BULK_METHOD}) count as {cost} requests, "
                    f"more than {client} has left of its {per_minute} requests a minute; none was run")
        wait = self.budget.wait(client, cost, trio.current_time())
        retry = () if wait is None else ((b"retry-after", str(max(1, math.ceil(wait))).encode()),)
        return _Reply(429, _error(request_id, RpcError(RATE_LIMITED, "Too many requests", data)), retry)

    def _cors(self, method: str, headers: dict[bytes, bytes]) -> Headers:
        """The CORS headers of the answer, as CometBFT's (rs/cors) would be: none unless
        ``rpc.cors_allowed_origins`` is set; ``Vary`` always then; and when the request's
        ``Origin`` is allowed and its method (for a preflight: the method and headers it
        asks for) is one CORS allows, ``Access-Control-Allow-Origin`` (and for a
        preflight, the allowed method and headers)."""
        if not self._origins:
            return []
        preflight = method == "OPTIONS" and b"access-control-request-method" in headers
        out: Headers = [(b"vary", b"Origin")]
        if preflight:
            out += [(b"vary", b"Access-Control-Request-Method"), (b"vary", b"Access-Control-Request-Headers")]
        origin = headers.get(b"origin")
        if origin is None or not self._origin_allowed(origin):
            return out
        if preflight:
            asked = headers[b"access-control-request-method"].decode("latin-1").strip().upper()
            asked_headers = [h.strip() for h in headers.get(b"access-control-request-headers", b"")
                             .decode("latin-1").split(",") if h.strip()]
            allowed_headers = {h.lower() for h in CORS_HEADERS}
            if asked not in (*CORS_METHODS, "OPTIONS") or any(h.lower() not in allowed_headers
                                                               for h in asked_headers):
                return out
            out.append((b"access-control-allow-methods", asked.encode("latin-1")))
            if asked_headers:
                out.append((b"access-control-allow-headers", ", ".join(asked_headers).encode("latin-1")))
        elif method not in CORS_METHODS:
            return out
        out.append((b"access-control-allow-origin", b"*" if "*" in self._origins else origin))
        return out

    def _origin_allowed(self, origin: bytes) -> bool:
        """Whether ``rpc.cors_allowed_origins`` allows ``origin`` (``*``: every one)."""
        return "*" in self._origins or origin.decode("latin-1").lower() in self._origins

    def _host_known(self, host: bytes | None) -> bool:
        """Whether a ``Host`` header names the node by an IP address, ``localhost`` or
        one of ``rpc.allowed_hosts`` (``*``: any name)."""
        if "*" in self._hosts:
            return True
        name = host_and_port(host.decode("latin-1"))[0] if host is not None else None
        return name is not None and (name == "localhost" or name in self._hosts or is_ip(name))

    def _unknown_host(self, host: bytes | None) -> RpcError:
        named = "no Host header" if host is None else f"the Host {host.decode('latin-1')!r}"
        return RpcError(FORBIDDEN, "Forbidden", f"{named} is not an IP address, localhost or one of "
                                                "rpc.allowed_hosts")

    async def _body(self, receive: Receive) -> bytes | None:
        """The request's body; ``None`` as soon as it grows past ``rpc.max_body_bytes``
        (the rest is not read); _ClientGone if the client left first."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
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

    async def _post(self, client: str, body: bytes, admin: bool) -> _Reply:
        """The answer to a ``POST /`` body. A batch of n calls costs n tokens (the one
        its request took already, and n - 1 more): when ``client`` lacks them, none of
        its calls runs and the whole batch is answered 429."""
        try:
            document = jsontext.loads(body)
        except ValueError as exc:
            return _Reply(200, _error(None, RpcError(PARSE_ERROR, "Parse error", f"not JSON: {exc}")))
        if not isinstance(document, list):
            extra = _calls(document) - 1
            if extra and not self.budget.take(client, extra, trio.current_time()):
                return self._too_many(client, extra + 1, document.get("id"))
            return _Reply(200, await self._one(document, admin))
        if not document:
            return _Reply(200, _error(None, RpcError(INVALID_REQUEST, "Invalid Request", "an empty batch")))
        if len(document) > self.config.max_batch:
            return _Reply(200, _error(None, RpcError(INVALID_REQUEST, "Invalid Request",
                                                     f"a batch of {len(document)} requests; the limit is "
                                                     f"{self.config.max_batch}")))
        cost = sum(map(_calls, document))
        if not self.budget.take(client, cost - 1, trio.current_time()):
            return self._too_many(client, cost, None)
        await self.methods.preverify(document)
        return _Reply(200, [await self._one(request, admin) for request in document])

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

    async def _reply(self, send: Send, reply: _Reply) -> None:
        await self._respond(send, reply.status, jsontext.dumps(reply.document), "application/json",
                            reply.headers)

    async def _json(self, send: Send, status: int, document: Any) -> None:
        await self._respond(send, status, jsontext.dumps(document), "application/json")

    @staticmethod
    async def _respond(send: Send, status: int, body: bytes, content_type: str | None,
                       extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
        headers = [(b"content-type", content_type.encode())] if content_type else []
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    # --- WebSocket ---------------------------------------------------------------------

    async def _websocket(self, client: str, scope: Scope, headers: dict[bytes, bytes], receive: Receive,
                         send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        refusal = self._upgrade_refusal(client, scope["path"], headers)
        if refusal is not None:
            await self._refuse_upgrade(scope, send, refusal)
            return
        self.websockets[client] = self.websockets.get(client, 0) + 1
        try:
            await send({"type": "websocket.accept"})
            await self._session(client, receive, send)
        finally:
            left = self.websockets.pop(client) - 1
            if left:
                self.websockets[client] = left

    def _upgrade_refusal(self, client: str, path: str, headers: dict[bytes, bytes]) -> _Reply | None:
        """Why a WebSocket upgrade is refused (``None``: it is not), in this order: no
        such path (404); a ``Host`` that ``rpc.allowed_hosts`` does not know (403); a web
        page's origin that may not connect (403); no token left (429); the client's
        connections at their cap (429); all clients' at theirs (503)."""
        host = headers.get(b"host")
        if path != "/websocket":
            return _Reply(404, _error(-1, RpcError(INVALID_REQUEST, "Not found", f"no WebSocket at {path}")))
        if self._hosts and not self._host_known(host):
            return _Reply(403, _error(-1, self._unknown_host(host)))
        origin = headers.get(b"origin")
        refused = self._origin_refusal(origin, host) if origin is not None else None
        if refused is not None:
            return _Reply(403, _error(-1, RpcError(FORBIDDEN, "Forbidden", refused)))
        if not self.budget.take(client, 1, trio.current_time()):
            return self._too_many(client, 1, -1)
        per_client = self.config.max_websocket_connections_per_client
        if self.websockets.get(client, 0) >= per_client:
            return _Reply(429, _error(-1, RpcError(TOO_MANY_CONNECTIONS, "Too many connections",
                                                   f"{client} has {per_client} WebSocket connections open "
                                                   "already, the most a client may")))
        total = self.config.max_websocket_connections
        if sum(self.websockets.values()) >= total:
            return _Reply(503, _error(-1, RpcError(TOO_MANY_CONNECTIONS, "Too many connections",
                                                   f"the node serves {total} WebSocket connections already, "
                                                   "the most it takes; retry later")))
        return None

    def _origin_refusal(self, origin: bytes, host: bytes | None) -> str | None:
        """Why a web page of ``origin`` may not open a WebSocket to the node it reached
        as ``host`` (``None``: it may): its origin is neither allowed by
        ``rpc.cors_allowed_origins`` nor the node's own, or it is the node's own but
        names the node by neither an IP address, ``localhost`` nor a name in
        ``rpc.allowed_hosts`` (DNS rebinding: another site's name pointed at the node)."""
        if self._origin_allowed(origin):
            return None
        page, named = origin.decode("latin-1"), (host or b"").decode("latin-1")
        if not same_site(page, named):
            return f"a web page of {page!r} may not connect: the origin is not in rpc.cors_allowed_origins"
        if not self._host_known(host):
            return (f"a web page may connect to this node by its IP address, localhost or a name in "
                    f"rpc.allowed_hosts, not by {named!r}")
        return None

    @staticmethod
    async def _refuse_upgrade(scope: Scope, send: Send, reply: _Reply) -> None:
        """Refuse a WebSocket upgrade with ``reply`` as an HTTP answer where the server
        can send one (the ASGI ``websocket.http.response`` extension, which the node's
        transport has); else close it with a code and the reason."""
        body = jsontext.dumps(reply.document)
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send({"type": "websocket.http.response.start", "status": reply.status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), *reply.headers]})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            code = {403: 1008, 404: 4404}.get(reply.status, 1013)
            await send({"type": "websocket.close", "code": code,
                        "reason": reply.document["error"]["data"][:120]})

    async def _session(self, client: str, receive: Receive, send: Send) -> None:
        """An accepted WebSocket connection: each message a request (one token of the
        client's budget, at most ``rpc.max_body_bytes``), events of its subscriptions."""
        turn = trio.Lock()

        async def say(document: Any) -> None:
            async with turn:  # one writer: answers and events never interleave mid-message
                await send({"type": "websocket.send", "text": jsontext.dumps(document).decode()})

        subscriptions: dict[str, tuple[Any, Query]] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._forward, subscriptions, say)
            while (message := await receive())["type"] == "websocket.receive":
                await say(await self._ws_answer(client, message, subscriptions))
            nursery.cancel_scope.cancel()

    async def _ws_answer(self, client: str, message: dict[str, Any],
                         subscriptions: dict[str, tuple[Any, Query]]) -> Any:
        """The answer to one WebSocket message: a refusal when the client has no token
        left or the message is above ``rpc.max_body_bytes``, else the request's."""
        text, size = _message_text(message)
        if not self.budget.take(client, 1, trio.current_time()):
            return _error(-1, RpcError(RATE_LIMITED, "Too many requests",
                                       f"more than {self.config.requests_per_minute} requests "
                                       f"a minute from {client}"))
        if size > self.config.max_body_bytes:
            return _error(-1, RpcError(TOO_LARGE, "Request too large",
                                       f"a message above {self.config.max_body_bytes} bytes"))
        return await self._ws_request(text, subscriptions)

    async def _ws_request(self, text: str, subscriptions: dict[str, tuple[Any, Query]]) -> Any:
        try:
            request = jsontext.loads(text)
        except ValueError as exc:
            return _error(None, RpcError(PARSE_ERROR, "Parse error", f"not JSON: {exc}"))
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or \
                not isinstance(request.get("method"), str):
            return _error(None, RpcError(INVALID_REQUEST, "Invalid Request",
                                         'a request needs "jsonrpc": "2.0" and a "method" string'))
        request_id, method = request.get("id"), request["method"]
        if method == BULK_METHOD:
            return _error(request_id, RpcError(INVALID_REQUEST, "Invalid Request",
                                               f"{BULK_METHOD} is served over HTTP POST only"))
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

    async def _forward(self, subscriptions: dict[str, tuple[Any, Query]],
                       say: Callable[[Any], Awaitable[None]]) -> None:
        """Send the session's subscriptions their events, from a feed of every committed
        block. When the bus cuts the feed (the client fell ``QUEUE`` blocks behind), each
        subscription gets CometBFT's cancellation error once the queued events are sent,
        and a new feed serves the subscriptions made after."""
        while True:
            feed = self.events.subscribe()
            try:
                async for block, outcome, app_hash in feed:
                    for request_id, query in list(subscriptions.values()):
                        for result in self.events.events(query, block, outcome, app_hash):
                            await say({"jsonrpc": "2.0", "id": request_id, "result": result})
            finally:
                self.events.unsubscribe(feed)
            for request_id, _ in list(subscriptions.values()):
                await say(_error(request_id, RpcError(SERVER_ERROR, "Server error", CANCELED)))
            subscriptions.clear()


PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
              "/ui/style.css": ("style.css", "text/css; charset=utf-8")}
"""The status page (node/rpc/page): read-only, from the node's own RPC and WebSocket."""
PAGE_HEADERS = ((b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
                                              b"connect-src 'self'; img-src 'self'; frame-ancestors 'none'"),
                (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-cache"))
"""The page may load only its own files and talk only to this node; no site may frame it."""


@functools.cache
def _page_file(name: str) -> bytes:
    return (resources.files("node.rpc") / "page" / name).read_bytes()


def _header_map(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name; of a repeated one, the first."""
    out: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", []):
        out.setdefault(bytes(name).lower(), bytes(value))
    return out


def _calls(request: Any) -> int:
    """The request tokens a call costs: one, or one per tx of a ``bizra_broadcast_txs``."""
    if isinstance(request, dict) and request.get("method") == BULK_METHOD:
        params = request.get("params")
        txs = params.get("txs") if isinstance(params, dict) else params[0] if isinstance(params, list) \
            and params else None
        if isinstance(txs, list) and txs:
            return len(txs)
    return 1


def _adding_headers(send: Send, extra: Headers) -> Send:
    """``send`` with ``extra`` added to the headers of the answer it starts."""
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)
    return sending


def _message_text(message: dict[str, Any]) -> tuple[str, int]:
    """A WebSocket message's text and its size in bytes (UTF-8 for a text message)."""
    text = message.get("text")
    if text is not None:
        return text, len(text.encode("utf-8", "surrogatepass"))
    data = message.get("bytes") or b""
    return data.decode("utf-8", "replace"), len(data)


def _uri_value(text: str) -> Any:
    """A URI parameter as CometBFT reads it: "quoted" is a string, 0x… is hex bytes
    (kept as hex text here), a bare value as is."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


async def run_server(app: RpcApp, host: str, port: int, *,
                     task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``host:port`` until cancelled; NetworkError at once if that
    address cannot be listened on (another node there, say)."""
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise NetworkError(f"cannot serve RPC on {host}:{port}: {exc.strerror or exc}; is another node "
                           "running there? (rpc.port, BIZRA_RPC_PORT or --rpc-port)") from None
    server = Server(app, max_connections=app.config.max_open_connections,
                    max_message_bytes=app.config.max_body_bytes)
    await server.serve(listeners, task_status=task_status)
