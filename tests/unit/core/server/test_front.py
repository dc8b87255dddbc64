"""The front over real HTTP: uvicorn on uvloop in a thread, running the front over one lane
(``/lane/``, a handler that echoes what it got) ahead of a tiny Starlette app
(``/app/echo``, and ``/lane/...`` as a lane's ASGI route beside it). Most tests speak raw
HTTP over a socket, so that they choose where the bytes break."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cnai.core.errors import Forbidden
from cnai.core.server.front import Lane, LaneRequest, LaneResponse, front_protocol

LIMIT = 1024  # the lane's max_body_bytes
TOO_LARGE = f"the request body is larger than the limit of {LIMIT} bytes"


class Handler:
    """The lane: echoes the request as JSON. ``/lane/forbidden`` raises an ApiError,
    ``/lane/boom`` a RuntimeError, ``/lane/slow...`` waits for :attr:`go` (or 5 s),
    ``/lane/empty`` answers 204, and HEAD announces 42 bytes."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.go = threading.Event()
        self.started = threading.Event()  # a slow request reached the handler
        self.cancelled = threading.Event()  # ... and was cancelled while waiting

    async def __call__(self, request: LaneRequest) -> LaneResponse:
        target = request.target
        if target == b"/lane/forbidden":
            raise Forbidden("no entry to /lane/forbidden")
        if target == b"/lane/boom":
            raise RuntimeError("boom")
        if target.startswith(b"/lane/slow"):
            await self._wait()
        if target == b"/lane/empty":
            return LaneResponse(204, b"never sent")
        if request.method == b"HEAD":
            return LaneResponse(200, b"never sent", [(b"content-length", b"42")])
        echo = {
            "by": "lane",
            "method": request.method.decode(),
            "target": target.decode(),
            "body": request.body.decode(),
            "host": (request.header(b"host") or b"").decode(),
            "contentType": (request.header(b"content-type") or b"").decode(),
        }
        return LaneResponse(
            200, json.dumps(echo).encode(), [(b"content-type", b"application/json")]
        )

    async def _wait(self) -> None:
        go, cancelled = self.go, self.cancelled
        self.started.set()
        deadline = time.monotonic() + 5
        try:
            while not go.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            cancelled.set()
            raise


APP_QUERIES: list[str] = []  # the query of each request /app/echo began on


async def app_echo(request: Request) -> JSONResponse:
    APP_QUERIES.append(request.url.query)
    body = await request.body()
    return JSONResponse({"by": "app", "path": request.url.path, "body": body.decode()})


async def app_lane_route(request: Request) -> JSONResponse:
    return JSONResponse({"by": "app-route", "path": request.url.path})


APP = Starlette(
    routes=[
        Route("/app/echo", app_echo, methods=["GET", "POST"]),
        Route("/lane/{rest:path}", app_lane_route, methods=["GET", "POST"]),
    ]
)


# -- the server -------------------------------------------------------------------------


@dataclass
class Served:
    """The front and the app on uvicorn in a thread."""

    port: int
    server: uvicorn.Server
    thread: threading.Thread
    handler: Handler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(**config: Any) -> Served:
    handler = Handler()
    port = free_port()
    lanes = [Lane(b"/lane/", handler, max_body_bytes=LIMIT)]
    server = uvicorn.Server(
        uvicorn.Config(
            APP,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            access_log=False,
            log_level="warning",
            http=front_protocol(lanes),
            timeout_graceful_shutdown=3,
            **config,
        )
    )
    # On uvloop, as the platform serves.
    thread = threading.Thread(target=uvloop.run, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.005)
    return Served(port, server, thread, handler)


@pytest.fixture(scope="module")
def front() -> Iterator[Served]:
    served = serve()
    yield served
    served.stop()


@pytest.fixture
def lane(front: Served) -> Iterator[Handler]:
    """The module server's lane handler, fresh; its slow requests released at the end."""
    front.handler.reset()
    yield front.handler
    front.handler.go.set()


