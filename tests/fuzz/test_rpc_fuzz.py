"""Fuzzing the JSON-RPC server of a running node: a one-validator chain whose node runs
in a thread of this process (its own trio loop, a real store, libp2p host and RPC
server on loopback ports), started once for the module.

Most requests go straight to an :class:`~node.rpc.server.RpcApp` of that node as ASGI
calls (no sockets, so thousands fit in seconds): random bodies, random JSON, JSON-RPC
requests with random method names and parameters of random types, batches, huge
numbers, deep nesting, URI calls, odd methods, paths and headers, and WebSocket
messages. Raw bytes, odd headers, an HTTP/2 connection and fuzzed WebSocket frames go to
the real server over TCP. Every answer is well-formed: never a 5xx; JSON that any JSON parser reads (no NaN,
no Infinity); a JSON-RPC answer with the request's id and either a result or an error
object with one of the server's codes; an internal error (-32603) never. Afterwards the
node still answers ``status`` and keeps making blocks, and the server logged no error.

``BIZRA_FUZZ_EXAMPLES`` raises every test's number of examples (for long runs).
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import socket
import string
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import trio
from hypothesis import example, given
from hypothesis import strategies as st

from chain.address import format_address
from chain.crypto import PrivateKey, address_of
from chain.genesis import make_devnet_genesis, operator_key_for
from chain.params import Params
from chain.transition import sign_tx
from chain.types import Transfer
from node.config import Config, P2pConfig, RpcConfig
from node.daemon import Node
from node.home import Home, init_home
from node.rpc.methods import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    Methods,
)
from node.rpc.server import (
    FORBIDDEN,
    RATE_LIMITED,
    TOO_LARGE,
    TOO_MANY_CONNECTIONS,
    UNAUTHORIZED,
    RpcApp,
)

from fuzzkit import fuzz
from nodekit import free_ports

pytestmark = pytest.mark.slow


CHAIN_ID = "bizra-fuzz-1"
VALIDATOR = PrivateKey.from_seed(bytes(range(32)))
OPERATOR = operator_key_for(VALIDATOR)
MAX_BODY = 1 << 20
CODES = {PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, RATE_LIMITED, TOO_LARGE,
         UNAUTHORIZED, TOO_MANY_CONNECTIONS, FORBIDDEN}
"""The error codes an answer may carry: JSON-RPC's and the server's own (-32603, an
internal error, is a bug: it is refused below)."""


# --- the node -----------------------------------------------------------------------------


class ErrorLog(logging.Handler):
    """Collects the ERROR records of the RPC server and its transport (a method that
    failed, an exception in the application or a connection) logged by one node's
    thread."""

    def __init__(self, thread: threading.Thread) -> None:
        super().__init__(logging.ERROR)
        self.thread = thread
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread.ident:  # not another node's
            self.records.append(record)

    def text(self, since: int = 0) -> str:
        """The records after the first ``since``, with their tracebacks."""
        formatter = logging.Formatter()
        return "\n".join(f"{r.name}: {r.getMessage()}" + (f"\n{formatter.formatException(r.exc_info)}"
                                                          if r.exc_info else "")
                         for r in self.records[since:])


class RunningNode:
    """A node in a thread of its own; ASGI calls go to the RpcApp its server serves."""

    def __init__(self, home: Path, config: Config) -> None:
        self.home = home
        self.config = config
        self.node: Node
        self.app: RpcApp
        self.admin_token = ""
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzzed-node", daemon=True)
        self.errors = ErrorLog(self._thread)
        self._loggers = [logging.getLogger(name) for name in ("node.rpc.server", "node.rpc.transport")]

    def start(self, timeout: float = 60) -> None:
        for logger in self._loggers:
            logger.addHandler(self.errors)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError(f"the node did not start within {timeout} s")
        if self._error is not None:
            raise AssertionError(f"the node failed to start: {self._error!r}") from self._error

    def stop(self) -> None:
        if self._token is not None and self._stop is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)
        for logger in self._loggers:
            logger.removeHandler(self.errors)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``await fn(*args)`` on the node's trio loop and return its result."""
        self.check_alive()
        assert self._token is not None
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def check_alive(self) -> None:
        """AssertionError, with what stopped it, if the node is no longer running."""
        if not self._thread.is_alive():
            raise AssertionError(f"the node stopped: {self._error!r}") from self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        home = Home(self.home)
        self.admin_token = home.rpc_token()
        node = Node(home, self.config)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            self.node = node
            self.app = node.rpc
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()


