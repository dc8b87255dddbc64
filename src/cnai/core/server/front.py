"""The platform's HTTP front: fast lanes for data paths, ahead of the ASGI app.

uvicorn turns each request into an ASGI scope and a task, then the request passes the
middleware and the router: the right price for the resource API, too high for a data
path whose cost is the product's. Measured in the platform, the serving gateway's
Starlette route spent about 700 us of CPU per proxied request, four fifths of it in that
machinery (docs/benchmarks.md, "Serving gateway").

The front is the protocol uvicorn runs for each connection (``uvicorn.Config(http=...)``,
built by :func:`front_protocol`). A request whose target starts with a :class:`Lane`'s
prefix is parsed here (httptools, as uvicorn does), handed whole to the lane's handler,
and its answer written back. At the first request for anything else the connection goes
to uvicorn's own protocol with the bytes received so far, as uvicorn itself hands a
connection to its WebSocket protocol, and stays there: a lane's requests on such a
connection reach the lane's ASGI route, which a lane keeps beside it (same answers,
slower).

As uvicorn does, the front keeps connections alive (closing them after the server's
keep-alive timeout idle), answers ``Expect: 100-continue``, answers pipelined requests
in order, answers a request in flight before a graceful shutdown closes its connection,
sends the server's ``date`` and ``server`` headers, and answers 400 to bytes that are
not HTTP. It refuses with a clear error, then closes the connection: a body over the
lane's limit (413), a request line and headers over 64 KiB (431), an upgrade (400), and
a request for anything else pipelined behind a lane's request *in the same read* (400:
its bytes went through the lane's parser already, so they cannot be handed on; no
common client pipelines, and one that sends the next request after the answer, or in a
read of its own, is handed on).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

import httptools
from pydantic_core import to_json
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cnai.core.errors import ApiError

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024  # the request line and headers of a lane's request
_DECIDE_BYTES = 8 * 1024  # a request line not ended by then is uvicorn's to judge
_MAX_QUEUED = 16  # pipelined requests read ahead of their answers
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")  # what a method is made of (RFC 9110)
JSON = b"application/json"
_HEAD_TOO_LARGE = f"the request line and headers are over {MAX_HEAD_BYTES} bytes"


@dataclass(slots=True)
class LaneRequest:
    """A whole request for a lane."""

    method: bytes
    target: bytes  # as sent: /PATH?QUERY, escapes kept
    headers: list[tuple[bytes, bytes]]  # names in lower case, values as sent
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(slots=True)
class LaneResponse:
    """A whole answer. The front adds ``content-length`` unless ``headers`` carry one
    (what a HEAD answer announces), and the server's ``date`` and ``server``."""

    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


Handler = Callable[[LaneRequest], Awaitable[LaneResponse]]


@dataclass(frozen=True, slots=True)
class Lane:
    """Requests whose target starts with ``prefix`` go to ``handler``."""

    prefix: bytes
    handler: Handler
    max_body_bytes: int


def error_response(status: int, message: str) -> LaneResponse:
    """``{"error": message}`` with ``status``."""
    return LaneResponse(status, to_json({"error": message}), [(b"content-type", JSON)])


def front_protocol(lanes: Sequence[Lane]) -> type[asyncio.Protocol]:
    """What to give ``uvicorn.Config(http=...)``: the front over ``lanes``, or uvicorn's
    own protocol if there are none."""
    if not lanes:
        return HttpToolsProtocol
    return cast(type[asyncio.Protocol], functools.partial(FrontProtocol, lanes=tuple(lanes)))


@functools.cache
def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


class _Undecided:
    """The target of the request so far may or may not start with a lane's prefix."""


_UNDECIDED = _Undecided()
# Queued ahead of their answers: a request for a lane, or a refusal to write, then close.
_Pending = tuple[Lane, LaneRequest, bool] | LaneResponse


class _Stop(Exception):
    """Raised in a parser callback to stop parsing: the request is refused."""


