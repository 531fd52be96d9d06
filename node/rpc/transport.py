"""The RPC's HTTP/1.1 and WebSocket server: httptools (llhttp, in C) and wsproto driven
directly under trio, serving one ASGI application (:class:`node.rpc.server.RpcApp`)
with the parts of ASGI it uses (``http``, and ``websocket`` with the
``websocket.http.response`` extension).

One task per connection reads a request, runs the application and writes its answer,
then the next request of the keep-alive connection. What a client can make it hold is
bounded: ``max_connections`` open at once (more are closed as they are accepted), a
request head of ``HEAD_BYTES``, a WebSocket message of ``max_message_bytes`` (closed
with 1009 as its frames arrive), and time: a request must arrive whole within
``REQUEST_S`` of its first byte, an idle connection is closed after ``KEEP_ALIVE_S``,
and a client that does not read its answer within ``WRITE_S`` is cut. A malformed
request gets 400 (431 for a head too large, 505 for an HTTP version other than 1.0 and
1.1) with a JSON-RPC error saying what is wrong, and its connection is closed; nothing
a client sends ends the server.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalError
from wsproto.utilities import RemoteProtocolError as WsRemoteError

from chain.service import TaskStatus

log = logging.getLogger(__name__)

Message = dict[str, Any]
App = Callable[[dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
               Awaitable[None]]
HEAD_BYTES = 16 * 1024
"""The longest request line and headers."""
READ_BYTES = 64 * 1024
KEEP_ALIVE_S = 5.0
REQUEST_S = 10.0
WRITE_S = 10.0
MESSAGE_TOO_BIG = 1009
PROTOCOL_ERROR = 1002
INVALID_REQUEST = -32600


class _Gone(Exception):
    """The client closed the connection, broke it, or was too slow and was cut."""


class _Stream:
    """A client's connection: reads and writes with the server's time limits."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.closed = False

    async def read(self, deadline: float) -> bytes:
        """The next bytes from the client (``b""``: it closed); _Gone when none came by
        ``deadline`` (trio's clock) or the connection broke."""
        # A bare cancel scope: trio's move_on_after is a generator-based context
        # manager, which costs more than the read on a loaded server.
        with trio.CancelScope(deadline=deadline):
            try:
                return await self.stream.receive_some(READ_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _Gone from None
        raise _Gone

    async def write(self, data: bytes) -> None:
        """Send ``data``; _Gone (and the connection closed) when the client does not
        take it within ``WRITE_S`` or is gone."""
        if self.closed:
            raise _Gone
        with trio.CancelScope(deadline=trio.current_time() + WRITE_S) as scope:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.closed = True
                raise _Gone from None
        if scope.cancelled_caught:  # the client does not read: a half-sent answer ends it
            self.closed = True
            raise _Gone

    async def close(self) -> None:
        self.closed = True
        with trio.move_on_after(1):
            await self.stream.aclose()


class Server:
    """Serves ``app`` on listeners; ``max_message_bytes`` bounds a WebSocket message
    (characters of a text message, bytes of a binary one)."""

    def __init__(self, app: App, *, max_connections: int, max_message_bytes: int) -> None:
        self.app = app
        self.max_connections = max_connections
        self.max_message_bytes = max_message_bytes
        self.open = 0
        """Connections open now."""

    async def serve(self, listeners: Sequence[trio.SocketListener], *,
                    task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Accept connections on ``listeners`` until cancelled."""
        await trio.serve_listeners(self._connection, list(listeners), task_status=task_status)

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = _Stream(stream)
        if self.open >= self.max_connections:
            await conn.close()  # over the bound: closed before anything is read
            return
        self.open += 1
        try:
            await _Http(self, conn).run()
        except _Gone:
            pass
        except Exception:  # the server's edge: one connection's failure ends only it
            log.exception("an RPC connection failed")
        finally:
            self.open -= 1
            await conn.close()


@dataclass(frozen=True, slots=True)
class _Head:
    """A request's line and headers (names in lower case), as the parser read them."""

    method: bytes
    target: bytes
    version: str
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    upgrade: bool


_END = b"\x00end"
"""The event that ends a request (its body events are bytes)."""


class _Parser:
    """httptools' callbacks turned into events: a _Head, the body's bytes, _END; the
    requests of a pipelined read one after another."""

    def __init__(self) -> None:
        self.events: deque[_Head | bytes] = deque()
        self.parser = httptools.HttpRequestParser(self)
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.in_head = False
        self.head_bytes = 0
        self.rest: bytes | None = None
        """What followed a request asking to switch protocols (the parser reads no further)."""

    def feed(self, data: bytes) -> None:
        """Parse ``data``; _BadRequest when it is not HTTP/1.1 as this server takes it."""
        if self.rest is not None:
            self.rest += data
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.rest = data[upgrade.args[0]:]
        except httptools.HttpParserError as exc:
            text = str(exc)
            if "HTTP version" in text or "PRI" in text:
                raise _BadRequest(505, "this server speaks HTTP/1.1 only") from None
            raise _BadRequest(400, f"a malformed HTTP request: {text}") from None
        self.head_bytes = self.head_bytes + len(data) if self.in_head else 0
        if self.head_bytes > HEAD_BYTES:
            raise _BadRequest(431, f"a request line and headers above {HEAD_BYTES} bytes")

    def on_message_begin(self) -> None:
        self.target, self.headers, self.in_head = b"", [], True

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.in_head = False
        self.events.append(_Head(parser.get_method(), self.target, parser.get_http_version(), self.headers,
                                 parser.should_keep_alive(), parser.should_upgrade()))

    def on_body(self, body: bytes) -> None:
        self.events.append(body)

    def on_message_complete(self) -> None:
        self.events.append(_END)


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _Http:
    """One HTTP/1.1 connection, request after request, until it closes or upgrades."""

    def __init__(self, server: Server, conn: _Stream) -> None:
        self.server = server
        self.conn = conn
        self.parser = _Parser()
        self.deadline: float | None = None
        """When the request under way must have arrived whole (None: none is under way)."""
        try:
            sockname = conn.stream.socket.getsockname()
            peername = conn.stream.socket.getpeername()
        except OSError:  # reset before it was served
            raise _Gone from None
        self.server_address = (str(sockname[0]), int(sockname[1]))
        self.client = (str(peername[0]), int(peername[1]))

    async def run(self) -> None:
        while True:
            self.deadline = None
            head = await self.next()
            assert isinstance(head, _Head)  # a request's body never outlives its exchange
            if head.version not in ("1.0", "1.1"):
                await self.refuse(505, f"HTTP/{head.version} is not served here: this server speaks HTTP/1.1")
                return
            if head.upgrade and _wants_websocket(head):
                await _WebSocket(self, head).run()
                return
            exchange = _Exchange(self, head)
            await exchange.run()
            if not exchange.ended:
                exchange.ended = self._skip_body()  # what the app did not read, if it is here
            if not (exchange.ended and head.keep_alive) or self.parser.rest is not None:
                return  # must close, the body was not read whole (a refusal), or a switch asked

    async def next(self) -> _Head | bytes:
        """The next event, reading as needed (a request's first byte within
        ``KEEP_ALIVE_S``, the whole of it within ``REQUEST_S`` of that); a malformed
        request is refused here and ends the connection (_Gone)."""
        events = self.parser.events
        while not events:
            if self.parser.rest is not None:
                raise _Gone  # the parser reads no further after a request to switch protocols
            waiting = self.deadline is None
            data = await self.conn.read(trio.current_time() + KEEP_ALIVE_S if self.deadline is None
                                        else self.deadline)
            if not data:
                raise _Gone
            if waiting:
                self.deadline = trio.current_time() + REQUEST_S
            try:
                self.parser.feed(data)
            except _BadRequest as exc:
                await self.refuse(exc.status, str(exc))
                raise _Gone from None
        return events.popleft()

    def _skip_body(self) -> bool:
        """Drop the body events already read; whether the request's end was among them."""
        events = self.parser.events
        while events:
            if events.popleft() is _END:
                return True
        return False

    async def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, *,
                      keep_alive: bool = True, with_body: bool = True) -> None:
        """Write an answer; its ``content-length`` is the body's whatever ``headers`` say."""
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _reason(status))]
        for name, value in headers:
            if name.lower() == b"content-length":
                continue
            if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
                raise ValueError(f"a header that would split the answer: {name!r}")
            lines.append(b"%s: %s\r\n" % (name, value))
        lines.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        if with_body:
            lines.append(body)
        await self.conn.write(b"".join(lines))

    async def refuse(self, status: int, data: str) -> None:
        """Answer a request the server itself refuses: ``status``, and a JSON-RPC error
        whose ``data`` says why; the connection then closes."""
        error = {"code": INVALID_REQUEST, "message": "Invalid Request", "data": data}
        body = json.dumps({"jsonrpc": "2.0", "id": -1, "error": error})
        await self.respond(status, [(b"content-type", b"application/json")], body.encode(), keep_alive=False)

    def scope(self, kind: str, head: _Head) -> dict[str, Any]:
        target = head.target
        if not target.startswith(b"/"):  # absolute form (http://host/path) or *
            after = target.split(b"://", 1)[1] if b"://" in target else b""
            target = b"/" + after.split(b"/", 1)[1] if b"/" in after else b"/"
        raw_path, _, query = target.partition(b"?")
        return {"type": kind, "asgi": {"version": "3.0"}, "http_version": head.version,
                "method": head.method.decode("latin-1"), "scheme": "ws" if kind == "websocket" else "http",
                "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path, "query_string": query,
                "root_path": "", "headers": head.headers, "client": self.client,
                "server": self.server_address, "subprotocols": [],
                "extensions": {"websocket.http.response": {}} if kind == "websocket" else {}}