@contextmanager
def node_running(directory: Path) -> Iterator[RunningNode]:
    """A one-validator chain's node with its home in ``directory``, running, with its
    first block made."""
    params = Params(block_time_ms=250, timeout_propose_ms=500, timeout_prevote_ms=250,
                    timeout_precommit_ms=250)
    genesis = make_devnet_genesis(CHAIN_ID, [VALIDATOR], time.time_ns(), params=params)
    config = Config(moniker="fuzzed", p2p=P2pConfig(host="127.0.0.1", port=0),
                    rpc=RpcConfig(host="127.0.0.1", port=free_ports(1), requests_per_minute=10**9,
                                  max_body_bytes=MAX_BODY, timeout_broadcast_tx_commit_s=3))
    init_home(directory, genesis.canonical_json(), config, VALIDATOR)
    node = RunningNode(directory, config)
    node.start()
    try:
        wait_for(lambda: node.node.store.height >= 1, 30, "the first block")
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with node_running(tmp_path_factory.mktemp("rpc-fuzz") / "home") as node:
        yield node


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def logged_errors(node: RunningNode, since: int = 0) -> str:
    """What the RPC server and its transport logged as errors (after the first ``since``)."""
    return node.errors.text(since)


# --- ASGI calls ---------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


async def asgi_http(app: RpcApp, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]],
                    parts: list[bytes]) -> Answer:
    """One HTTP request through the ASGI interface, its body in ``parts``."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode("utf-8", "replace"),
             "query_string": query, "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 40_000), "server": ("127.0.0.1", 8080)}
    incoming = [{"type": "http.request", "body": part, "more_body": i + 1 < len(parts)}
                for i, part in enumerate(parts or [b""])]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with trio.fail_after(30):
        await app(scope, receive, send)
    assert sent and sent[0]["type"] == "http.response.start", sent
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert all(m["type"] == "http.response.body" for m in sent[1:]), sent
    return Answer(sent[0]["status"], dict(sent[0]["headers"]), body)


async def asgi_websocket(app: RpcApp, messages: list[dict[str, Any]]) -> list[str]:
    """A WebSocket session through the ASGI interface: connect, ``messages``, then
    disconnect once every message has had its answer (or a second has passed); the
    texts the server sent."""
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}, *messages]
    answered = trio.Event()

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        with trio.move_on_after(1):
            await answered.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if sum(m["type"] == "websocket.send" for m in sent) >= len(messages):
            answered.set()

    scope = {"type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws",
             "path": "/websocket", "raw_path": b"/websocket", "query_string": b"", "root_path": "",
             "headers": [], "client": ("127.0.0.1", 40_001), "server": ("127.0.0.1", 8080),
             "subprotocols": []}
    with trio.fail_after(30):
        await app(scope, receive, send)
    assert sent and sent[0]["type"] == "websocket.accept", sent
    return [m["text"] for m in sent[1:] if m["type"] == "websocket.send"]


# --- what every answer must be ------------------------------------------------------------


def strict_json(data: bytes | str) -> Any:
    """``data`` parsed as JSON as any parser would: NaN and Infinity are not JSON."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"the answer holds {name}, which is not JSON: {data[:300]!r}")
    return json.loads(data, parse_constant=refuse)