class FrontProtocol(asyncio.Protocol):
    """One connection: a lane's requests answered here, the rest handed to uvicorn."""

    def __init__(
        self,
        config: Any,  # uvicorn.Config
        server_state: Any,  # uvicorn.server.ServerState
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        lanes: tuple[Lane, ...],
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.lanes = lanes
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpRequestParser | None = None
        self.pending: deque[_Pending] = deque()
        self.task: asyncio.Task[None] | None = None
        self.undecided = b""  # the start of a request not yet known to be a lane's
        self.deferred = b""  # another's request, handed on once the answers owed are sent
        self.closing = False  # close once the answers owed are sent; read no more
        self.lost = False
        self.writable = True
        self.reading = True
        self.idle_timer: asyncio.TimerHandle | None = None
        # The request being parsed.
        self.in_message = False
        self.lane: Lane | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.head_done = False
        self.head_fed = 0  # bytes of reads that were all head
        self.completed = 0  # requests parsed whole
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.refusal: LaneResponse | None = None

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.server_state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.closing = True
        self.server_state.connections.discard(self)
        self._cancel_idle()
        if self.task is not None:
            self.task.cancel()  # nobody reads the answer
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        self._cancel_idle()
        if self.closing:
            return
        if self.deferred:
            self.deferred += data
            return
        if not self.in_message:
            # A request starts here: a lane's, or the connection goes to uvicorn.
            if self.undecided:
                data, self.undecided = self.undecided + data, b""
            lane = self._choose(data)
            if isinstance(lane, _Undecided):
                if len(data) <= _DECIDE_BYTES:
                    self.undecided = data
                    return
                lane = None
            if lane is None:
                if self.task is None and not self.pending:
                    self._hand_on(data)
                else:  # answers are owed first
                    self.deferred = data
                    self._pause_reading()
                return
        self._feed(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport (answers in flight are lost with it, as uvicorn)

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        self._next()

    # -- uvicorn's server ---------------------------------------------------------------

    def shutdown(self) -> None:
        """Graceful shutdown: answer what is in flight, then close."""
        self.closing = True
        self.pending.clear()  # pipelined behind it: not answered, as uvicorn
        if self.task is None and self.transport is not None:
            self.transport.close()

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.lane = None
        self.url = b""
        self.headers = []
        self.head_bytes = 0
        self.head_done = False
        self.head_fed = 0
        self.body = []
        self.body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_bytes += len(url)
        if self.head_bytes > MAX_HEAD_BYTES:
            self._refuse(431, _HEAD_TOO_LARGE)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > MAX_HEAD_BYTES:
            self._refuse(431, _HEAD_TOO_LARGE)
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        lane = self._lane_of(self.url)
        if lane is None:
            self._refuse(
                400,
                "a request for a path outside "
                + ", ".join(repr(lane.prefix.decode()) for lane in self.lanes)
                + " was pipelined in the same read as one inside: send it after the answer",
            )
        assert lane is not None
        self.lane = lane
        self.head_done = True
        expect = False
        for name, value in self.headers:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # the parser refuses it
                if declared > lane.max_body_bytes:
                    self._refuse(413, self._too_large(lane))
            elif name == b"expect" and value.lower() == b"100-continue":
                expect = True
        if self.parser.should_upgrade():
            self._refuse(400, "upgrading the connection is not supported here")
        if expect and self.task is None and not self.pending and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        assert self.lane is not None
        self.body_bytes += len(body)
        if self.body_bytes > self.lane.max_body_bytes:
            self._refuse(413, self._too_large(self.lane))
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.parser is not None
        assert self.lane is not None
        self.in_message = False
        self.completed += 1
        keep_alive = self.parser.should_keep_alive()
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        request = LaneRequest(self.parser.get_method(), self.url, self.headers, body)
        self.pending.append((self.lane, request, keep_alive))
        if not keep_alive:
            self.closing = True  # what follows it is not read
        elif len(self.pending) > _MAX_QUEUED:
            self._pause_reading()
        self._next()

    # -- internals --------------------------------------------------------------------

    def _choose(self, data: bytes) -> Lane | _Undecided | None:
        """The lane of the request starting ``data``; None if another's; _UNDECIDED if
        its target is not all there yet."""
        line = data.lstrip(b"\r\n")
        space = line.find(b" ", 0, 32)
        if space < 0:
            # Bytes that cannot start a request line are uvicorn's to refuse, now.
            return _UNDECIDED if len(line) < 32 and _TOKEN.fullmatch(line) else None
        end = line.find(b" ", space + 1)
        target = line[space + 1 :] if end < 0 else line[space + 1 : end]
        for lane in self.lanes:
            if target.startswith(lane.prefix):
                return lane
            if end < 0 and lane.prefix.startswith(target):
                return _UNDECIDED
        return None

    def _lane_of(self, target: bytes) -> Lane | None:
        for lane in self.lanes:
            if target.startswith(lane.prefix):
                return lane
        return None

    def _feed(self, data: bytes) -> None:
        if self.parser is None:
            self.parser = httptools.HttpRequestParser(self)
            # Answer a request that closes the connection even if more follows it.
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        completed = self.completed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse_now(400, "upgrading the connection is not supported here")
            return
        except httptools.HttpParserError as exc:
            if self.refusal is not None:
                refusal, self.refusal = self.refusal, None
                self._queue_refusal(refusal)
            else:
                self._refuse_now(400, f"invalid HTTP request: {exc}")
            return
        if self.completed == completed and self.in_message and not self.head_done:
            # All of this read was head (no request ended in it, and the head goes on).
            # httptools holds a header until it ends, so an endless one would grow
            # without bound before on_header could count it.
            self.head_fed += len(data)
            if self.head_fed > MAX_HEAD_BYTES:
                self._refuse_now(431, _HEAD_TOO_LARGE)

    def _refuse(self, status: int, message: str) -> None:
        """From a parser callback: stop parsing, answer ``status``, close."""
        self.refusal = error_response(status, message)
        raise _Stop(message)

    def _refuse_now(self, status: int, message: str) -> None:
        self._queue_refusal(error_response(status, message))

    def _queue_refusal(self, refusal: LaneResponse) -> None:
        self.in_message = False
        self.closing = True
        self._pause_reading()
        self.pending.append(refusal)
        self._next()

    @staticmethod
    def _too_large(lane: Lane) -> str:
        return f"the request body is larger than the limit of {lane.max_body_bytes} bytes"

    def _next(self) -> None:
        """Start on the next request owed an answer, if none is being answered."""
        if self.task is not None or self.lost or not self.writable:
            return
        if not self.pending:
            if self.deferred and not self.closing:  # not after a graceful shutdown's close
                data, self.deferred = self.deferred, b""
                self._hand_on(data)
            elif self.closing:
                if self.transport is not None:
                    self.transport.close()
            else:
                self._resume_reading()
                if not self.in_message:
                    self._start_idle()
            return
        item = self.pending.popleft()
        if isinstance(item, LaneResponse):  # a refusal: the last answer
            self._write(item, head=False, keep_alive=False)
            return
        lane, request, keep_alive = item
        task = self.loop.create_task(self._answer(lane, request, keep_alive))
        self.task = task
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _answer(self, lane: Lane, request: LaneRequest, keep_alive: bool) -> None:
        try:
            response = await lane.handler(request)
        except ApiError as err:
            response = LaneResponse(err.code, to_json(err.to_status()), [(b"content-type", JSON)])
        except Exception:
            log.exception("the handler of %s failed on %r", lane.prefix.decode(), request.target)
            response = error_response(500, "internal error (see the platform's log)")
        finally:
            self.task = None
        if self.lost:
            return
        # The last answer owed closes the connection (a refusal queued behind this one
        # closes it itself).
        last = not keep_alive or (self.closing and not self.pending)
        self._write(response, request.method == b"HEAD", not last)
        self._next()

    def _write(self, response: LaneResponse, head: bool, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or self.lost:
            return
        status = response.status
        parts = [_status_line(status)]
        for name, value in self.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        length = False
        for name, value in response.headers:
            parts += (name, b": ", value, b"\r\n")
            length = length or name == b"content-length"
        bodiless = status < 200 or status in (204, 304)
        if not length and not bodiless:
            parts.append(b"content-length: %d\r\n" % len(response.body))
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if not head and not bodiless:
            parts.append(response.body)
        transport.write(b"".join(parts))
        self.server_state.total_requests += 1
        if not keep_alive:
            self.closing = True
            self.pending.clear()
            transport.close()

    def _hand_on(self, data: bytes) -> None:
        """The connection goes to uvicorn's protocol, ``data`` first."""
        transport = self.transport
        assert transport is not None
        self._cancel_idle()
        self.server_state.connections.discard(self)
        self.closing = True  # nothing more comes here
        protocol = HttpToolsProtocol(
            config=self.config,
            server_state=self.server_state,
            app_state=self.app_state,
            _loop=self.loop,
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if not self.reading:
            transport.resume_reading()
        protocol.data_received(data)

    def _start_idle(self) -> None:
        if self.idle_timer is None:
            self.idle_timer = self.loop.call_later(self.config.timeout_keep_alive, self._idle)

    def _cancel_idle(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def _idle(self) -> None:
        self.idle_timer = None
        if self.task is None and not self.pending and not self.in_message and self.transport:
            self.transport.close()

    def _pause_reading(self) -> None:
        if self.reading and self.transport is not None and not self.lost:
            self.reading = False
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self.reading and self.transport is not None and not self.lost:
            self.reading = True
            self.transport.resume_reading()