@functools.cache
def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _wants_websocket(head: _Head) -> bool:
    if head.method != b"GET":
        return False
    return any(name == b"upgrade" and value.strip().lower() == b"websocket" for name, value in head.headers)


class _Exchange:
    """One HTTP request and its answer: the ASGI ``http`` connection the app sees."""

    def __init__(self, http: _Http, head: _Head) -> None:
        self.http = http
        self.head = head
        self.ended = False
        """Whether the request's end has been read."""
        self.gone = False
        self.start: Message | None = None
        self.body: list[bytes] = []
        self.finished = False

    async def run(self) -> None:
        try:
            await self.http.server.app(self.http.scope("http", self.head), self.receive, self.send)
        except _Gone:
            raise
        except Exception:  # the server's edge: the app failed; the client still gets an answer
            log.exception("the RPC application failed", extra={"path": self.head.target[:200]})
            if self.start is None and not self.finished:
                await self.http.refuse(500, "the node failed to answer; see its log")
                raise _Gone from None
        if not self.finished:
            raise _Gone  # the app gave no whole answer: the connection cannot go on

    async def receive(self) -> Message:
        if self.ended or self.gone:
            return {"type": "http.disconnect"}
        http = self.http
        events = http.parser.events
        if not events and any(n == b"expect" and v.lower() == b"100-continue" for n, v in self.head.headers):
            await http.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunks = []
        try:
            while True:
                event = events.popleft() if events else await http.next()
                if event is _END:
                    self.ended = True
                    break
                assert isinstance(event, bytes)
                chunks.append(event)
                if not events:
                    break
        except _Gone:
            self.gone = True
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"".join(chunks), "more_body": not self.ended}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.start = message
            return
        if kind != "http.response.body" or self.start is None:
            raise RuntimeError(f"an ASGI http message this server does not take here: {kind}")
        self.body.append(message.get("body", b""))
        if message.get("more_body"):
            return  # answers go out whole, with their length
        start, self.start = self.start, None
        self.finished = True
        await self.http.respond(start["status"], list(start.get("headers", [])), b"".join(self.body),
                                keep_alive=self.head.keep_alive, with_body=self.head.method != b"HEAD")