def check_rpc_answer(answer: Any, request: Any = None) -> None:
    """``answer`` is one JSON-RPC 2.0 answer: the request's id (when the request was an
    object; null when it had none) and a result, or an error object with an allowed
    code, a message and data; never an internal error, except a tx commit that timed
    out."""
    assert isinstance(answer, dict), answer
    assert answer.get("jsonrpc") == "2.0", answer
    assert "id" in answer, answer
    if isinstance(request, dict):
        assert answer["id"] == request.get("id"), (answer, request)
    assert ("result" in answer) != ("error" in answer), answer
    if "error" in answer:
        error = answer["error"]
        assert isinstance(error, dict) and isinstance(error.get("code"), int), answer
        assert isinstance(error.get("message"), str) and error["message"], answer
        assert isinstance(error.get("data", ""), str), answer
        if error["code"] == INTERNAL_ERROR:
            assert error["data"].startswith("timed out waiting for tx"), (answer, request)
        else:
            assert error["code"] in CODES, answer
        assert "Traceback" not in error.get("data", ""), answer


def check_http(answer: Answer, path: str = "/", request: Any = None) -> Any:
    """An HTTP answer: not a 5xx (but /ready's 503), a length that matches, and for a
    JSON answer strict JSON and, from the JSON-RPC endpoints, JSON-RPC answers (the
    metrics and the status page's files are text)."""
    assert answer.status < 500 or (path == "/ready" and answer.status == 503), answer
    assert answer.status >= 200, answer
    assert answer.headers.get(b"content-length") == str(len(answer.body)).encode(), answer
    content_type = answer.headers.get(b"content-type", b"")
    if path == "/metrics" and answer.status == 200:
        assert content_type.startswith(b"text/plain"), answer
        return None
    if content_type != b"application/json" and path in ("/", "/ui/app.js", "/ui/style.css"):
        assert answer.status == 200, answer  # the status page (POST / is JSON-RPC)
        assert content_type.startswith((b"text/html", b"text/javascript", b"text/css")), answer
        return None
    assert content_type == b"application/json", answer
    document = strict_json(answer.body)
    if path in ("/health", "/ready"):
        return document
    if isinstance(document, list):
        assert isinstance(request, list) and len(document) == len(request), (document, request)
        for one, asked in zip(document, request, strict=True):
            check_rpc_answer(one, asked)
    else:
        check_rpc_answer(document, request)
        if answer.status >= 400:
            assert "error" in document, document
    return document


# --- strategies ---------------------------------------------------------------------------

USERS = [PrivateKey.from_seed(bytes([9]) * 31 + bytes([i])) for i in range(3)]
VALID_TXS = [sign_tx(CHAIN_ID, OPERATOR, nonce, Transfer(address_of(USERS[0].public_key), 1), 2_000)
             for nonce in range(4)]
METHODS = sorted(name[len("m_"):] for name in dir(Methods) if name.startswith("m_"))
METHOD_PARAMS = {name: list(inspect.signature(getattr(Methods, "m_" + name)).parameters)[1:]
                 for name in METHODS}
"""Each method's parameter names, in order."""
PARAM_NAMES = ["height", "hash", "minHeight", "maxHeight", "page", "per_page", "prove", "query",
               "order_by", "path", "data", "tx", "limit", "address", "operator", "id", "key",
               "peers", "persistent", "peer", "reason"]

numbers = st.one_of(st.integers(-5, 30), st.integers(), st.sampled_from([2**63, 2**64, 10**30, -(2**70)]),
                    st.floats(allow_nan=False, allow_infinity=False))


