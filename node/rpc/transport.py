"""The RPC's HTTP/1.1 and WebSocket server: h11 and wsproto driven directly under trio,
serving one ASGI application (:class:`node.rpc.server.RpcApp`) with the parts of ASGI
it uses (``http``, and ``websocket`` with the ``websocket.http.response`` extension).

One task per connection reads a request, runs the application and writes its answer,
then the next request of the keep-alive connection. What a client can make it hold is
bounded: ``max_connections`` open at once (more are closed as they are accepted), a
request head of ``HEAD_BYTES``, a WebSocket message of ``max_message_bytes`` (closed
with 1009 as its frames arrive), and time: a request must arrive within ``REQUEST_S``,
an idle connection is closed after ``KEEP_ALIVE_S``, and a client that does not read
its answer within ``WRITE_S`` is cut. A malformed request gets 400 (431 for a head too
large, 505 for an HTTP version other than 1.0 and 1.1) with a JSON-RPC error saying
what is wrong, and its connection is closed; nothing a client sends ends the server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote

import h11
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

    async def read(self, timeout: float) -> bytes:
        """The next bytes from the client (``b""``: it closed); _Gone when none came
        within ``timeout`` or the connection broke."""
        # A bare cancel scope: trio's move_on_after is a generator-based context
        # manager, which costs more than the read on a loaded server.
        with trio.CancelScope(deadline=trio.current_time() + timeout):
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


def refusal(status: int, data: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An HTTP answer for a request the server itself refuses: ``status`` and a JSON-RPC
    error whose ``data`` says why."""
    body = json.dumps({"jsonrpc": "2.0", "id": -1, "error": {"code": INVALID_REQUEST,
                                                              "message": "Invalid Request", "data": data}})
    encoded = body.encode()
    return status, [(b"content-type", b"application/json"), (b"content-length", str(len(encoded)).encode()),
                    (b"connection", b"close")], encoded


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