class _WebSocket:
    """A WebSocket connection after its upgrade request: the ASGI ``websocket``
    connection the app sees. Writes go out one at a time (a lock), whichever of the
    app's tasks makes them."""

    def __init__(self, http: _Http, head: _Head) -> None:
        self.http = http
        self.head = head
        self.ws = WSConnection(ConnectionType.SERVER)
        self.turn = trio.Lock()
        self.connected = False
        self.accepted = False
        self.ended = False
        self.pending: list[Message] = []
        self.text: list[str] = []
        self.data: list[bytes] = []
        self.size = 0

    async def run(self) -> None:
        try:
            self.ws.initiate_upgrade_connection(self.head.headers, self.head.target)
        except WsRemoteError as exc:
            await self.http.refuse(400, f"a malformed WebSocket upgrade: {exc}")
            return
        list(self.ws.events())  # the upgrade request itself, which the scope carries
        if self.http.parser.rest:
            self.ws.receive_data(self.http.parser.rest)
        code = 1000
        try:
            await self.http.server.app(self.http.scope("websocket", self.head), self.receive, self.send)
        except Exception:  # the server's edge
            log.exception("the RPC application failed on a WebSocket")
            code = 1011
        if self.accepted and not self.ended:
            self.ended = True
            await self._write(CloseConnection(code=code))

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        while not self.pending:
            if self.ended:
                return {"type": "websocket.disconnect", "code": 1006}
            try:
                data = await self.http.conn.read(math.inf)  # subscribers may be quiet for long
            except _Gone:
                data = b""
            if not data:
                self.ended = True
                return {"type": "websocket.disconnect", "code": 1006}
            try:
                self.ws.receive_data(data)
            except WsRemoteError:
                self.ended = True
                return {"type": "websocket.disconnect", "code": PROTOCOL_ERROR}
            await self._events()
        return self.pending.pop(0)

    async def _events(self) -> None:
        for event in self.ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                if isinstance(event, TextMessage):
                    self.text.append(event.data)
                else:
                    self.data.append(bytes(event.data))
                self.size += len(event.data)
                if self.size > self.server_max:
                    await self._close(MESSAGE_TOO_BIG, f"a message above {self.server_max} bytes")
                    return
                if event.message_finished:
                    message: Message = ({"type": "websocket.receive", "text": "".join(self.text)}
                                        if isinstance(event, TextMessage) else
                                        {"type": "websocket.receive", "bytes": b"".join(self.data)})
                    self.pending.append(message)
                    self.text, self.data, self.size = [], [], 0
            elif isinstance(event, Ping):
                await self._write(event.response())
            elif isinstance(event, CloseConnection):
                if not self.ended:
                    self.ended = True
                    await self._write(event.response())
                self.pending.append({"type": "websocket.disconnect", "code": event.code})
                return

    @property
    def server_max(self) -> int:
        return self.http.server.max_message_bytes

    async def _close(self, code: int, reason: str) -> None:
        if not self.ended:
            self.ended = True
            await self._write(CloseConnection(code=code, reason=reason))
        self.pending.append({"type": "websocket.disconnect", "code": code})

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted = True
            await self._write(AcceptConnection())
        elif kind == "websocket.send":
            if self.ended:
                return  # the peer is going: what is left to say is dropped
            text = message.get("text")
            await self._write(TextMessage(data=text) if text is not None
                              else BytesMessage(data=message.get("bytes") or b""))
        elif kind == "websocket.close":
            if not self.accepted:
                await self._write(RejectConnection(status_code=403))
            elif not self.ended:
                self.ended = True
                await self._write(CloseConnection(code=message.get("code", 1000),
                                                  reason=message.get("reason") or None))
        elif kind == "websocket.http.response.start":
            await self._write(RejectConnection(status_code=message["status"],
                                               headers=message.get("headers", []), has_body=True))
        elif kind == "websocket.http.response.body":
            await self._write(RejectData(data=message.get("body", b""),
                                         body_finished=not message.get("more_body")))
        else:
            raise RuntimeError(f"an ASGI websocket message this server does not take: {kind}")

    async def _write(self, event: Any) -> None:
        """Send ``event``; when the client is gone (or the connection closing), nothing:
        the next read tells the app it disconnected."""
        async with self.turn:
            try:
                await self.http.conn.write(self.ws.send(event))
            except (_Gone, WsLocalError):
                self.ended = True