texts = st.one_of(
    st.text(max_size=40),
    numbers.map(str),
    st.sampled_from(["", "0", "1", "2", " 3 ", "0x", "0X" + "ab" * 32, "ab" * 32, "AB" * 31, "true", "desc",
                     "asc", "/store", "tx.height=1", "tx.height=18446744073709551615",
                     "tx.hash='" + "00" * 32 + "'",
                     "message.sender='" + format_address(address_of(OPERATOR.public_key)) + "'",
                     "tm.event='NewBlock'", "tm.event='Tx' AND tx.height=2", "=", "'", '"1"',
                     format_address(address_of(OPERATOR.public_key)), address_of(USERS[1].public_key).hex(),
                     "bizra1", "/ip4/127.0.0.1/tcp/1", "/p2p/", "QmPeer", "٣", "１", "²", "1" * 30,
                     "9" * 5_000, "tx.height=" + "9" * 5_000]),
    st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from(VALID_TXS).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from(VALID_TXS).map(lambda b: "0x" + b.hex()),
)
"""Texts a parameter may hold: numbers and hex, base64 (of valid txs too), addresses,
queries, and any text."""
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda c: st.one_of(st.lists(c, max_size=4),
                        st.dictionaries(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=8)), c,
                                        max_size=4)),
    max_leaves=12,
)
"""Any JSON value, with parameter-like texts and numbers of every size."""
params = st.one_of(
    st.dictionaries(st.sampled_from(PARAM_NAMES), json_values, max_size=4),
    st.dictionaries(st.sampled_from(PARAM_NAMES), st.one_of(texts, numbers), max_size=3),
    st.lists(st.one_of(texts, numbers, json_values), max_size=5),
    json_values,
)
ids = st.one_of(st.integers(), st.text(max_size=10), st.none(), numbers, st.lists(st.integers(), max_size=2))


@st.composite
def rpc_requests(draw: st.DrawFn) -> Any:
    """A JSON-RPC request object: mostly well-formed, with a method of the node's (or
    any name) and parameters of any type; sometimes a field missing or wrong."""
    method = draw(st.one_of(st.sampled_from(METHODS), st.sampled_from(METHODS), st.text(max_size=20)))
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if draw(st.booleans()):
        request["id"] = draw(ids)
    names = METHOD_PARAMS.get(method)
    if names and draw(st.integers(0, 2)):
        values = st.one_of(texts, numbers, texts, st.none(), json_values)
        if draw(st.booleans()):
            request["params"] = draw(st.fixed_dictionaries({}, optional={n: values for n in names}))
        else:
            request["params"] = draw(st.lists(values, max_size=len(names)))
    elif draw(st.integers(0, 4)):
        request["params"] = draw(params)
    if not draw(st.integers(0, 9)):
        request[draw(st.sampled_from(["jsonrpc", "method", "extra"]))] = draw(json_values)
    if not draw(st.integers(0, 14)):
        del request[draw(st.sampled_from(sorted(request)))]
    return request