# -- a raw client -----------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """HTTP/1.1 over one socket: sends exact bytes, reads whole answers."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a segment a send
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def trickle(self, data: bytes) -> None:
        """Send ``data`` a byte at a time."""
        for i in range(len(data)):
            self.sock.sendall(data[i : i + 1])
            time.sleep(0.001)

    def answer(self, *, head: bool = False) -> Answer:
        """The next answer; ``head``: to a HEAD request, so without a body."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        top, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = top.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"{name} sent twice"
            headers[name.lower()] = value.strip()
        bodiless = head or status < 200 or status in (204, 304)
        length = 0 if bodiless else int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Answer(status, headers, body)

    def at_eof(self, within: float = 3) -> bool:
        """Whether the server closes the connection within ``within`` s, sending nothing
        more."""
        self.sock.settimeout(within)
        try:
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
        except TimeoutError:
            return False
        except ConnectionResetError:
            pass
        finally:
            self.sock.settimeout(5)
        return not self.buffer

    def quiet(self, during: float = 0.1) -> bool:
        """Whether nothing arrives, and the connection stays open, for ``during`` s."""
        self.sock.settimeout(during)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(5)
        self.buffer += chunk
        return False

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"the server closed the connection; unparsed: {self.buffer!r}")
        self.buffer += chunk


@pytest.fixture
def connect(front: Served) -> Iterator[Callable[[], Client]]:
    """Opens raw connections to the module server; closes them at the end."""
    with contextlib.ExitStack() as stack:

        def open_client() -> Client:
            client = Client(front.port)
            stack.callback(client.close)
            return client

        yield open_client


def request(
    method: str, target: str, *headers: str, body: bytes = b"", version: str = "1.1"
) -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: front.test", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def by(answer: Answer) -> str:
    return str(answer.json()["by"])


def chunked(*chunks: bytes, end: bool = True) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return out + (b"0\r\n\r\n" if end else b"")


CHUNKED_HEAD = request("POST", "/lane/upload", "Transfer-Encoding: chunked")


# -- who answers ------------------------------------------------------------------------


def test_a_lanes_request_is_answered_by_the_lane_and_another_by_the_app(front: Served) -> None:
    answer = httpx.post(
        f"{front.url}/lane/echo?x=%41", content=b"hi", headers={"content-type": "text/plain"}
    )
    app = httpx.post(f"{front.url}/app/echo", content=b"hi")

    assert answer.status_code == 200
    assert answer.json() == {
        "by": "lane",
        "method": "POST",
        "target": "/lane/echo?x=%41",
        "body": "hi",
        "host": f"127.0.0.1:{front.port}",
        "contentType": "text/plain",
    }
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["server"] == "uvicorn"
    assert parsedate_to_datetime(answer.headers["date"]).year >= 2024
    assert app.json() == {"by": "app", "path": "/app/echo", "body": "hi"}


def test_after_the_hand_on_the_app_answers_the_lanes_requests_too(
    connect: Callable[[], Client],
) -> None:
    client = connect()
    client.send(request("GET", "/lane/one"))
    assert by(client.answer()) == "lane"
    client.send(request("GET", "/app/echo"))
    assert by(client.answer()) == "app"
    client.send(request("GET", "/lane/two"))
    assert client.answer().json() == {"by": "app-route", "path": "/lane/two"}


def test_a_connection_that_starts_with_the_app_stays_with_it(connect: Callable[[], Client]) -> None:
    client = connect()
    client.send(request("GET", "/app/echo"))
    assert by(client.answer()) == "app"
    client.send(request("GET", "/lane/x"))
    assert by(client.answer()) == "app-route"


@pytest.mark.parametrize(
    ("data", "status", "first", "then"),
    [
        pytest.param(
            b"\r\n" + request("POST", "/lane/trickled", body=b"hello"),
            200,
            "lane",
            "lane",
            id="lane-request-after-a-crlf",
        ),
        pytest.param(request("GET", "/app/echo"), 200, "app", "app-route", id="app-request"),
        pytest.param(
            request("GET", "/lanex"), 404, None, "app-route", id="app-path-sharing-the-prefix"
        ),
    ],
)
def test_a_request_sent_byte_by_byte_is_decided_right(
    connect: Callable[[], Client],
    data: bytes,
    status: int,
    first: str | None,
    then: str,
) -> None:
    client = connect()
    client.trickle(data)
    answer = client.answer()
    assert answer.status == status
    if first is not None:
        assert by(answer) == first
    if first == "lane":
        assert answer.json()["body"] == "hello"
    client.send(request("GET", "/lane/next"))
    assert by(client.answer()) == then


def test_blank_lines_before_a_lanes_request_in_the_same_read(connect: Callable[[], Client]) -> None:
    client = connect()
    client.send(b"\r\n\r\n" + request("GET", "/lane/x"))
    assert by(client.answer()) == "lane"


# -- bodies -----------------------------------------------------------------------------


def test_expect_100_continue_gets_the_interim_answer_then_the_answer(
    connect: Callable[[], Client],
) -> None:
    client = connect()
    client.send(request("POST", "/lane/upload", "Content-Length: 5", "Expect: 100-continue"))
    assert client.answer().status == 100
    client.send(b"hello")
    answer = client.answer()
    assert (answer.status, answer.json()["body"]) == (200, "hello")


def test_a_body_of_exactly_the_limit_is_taken(connect: Callable[[], Client]) -> None:
    client = connect()
    client.send(request("POST", "/lane/upload", body=b"x" * LIMIT))
    assert client.answer().json()["body"] == "x" * LIMIT


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            request("POST", "/lane/upload", f"Content-Length: {LIMIT + 1}", "Expect: 100-continue"),
            id="by-content-length-before-the-100",
        ),
        pytest.param(
            CHUNKED_HEAD + chunked(b"a" * 600, b"b" * 600, end=False),
            id="chunked-while-streaming",
        ),
    ],
)
def test_a_body_over_the_limit_is_refused_and_the_connection_closed(
    connect: Callable[[], Client], data: bytes
) -> None:
    client = connect()
    client.send(data)
    answer = client.answer()
    assert answer.status == 413
    assert answer.json() == {"error": TOO_LARGE}
    assert answer.headers["connection"] == "close"
    assert client.at_eof()


def test_a_chunked_body_under_the_limit_arrives_whole(connect: Callable[[], Client]) -> None:
    client = connect()
    client.send(CHUNKED_HEAD)
    for chunk in (b"hel", b"lo ", b"world"):
        time.sleep(0.01)
        client.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    client.send(b"0\r\n\r\n")
    assert client.answer().json()["body"] == "hello world"


# -- pipelining and the hand-on behind a lane's answer ------------------------------------


def test_pipelined_lane_requests_are_answered_in_order(
    connect: Callable[[], Client], lane: Handler
) -> None:
    client = connect()
    client.send(request("GET", "/lane/slow-first") + request("GET", "/lane/second"))
    assert lane.started.wait(5)
    assert client.quiet(), "the second was answered before the first"
    lane.go.set()
    assert client.answer().json()["target"] == "/lane/slow-first"
    assert client.answer().json()["target"] == "/lane/second"
    client.send(request("GET", "/lane/third"))
    assert by(client.answer()) == "lane"


def test_a_pipelined_request_that_closes_the_connection_is_answered_after_the_first(
    connect: Callable[[], Client],
) -> None:
    client = connect()
    client.send(request("GET", "/lane/first") + request("GET", "/lane/last", "Connection: close"))
    first = client.answer()
    assert first.json()["target"] == "/lane/first"
    assert "connection" not in first.headers
    last = client.answer()
    assert last.json()["target"] == "/lane/last"
    assert last.headers["connection"] == "close"
    assert client.at_eof()


def test_more_pipelined_requests_than_are_read_ahead_are_all_answered(
    connect: Callable[[], Client],
) -> None:
    client = connect()
    client.send(b"".join(request("GET", f"/lane/{i}") for i in range(40)))
    assert [client.answer().json()["target"] for _ in range(40)] == [
        f"/lane/{i}" for i in range(40)
    ]
    client.send(request("GET", "/lane/then"))
    assert by(client.answer()) == "lane"


def test_an_app_request_pipelined_in_the_same_read_is_refused_after_the_lanes_answer(
    connect: Callable[[], Client],
) -> None:
    client = connect()
    client.send(request("GET", "/lane/first") + request("GET", "/app/echo"))
    first = client.answer()
    assert first.json()["target"] == "/lane/first"
    assert "connection" not in first.headers, "the refusal closes the connection"
    refusal = client.answer()
    assert refusal.status == 400
    assert "pipelined in the same read" in refusal.json()["error"]
    assert refusal.headers["connection"] == "close"
    assert client.at_eof()


def test_an_app_request_sent_while_a_lanes_is_in_flight_waits_for_its_answer(
    connect: Callable[[], Client], lane: Handler
) -> None:
    client = connect()
    client.send(request("GET", "/lane/slow"))
    assert lane.started.wait(5)
    client.send(request("POST", "/app/echo", body=b"later"))
    assert client.quiet()
    lane.go.set()
    assert client.answer().json()["target"] == "/lane/slow"
    assert client.answer().json() == {"by": "app", "path": "/app/echo", "body": "later"}
    client.send(request("GET", "/lane/x"))
    assert by(client.answer()) == "app-route"


# -- closing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(request("GET", "/lane/x", version="1.0"), id="http-1.0"),
        pytest.param(request("GET", "/lane/x", "Connection: close"), id="connection-close"),
        pytest.param(
            request("GET", "/lane/x", "Connection: close") + request("GET", "/lane/unanswered"),
            id="connection-close-then-another-request",
        ),
    ],
)
def test_a_request_that_closes_the_connection_is_answered_then_closed(
    connect: Callable[[], Client], data: bytes
) -> None:
    client = connect()
    client.send(data)
    answer = client.answer()
    assert answer.json()["target"] == "/lane/x"
    assert answer.headers["connection"] == "close"
    assert client.at_eof()


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    served = serve(timeout_keep_alive=0.5)
    try:
        client = Client(served.port)
        with contextlib.closing(client):
            client.send(request("GET", "/lane/a"))
            assert "connection" not in client.answer().headers
            time.sleep(0.2)  # under the timeout: the next request finds it open
            client.send(request("GET", "/lane/b"))
            assert client.answer().json()["target"] == "/lane/b"
            idle = time.monotonic()
            assert client.at_eof()
            assert time.monotonic() - idle > 0.3
    finally:
        served.stop()


# -- errors -----------------------------------------------------------------------------


def test_an_api_error_is_answered_with_its_status(connect: Callable[[], Client]) -> None:
    client = connect()
    client.send(request("GET", "/lane/forbidden"))
    answer = client.answer()
    assert answer.status == 403
    assert answer.headers["content-type"] == "application/json"
    status = answer.json()
    assert (status["kind"], status["reason"]) == ("Status", "Forbidden")
    assert status["message"] == "no entry to /lane/forbidden"
    client.send(request("GET", "/lane/after"))
    assert by(client.answer()) == "lane"


def test_a_failing_handler_is_a_500_and_the_server_serves_on(connect: Callable[[], Client]) -> None:
    client = connect()
    client.send(request("GET", "/lane/boom"))
    answer = client.answer()
    assert answer.status == 500
    assert answer.json() == {"error": "internal error (see the platform's log)"}
    client.send(request("GET", "/lane/same-connection"))
    assert by(client.answer()) == "lane"
    other = connect()
    other.send(request("GET", "/lane/new-connection"))
    assert by(other.answer()) == "lane"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET /lane/x HTTP/1.1\r\nbad header line\r\n\r\n", id="bad-header-line"),
        pytest.param(request("POST", "/lane/x", "Content-Length: abc"), id="bad-content-length"),
        pytest.param(b"\x00\x01\x02\x03", id="short-binary"),
        pytest.param(bytes(range(64)), id="long-binary"),
    ],
)
def test_bytes_that_are_not_http_are_a_400_and_closed(
    connect: Callable[[], Client], data: bytes
) -> None:
    client = connect()
    client.send(data)
    answer = client.answer()
    assert answer.status == 400
    assert answer.headers["connection"] == "close"
    assert client.at_eof()


def test_a_head_over_64_kib_is_a_431(connect: Callable[[], Client]) -> None:
    under, over = connect(), connect()
    under.send(request("GET", "/lane/x", "X-Big: " + "a" * 60_000))
    over.send(request("GET", "/lane/x", "X-Big: " + "a" * 70_000))
    assert by(under.answer()) == "lane"
    answer = over.answer()
    assert answer.status == 431
    assert answer.json() == {"error": "the request line and headers are over 65536 bytes"}
    assert over.at_eof()


def test_an_endless_header_is_refused_before_it_ends(connect: Callable[[], Client]) -> None:
    client = connect()
    client.send(b"GET /lane/x HTTP/1.1\r\nhost: t\r\nX-Big: ")
    for _ in range(16):  # then 64 KiB of its value, never ended
        time.sleep(0.002)
        client.send(b"a" * 4096)
    answer = client.answer()
    assert answer.status == 431
    assert answer.json() == {"error": "the request line and headers are over 65536 bytes"}
    assert client.at_eof()


def test_an_upgrade_is_refused(connect: Callable[[], Client]) -> None:
    client = connect()
    client.send(
        request(
            "GET",
            "/lane/ws",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        )
    )
    answer = client.answer()
    assert answer.status == 400
    assert "upgrad" in answer.json()["error"]
    assert client.at_eof()


# -- answers without a body -------------------------------------------------------------


def test_a_head_answer_has_the_handlers_content_length_and_no_body(
    connect: Callable[[], Client],
) -> None:
    client = connect()
    client.send(request("HEAD", "/lane/x") + request("GET", "/lane/after"))
    head = client.answer(head=True)
    assert (head.status, head.headers["content-length"]) == (200, "42")
    after = client.answer()  # would not parse had the HEAD answer carried a body
    assert after.json()["target"] == "/lane/after"


def test_a_204_has_no_content_length_and_no_body(connect: Callable[[], Client]) -> None:
    client = connect()
    client.send(request("GET", "/lane/empty"))
    empty = client.answer()
    assert empty.status == 204
    assert "content-length" not in empty.headers
    client.send(request("GET", "/lane/after"))
    after = client.answer()  # would not parse had the 204 carried the handler's body
    assert after.json()["target"] == "/lane/after"


# -- a request in flight ----------------------------------------------------------------


def test_a_client_gone_mid_request_cancels_the_handler(
    connect: Callable[[], Client], lane: Handler
) -> None:
    client = connect()
    client.send(request("GET", "/lane/slow"))
    assert lane.started.wait(5)
    client.close()
    assert lane.cancelled.wait(5)
    other = connect()
    other.send(request("GET", "/lane/x"))
    assert by(other.answer()) == "lane"


def wait_until_shutting_down(served: Served) -> None:
    """Until uvicorn has stopped listening, and so (in the same step) asked each
    connection to shut down."""
    deadline = time.monotonic() + 5
    while any(server.is_serving() for server in served.server.servers):
        assert time.monotonic() < deadline, "uvicorn did not start shutting down"
        time.sleep(0.005)


def test_graceful_shutdown_answers_the_request_in_flight_then_closes() -> None:
    served = serve()
    busy, idle = Client(served.port), Client(served.port)
    try:
        idle.send(request("GET", "/lane/x"))
        assert by(idle.answer()) == "lane"
        busy.send(request("GET", "/lane/slow") + request("GET", "/lane/behind"))
        assert served.handler.started.wait(5)

        served.server.should_exit = True
        wait_until_shutting_down(served)
        assert idle.at_eof(), "an idle connection is closed at once"
        assert busy.quiet()

        served.handler.go.set()
        answer = busy.answer()
        assert answer.json()["target"] == "/lane/slow"
        assert answer.headers["connection"] == "close"
        assert busy.at_eof(), "a request pipelined behind it is not answered"
        served.thread.join(timeout=5)
        assert not served.thread.is_alive()
    finally:
        busy.close()
        idle.close()
        served.handler.go.set()
        served.stop()


def test_graceful_shutdown_does_not_hand_on_a_request_waiting_behind_the_answer() -> None:
    served = serve()
    client = Client(served.port)
    try:
        client.send(request("GET", "/lane/slow"))
        assert served.handler.started.wait(5)
        client.send(request("GET", "/app/echo?sent-before-the-shutdown"))
        assert client.quiet()
        served.server.should_exit = True
        wait_until_shutting_down(served)

        served.handler.go.set()
        answer = client.answer()
        assert answer.json()["target"] == "/lane/slow"
        assert answer.headers["connection"] == "close"
        assert client.at_eof()
        served.thread.join(timeout=5)
        assert "sent-before-the-shutdown" not in APP_QUERIES
    finally:
        client.close()
        served.handler.go.set()
        served.stop()