class _Http:
    """One HTTP/1.1 connection, request after request, until it closes or upgrades."""

    def __init__(self, server: Server, conn: _Stream) -> None:
        self.server = server
        self.conn = conn
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_BYTES)
        try:
            sockname = conn.stream.socket.getsockname()
            peername = conn.stream.socket.getpeername()
        except OSError:  # reset before it was served
            raise _Gone from None
        self.server_address = (str(sockname[0]), int(sockname[1]))
        self.client = (str(peername[0]), int(peername[1]))

    async def run(self) -> None:
        while True:
            idle = self.h11.their_state is h11.IDLE
            event = await self._next(KEEP_ALIVE_S if idle else REQUEST_S)
            if not isinstance(event, h11.Request):
                return  # closed by the client
            if event.http_version not in (b"1.0", b"1.1"):
                await self._refuse(505, f"HTTP/{event.http_version.decode('latin-1')} is not served here: "
                                        "this server speaks HTTP/1.1")
                return
            if _wants_websocket(event):
                await _WebSocket(self, event).run()
                return
            await _Exchange(self, event).run()
            if self.h11.their_state is h11.SEND_BODY:
                self.available()  # what the app did not read (a GET's end, say) if it is here
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return  # must close, or the body was not read whole (a refusal)
            self.h11.start_next_cycle()

    async def _next(self, timeout: float) -> Any:
        """The next h11 event, reading as needed; a malformed request is refused here and
        ends the connection (_Gone)."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._refuse(exc.error_status_hint, f"a malformed HTTP request: {exc}")
                raise _Gone from None
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self.conn.read(timeout))

    def available(self) -> list[Any]:
        """The h11 events already received, without reading (a body's data, its end)."""
        events: list[Any] = []
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return events
            events.append(event)
            if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return events

    async def send(self, *events: Any) -> None:
        await self.conn.write(b"".join(self.h11.send(e) or b"" for e in events))

    async def _refuse(self, status: int, data: str) -> None:
        status, headers, body = refusal(status, data)
        with contextlib.suppress(h11.LocalProtocolError):  # h11 cannot answer in this state
            await self.send(h11.Response(status_code=status, headers=headers), h11.Data(data=body),
                            h11.EndOfMessage())

    def scope(self, kind: str, request: h11.Request) -> dict[str, Any]:
        target = request.target
        if not target.startswith(b"/"):  # absolute form (http://host/path) or *
            after = target.split(b"://", 1)[1] if b"://" in target else b""
            target = b"/" + after.split(b"/", 1)[1] if b"/" in after else b"/"
        raw_path, _, query = target.partition(b"?")
        return {"type": kind, "asgi": {"version": "3.0"}, "http_version": request.http_version.decode(),
                "method": request.method.decode("latin-1"), "scheme": "ws" if kind == "websocket" else "http",
                "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path, "query_string": query,
                "root_path": "", "headers": list(request.headers), "client": self.client,
                "server": self.server_address, "subprotocols": [],
                "extensions": {"websocket.http.response": {}} if kind == "websocket" else {}}


def _wants_websocket(request: h11.Request) -> bool:
    if request.method != b"GET":
        return False
    upgrade = connection = False
    for name, value in request.headers:
        if name == b"upgrade" and value.strip().lower() == b"websocket":
            upgrade = True
        elif name == b"connection" and b"upgrade" in value.lower():
            connection = True
    return upgrade and connection


class _Exchange:
    """One HTTP request and its answer: the ASGI ``http`` connection the app sees."""

    def __init__(self, http: _Http, request: h11.Request) -> None:
        self.http = http
        self.request = request
        self.body_done = False
        self.start: Message | None = None
        self.finished = False

    async def run(self) -> None:
        try:
            await self.http.server.app(self.http.scope("http", self.request), self.receive, self.send)
        except _Gone:
            raise
        except Exception:  # the server's edge: the app failed; the client still gets an answer
            log.exception("the RPC application failed", extra={"path": self.request.target[:200]})
            if self.start is None and not self.finished:
                status, headers, body = refusal(500, "the node failed to answer; see its log")
                await self.http.send(h11.Response(status_code=status, headers=headers),
                                     h11.Data(data=body), h11.EndOfMessage())
                self.finished = True
        if not self.finished:
            raise _Gone  # the app gave no whole answer: the connection cannot go on

    async def receive(self) -> Message:
        if self.body_done:
            return {"type": "http.disconnect"}
        http = self.http
        if http.h11.they_are_waiting_for_100_continue:
            await http.send(h11.InformationalResponse(status_code=100, headers=[]))
        try:
            events = http.available() or [await http._next(REQUEST_S)]
        except (_Gone, h11.RemoteProtocolError):
            self.body_done = True
            return {"type": "http.disconnect"}
        chunks = [e.data for e in events if isinstance(e, h11.Data)]
        ended = isinstance(events[-1], h11.EndOfMessage)
        if not ended and not chunks:
            self.body_done = True
            return {"type": "http.disconnect"}
        self.body_done = ended
        return {"type": "http.request", "body": b"".join(chunks), "more_body": not ended}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.start = message
            return
        if kind != "http.response.body":
            raise RuntimeError(f"an ASGI http message this server does not take: {kind}")
        events: list[Any] = []
        if self.start is not None:
            events.append(h11.Response(status_code=self.start["status"],
                                       headers=self.start.get("headers", [])))
            self.start = None
        body = message.get("body", b"")
        if body and self.request.method != b"HEAD":
            events.append(h11.Data(data=body))
        if not message.get("more_body"):
            events.append(h11.EndOfMessage())
            self.finished = True
        await self.http.send(*events)


class _WebSocket:
    """A WebSocket connection after its upgrade request: the ASGI ``websocket``
    connection the app sees. Writes go out one at a time (a lock), whichever of the
    app's tasks makes them."""

    def __init__(self, http: _Http, request: h11.Request) -> None:
        self.http = http
        self.request = request
        self.ws = WSConnection(ConnectionType.SERVER)
        self.turn = trio.Lock()
        self.connected = False
        self.accepted = False
        self.ended = False
        self.refusing = False
        self.pending: list[Message] = []
        self.text: list[str] = []
        self.data: list[bytes] = []
        self.size = 0

    async def run(self) -> None:
        try:
            self.ws.initiate_upgrade_connection(list(self.request.headers), self.request.target)
        except WsRemoteError as exc:
            await self.http._refuse(400, f"a malformed WebSocket upgrade: {exc}")
            return
        list(self.ws.events())  # the upgrade request itself, which the scope carries
        leftover, _ = self.http.h11.trailing_data
        if leftover:
            self.ws.receive_data(leftover)
        code = 1000
        try:
            await self.http.server.app(self.http.scope("websocket", self.request), self.receive, self.send)
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
            self.refusing = True
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