def post(node: RunningNode, body: bytes, headers: list[tuple[bytes, bytes]] | None = None,
         parts: int = 1) -> Answer:
    size = max(1, -(-len(body) // parts))
    chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    answer: Answer = node.call(asgi_http, node.app, "POST", "/", b"",
                               headers or [(b"content-type", b"application/json")], chunks)
    return answer


# --- the tests ----------------------------------------------------------------------------


@fuzz(300)
@given(st.binary(max_size=300))
@example(b"[" * 100_000)
@example(b'{"a":' * 100_000)
@example(b"[" * 100_000 + b"]" * 100_000)
@example(b"\xef\xbb\xbf{}")
@example(b"\xff\xfe{\x00}\x00")
@example(b'"\\ud800"')
@example(b"1" * 5_000)
@example(b"x" * (MAX_BODY + 1))
def test_random_bodies_get_json_rpc_errors(running: RunningNode, body: bytes) -> None:
    """Any body, deeply nested, not UTF-8, of huge numbers or too large: a JSON-RPC
    error (or an answer), never a 5xx."""
    answer = post(running, body)
    check_http(answer)
    if len(body) > MAX_BODY:
        assert answer.status == 413


@fuzz(150)
@given(json_values)
def test_any_json_document_gets_a_json_rpc_answer(running: RunningNode, document: Any) -> None:
    """Any JSON document as the body: a JSON-RPC error or answer per request."""
    check_http(post(running, json.dumps(document).encode()), request=document)


@fuzz(500)
@given(rpc_requests(), st.integers(1, 3))
@example({"jsonrpc": "2.0", "id": 1, "method": "block", "params": {"height": "²"}}, 1)
@example({"jsonrpc": "2.0", "id": 1, "method": "block", "params": {"height": "9" * 5_000}}, 1)
def test_requests_with_any_method_and_parameters_get_well_formed_answers(
        running: RunningNode, request: Any, parts: int) -> None:
    """A JSON-RPC request with any method name and parameters of any type and value
    (in one to three body chunks): a result, or an error with an allowed code; never
    an internal error."""
    check_http(post(running, json.dumps(request).encode(), parts=parts), request=request)


@fuzz(150)
@given(st.lists(st.one_of(rpc_requests(), json_values), min_size=1, max_size=6))
@example([{"jsonrpc": "2.0", "id": i, "method": "health"} for i in range(101)])
@example([{"jsonrpc": "2.0", "id": i, "method": "broadcast_tx_sync",
           "params": {"tx": base64.b64encode(tx).decode()}} for i, tx in enumerate(VALID_TXS * 3)])
def test_batches_get_one_answer_per_request(running: RunningNode, batch: list[Any]) -> None:
    """A batch of requests of any kind: one answer per request, each well-formed (a
    batch above the limit: one error)."""
    answer = post(running, json.dumps(batch).encode())
    if len(batch) > 100:
        assert check_http(answer)["error"]["code"] == INVALID_REQUEST
    else:
        check_http(answer, request=batch)


@pytest.mark.parametrize("request_id", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_an_id_that_is_not_a_json_number_gets_json(running: RunningNode, request_id: str) -> None:
    """A request whose id is NaN, Infinity or a number too large for a float is refused
    or answered in JSON that any parser reads."""
    body = b'{"jsonrpc": "2.0", "method": "health", "id": ' + request_id.encode() + b"}"
    strict_json(post(running, body).body)


def test_a_tx_search_above_any_height_is_not_an_internal_error(tmp_path: Path) -> None:
    """``tx_search`` for a height above 2**64 - 1 finds nothing; it is not an internal
    error (it was: the store's key for such a height raised OverflowError)."""
    request = {"jsonrpc": "2.0", "id": 1, "method": "tx_search", "params": {"query": "tx.height=" + "9" * 30}}
    with node_running(tmp_path / "home") as node:
        check_http(post(node, json.dumps(request).encode()), request=request)


@fuzz(250)
@given(st.one_of(st.sampled_from(METHODS), st.text(max_size=15)),
       st.lists(st.tuples(st.sampled_from([*PARAM_NAMES, "x"]), texts), max_size=4))
def test_uri_calls_get_well_formed_answers(running: RunningNode, method: str,
                                           query: list[tuple[str, str]]) -> None:
    """``GET /<method>?name=value`` with any method and values: 200 with a result, or
    400/404 with a JSON-RPC error."""
    path = "/" + method.replace("/", "")
    answer = running.call(asgi_http, running.app, "GET", path, urlencode(query).encode("ascii"), [], [b""])
    check_http(answer, path)
    if path not in ("/ready", "/metrics"):
        assert answer.status in (200, 400, 404), answer


HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "BREW", ""]
PATHS = ["/", "/health", "/ready", "/metrics", "/status", "/websocket", "//", "/a/b", "/%00", "/.."]
header_names = st.one_of(st.sampled_from([b"content-type", b"authorization", b"content-length", b"accept",
                                          b"transfer-encoding", b"x-forwarded-for", b"host"]),
                         st.binary(min_size=1, max_size=12))
header_values = st.one_of(st.sampled_from([b"application/json", b"text/plain", b"multipart/form-data",
                                           b"Bearer ", b"Bearer x", b"-1", b"99999999999999", b"chunked",
                                           b"application/json; charset=utf-16"]),
                          st.binary(max_size=40))


@fuzz(250)
@given(st.sampled_from(HTTP_METHODS),
       st.one_of(st.sampled_from(PATHS), st.text(max_size=12).map(lambda t: "/" + t)),
       st.binary(max_size=30), st.lists(st.tuples(header_names, header_values), max_size=5),
       st.one_of(st.binary(max_size=100), rpc_requests().map(lambda r: json.dumps(r).encode())))
def test_any_method_path_headers_and_body_get_a_well_formed_answer(
        running: RunningNode, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]],
        body: bytes) -> None:
    """Any HTTP method, path, query string and headers (wrong content types, bogus
    bearer tokens, nonsense lengths) with any body: a well-formed answer, never a 5xx."""
    answer = running.call(asgi_http, running.app, method, path, query, headers, [body])
    assert answer.status < 500 or (path == "/ready" and answer.status == 503), answer
    if answer.headers.get(b"content-type") == b"application/json":
        strict_json(answer.body)


ws_messages = st.one_of(
    rpc_requests().map(lambda r: {"type": "websocket.receive", "text": json.dumps(r)}),
    st.builds(lambda method, query, request_id: {"type": "websocket.receive", "text": json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {"query": query}})},
        st.sampled_from(["subscribe", "unsubscribe", "unsubscribe_all"]),
        st.one_of(texts, json_values, st.sampled_from(["tm.event='NewBlock'", "tm.event='NewBlockHeader'",
                                                       "tm.event = 'Tx' AND tx.height = 3"])), ids),
    json_values.map(lambda v: {"type": "websocket.receive", "text": json.dumps(v)}),
    st.text(max_size=50).map(lambda t: {"type": "websocket.receive", "text": t}),
    st.binary(max_size=50).map(lambda b: {"type": "websocket.receive", "bytes": b}),
)


@fuzz(150)
@given(st.lists(ws_messages, min_size=1, max_size=5))
@example([{"type": "websocket.receive", "text": "[" * 100_000}])
@example([{"type": "websocket.receive", "text": json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"query": "tm.event='NewBlock'"}})},
          {"type": "websocket.receive", "text": json.dumps(
    {"jsonrpc": "2.0", "id": 2, "method": "unsubscribe", "params": {"query": ["tm.event='NewBlock'"]}})}])
@example([{"type": "websocket.receive", "text": json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"query": "tm.event='Tx' AND tx.height="
                                                                             + "9" * 5_000}})}])
def test_websocket_messages_get_well_formed_answers(running: RunningNode,
                                                    messages: list[dict[str, Any]]) -> None:
    """Any messages on a WebSocket (requests, subscriptions with any query, text that
    is not JSON, bytes): one well-formed JSON-RPC answer each (besides events), and the
    session ends cleanly."""
    texts_sent = running.call(asgi_websocket, running.app, messages)
    assert len(texts_sent) >= len(messages), (messages, texts_sent)
    for text in texts_sent:
        check_rpc_answer(strict_json(text))


# --- over TCP -----------------------------------------------------------------------------


def rpc_port(node: RunningNode) -> int:
    """The port of the node's RPC server (which must still be running)."""
    node.check_alive()
    return node.config.rpc.port


def exchange_raw(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send ``data`` on a new connection, half-close, and read until EOF, a whole
    answer, or a moment of silence after the first bytes (the server may keep the
    connection open)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while not _whole_answer(received) and (chunk := sock.recv(65_536)):
                received += chunk
                sock.settimeout(0.3)
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def _whole_answer(data: bytes) -> bool:
    """Whether ``data`` holds an HTTP/1.1 answer's head and all the body it declares."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value)
    return False


def status_codes(raw: bytes) -> list[int]:
    """The status code of every HTTP/1.1 answer in ``raw``."""
    codes = []
    for line in raw.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 "):
            codes.append(int(line.split()[1]))
    return codes


token = st.text(st.sampled_from("!#$%&'*+-.^_`|~0123456789" + string.ascii_letters),
                min_size=1, max_size=10)


@st.composite
def raw_http_requests(draw: st.DrawFn) -> bytes:
    """An HTTP/1.1 request with odd methods, targets, headers and bodies, or bytes
    that are not one. The body is always as long as the request says (see
    ``test_a_request_cut_short_of_its_body_leaves_the_node_running`` for the rest)."""
    if not draw(st.integers(0, 4)):
        return draw(st.binary(min_size=1, max_size=300))
    method = draw(st.one_of(st.sampled_from(["GET", "POST", "PUT", "OPTIONS"]), token)).encode()
    target = draw(st.one_of(st.sampled_from(["/", "/status", "/health", "/metrics", "/websocket", "*"]),
                            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
                            .map(lambda t: "/" + t))).encode()
    body = draw(st.one_of(st.binary(max_size=200), rpc_requests().map(lambda r: json.dumps(r).encode())))
    headers = [(b"host", b"127.0.0.1")]
    for _ in range(draw(st.integers(0, 4))):
        headers.append((draw(token).encode(),
                        draw(st.binary(max_size=30)).replace(b"\r", b"").replace(b"\n", b"")))
    headers.append((b"content-length", str(len(body)).encode()))
    if draw(st.booleans()):
        headers.append((b"content-type", draw(header_values)))
    head = b"%s %s HTTP/1.1\r\n" % (method, target) + b"".join(b"%s: %s\r\n" % h for h in headers)
    return head + b"\r\n" + body


@fuzz(100)
@given(raw_http_requests())
@example(b"GET /status?%ff%fe HTTP/1.1\r\nhost: x\r\n\r\n")
@example(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n" + b"[" * 100_000)
@example(b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n\x02")
def test_raw_http_over_tcp_never_gets_a_5xx(running: RunningNode, request: bytes) -> None:
    """Any bytes a client sends the server's port: HTTP answers that are never 5xx
    (what is not HTTP gets a 4xx, and its connection is closed)."""
    before = len(running.errors.records)
    answer = exchange_raw(rpc_port(running), request)
    running.check_alive()
    assert all(code < 500 for code in status_codes(answer)), answer[:500]
    assert not logged_errors(running, before), logged_errors(running, before)


def test_a_request_cut_short_of_its_body_leaves_the_node_running(tmp_path: Path) -> None:
    """A client that sends a request for a route that does not read the body (here
    ``GET /status``), declares a body and closes its side before sending it gets an
    answer or nothing, and the node goes on running and answering at once, having logged
    no error (on a node of its own: the one the other tests share must survive)."""
    with node_running(tmp_path / "home") as node:
        for _ in range(20):
            exchange_raw(rpc_port(node), b"GET /status HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\n")
        node.check_alive()
        answer = exchange_raw(rpc_port(node), b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert not logged_errors(node), logged_errors(node)


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def test_an_http2_connection_is_told_the_server_speaks_http_1_1(running: RunningNode) -> None:
    """A client speaking HTTP/2 without TLS (prior knowledge, its preface and a SETTINGS
    frame) gets 505 with a JSON-RPC error saying so, as CometBFT's server (HTTP/1.1 only)
    refuses it; the node logs no error and answers the next request."""
    before = len(running.errors.records)
    answer = exchange_raw(rpc_port(running), HTTP2_PREFACE + bytes.fromhex("000000040000000000"))
    assert answer.startswith(b"HTTP/1.1 505 "), answer
    error = strict_json(answer.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == -32600 and "this server speaks HTTP/1.1" in error["data"]
    health = exchange_raw(rpc_port(running), b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
    assert health.startswith(b"HTTP/1.1 200"), health
    assert not logged_errors(running, before), logged_errors(running, before)


WS_HANDSHAKE = (b"GET /websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True,
             mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    """One WebSocket frame, as a client sends it (masked) unless told otherwise."""
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F)
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        length = bytes([mask_bit | n])
    elif n < 1 << 16:
        length = bytes([mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        length = bytes([mask_bit | 127]) + n.to_bytes(8, "big")
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bytes([first]) + length + mask + payload
    return bytes([first]) + length + payload


def read_ws_frames(sock: socket.socket, deadline: float) -> list[tuple[int, bytes]]:
    """The frames the server sends until it closes the session (or the deadline)."""
    buffer = b""
    frames: list[tuple[int, bytes]] = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65_536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return frames
        if not chunk:
            return frames
        buffer += chunk
        while len(buffer) >= 2:
            n, offset = buffer[1] & 0x7F, 2
            if n == 126:
                if len(buffer) < 4:
                    break
                n, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif n == 127:
                if len(buffer) < 10:
                    break
                n, offset = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < offset + n:
                break
            frames.append((buffer[0] & 0x0F, buffer[offset:offset + n]))
            buffer = buffer[offset + n:]
            if frames[-1][0] == 8:
                return frames
    return frames


ws_payloads = st.one_of(
    rpc_requests().map(lambda r: json.dumps(r).encode()),
    st.binary(max_size=140),
    st.sampled_from([b"\xff\xfe", b"\xed\xa0\x80", b'{"jsonrpc": "2.0", "id": 1, "method": "status"}',
                     b"[" * 10_000]),
)
fuzzed_frames = st.builds(
    lambda opcode, payload, fin, rsv, masked: ws_frame(opcode, payload, fin=fin, rsv=rsv, masked=masked),
    st.one_of(st.sampled_from([1, 1, 1, 2, 0, 8, 9, 10]), st.integers(0, 15)), ws_payloads,
    st.booleans() | st.just(True), st.just(0) | st.integers(0, 7), st.just(True) | st.booleans(),
)


@contextmanager
def websocket(running: RunningNode) -> Iterator[tuple[socket.socket, bytes]]:
    """A raw socket to the node's RPC, upgraded to a WebSocket (no frames sent yet), and
    the server's answer to the upgrade."""
    with socket.create_connection(("127.0.0.1", rpc_port(running)), timeout=5) as sock:
        sock.sendall(WS_HANDSHAKE)
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            assert chunk, response
            response += chunk
        assert response.startswith(b"HTTP/1.1 101"), response
        yield sock, response


@fuzz(100)
@given(st.lists(fuzzed_frames, min_size=1, max_size=5))
def test_fuzzed_websocket_frames_never_break_the_server(running: RunningNode, frames: list[bytes]) -> None:
    """Any WebSocket frames (any opcode, reserved bits, unmasked, fragments, control
    frames too long, text that is not UTF-8 or not JSON): every text the server sends is
    a well-formed JSON-RPC answer, a close is never an internal error (1011), and the
    server logs no error."""
    before = len(running.errors.records)
    with websocket(running) as (sock, response):
        assert not response.split(b"\r\n\r\n", 1)[1]
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"".join(frames) + ws_frame(8, (1000).to_bytes(2, "big")))
        received = read_ws_frames(sock, time.monotonic() + 3)
    running.check_alive()
    for opcode, payload in received:
        if opcode == 1:
            check_rpc_answer(strict_json(payload))
        elif opcode == 8 and len(payload) >= 2:
            assert int.from_bytes(payload[:2], "big") != 1011, received
    assert not logged_errors(running, before), logged_errors(running, before)


def test_a_websocket_message_above_the_body_limit_is_closed_as_it_arrives(
        running: RunningNode) -> None:
    """A frame that says it holds 4 MiB (``rpc.max_body_bytes`` is 1 MiB) is closed with
    1009 (message too big) once a little over 1 MiB of it has come, not after the server
    buffered it whole; the server logs no error and serves the next connection."""
    before = len(running.errors.records)
    with websocket(running) as (sock, _):
        header = bytes([0x82, 0x80 | 127]) + (4 << 20).to_bytes(8, "big") + bytes(4)  # binary, zero mask
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(header + bytes(MAX_BODY + (64 << 10)))
        received = read_ws_frames(sock, time.monotonic() + 5)
    assert received and received[-1][0] == 8, received
    assert int.from_bytes(received[-1][1][:2], "big") == 1009, received
    assert not logged_errors(running, before), logged_errors(running, before)
    answers = running.call(asgi_websocket, running.app,
                           [{"type": "websocket.receive", "text": json.dumps(
                               {"jsonrpc": "2.0", "id": 1, "method": "health"})}])
    assert json.loads(answers[0])["result"] == {}


def test_the_node_still_answers_and_makes_blocks(running: RunningNode) -> None:
    """After the fuzzing the node answers ``status`` over HTTP, keeps making blocks,
    and its RPC server and transport logged no error."""
    def status() -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{rpc_port(running)}/", json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "status"}).encode(), {"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return strict_json(response.read())["result"]

    start = int(status()["sync_info"]["latest_block_height"])
    wait_for(lambda: int(status()["sync_info"]["latest_block_height"]) >= start + 2, 20, "two more blocks")
    assert not logged_errors(running), logged_errors(running)
