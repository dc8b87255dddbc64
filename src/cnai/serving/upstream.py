"""The gateway's client to the replicas: keep-alive HTTP/1.1 on asyncio protocols.

**Why not httpx.** The request path is the product, and the gateway adds a hop to it.
:class:`Upstreams` is a keep-alive HTTP/1.1 client on asyncio protocols and httptools
(the parser uvicorn already uses). Measured proxying a one-line JSON answer on loopback,
sequential requests, on uvloop (2-core machine with other load, so read the ratios):
the gateway process spent about 105 us of CPU per request in the hop with this client,
against 800-1,050 us through ``httpx.AsyncHTTPTransport`` (1,200-1,850 us as installed:
httpcore retries a failing ``import sniffio`` on each lock, 4 per request, since anyio
4.16 dropped sniffio) and 415-515 us through aiohttp. httpx's client would also keep
one cookie jar for every caller, and log each request at INFO.

A request waits for its answer on a future that a timer fails at the deadline, rather
than under ``asyncio.timeout`` (a context manager and a cancellation per request).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

# An idle connection is dropped after 4 s, before uvicorn (the model server) closes it
# at 5 s, so that a request is rarely sent on a connection the replica is closing.
KEEPALIVE_S = 4.0
MAX_IDLE = 256  # idle connections kept per replica


@dataclass(frozen=True, slots=True)
class Answer:
    """A replica's whole answer."""

    status: int
    content_type: bytes | None
    body: bytes
    length: bytes | None  # its Content-Length (what a HEAD answer announces)


class Unreachable(Exception):
    """No whole answer came: the connection was refused, lost, or spoke bad HTTP."""


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to a replica, carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[Answer] | None = None
        self.head = False
        self.keep_alive = False  # the answer leaves the connection open for the next
        self.received = False  # any byte of the current answer
        self.headers_done = False
        self.framed = False  # a length or chunks say where the body ends (else: at EOF)
        self.content_type: bytes | None = None
        self.length: bytes | None = None
        self.chunks: list[bytes] = []

    def start(self, waiter: asyncio.Future[Answer], head: bool, request: list[bytes]) -> None:
        self.waiter, self.head = waiter, head
        self.received = self.headers_done = self.framed = self.keep_alive = False
        self.content_type = self.length = None
        self.chunks = []
        assert self.transport is not None
        self.transport.writelines(request)

    @property
    def reusable(self) -> bool:
        return self.keep_alive and not self.closed and not self.head

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(Unreachable(f"bad HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.framed and exc is None:
            self._done()  # a body that ends with the connection
        else:
            self._fail(Unreachable(f"connection lost: {exc!r}" if exc else "connection closed"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self.content_type = value
        elif name == b"content-length":
            self.length, self.framed = value, True
        elif name == b"transfer-encoding":
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.head or self.parser.get_status_code() in (204, 304):
            self.framed = True
            if self.head:  # the parser would wait for the announced body
                self._done()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # 1xx: the answer follows
            self.headers_done = self.framed = False
            self.content_type = self.length = None
            return
        # Asked now: the parser forgets the answer's framing once this returns.
        self.keep_alive = self.parser.should_keep_alive()
        self._done()

    def _done(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            body = b"".join(self.chunks)
            status = self.parser.get_status_code()
            waiter.set_result(Answer(status, self.content_type, body, self.length))

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Upstreams:
    """Keep-alive connections to the replicas, by URL (``http://HOST:PORT``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._idle: dict[str, list[_Connection]] = {}
        self._hosts: dict[str, tuple[str, int, bytes]] = {}
        self._closed = False

    async def request(
        self,
        url: str,
        method: bytes,
        target: bytes,
        body: bytes,
        content_type: bytes | None,
        timeout: float,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> Answer:
        """Send the request (with ``headers`` besides its length and type) and read the
        whole answer. Raises :class:`Unreachable` if none came, TimeoutError if none
        came within ``timeout`` seconds."""
        host, port, authority = self._host(url)
        head = [method, b" ", target, b" HTTP/1.1\r\nhost: ", authority]
        head.append(b"\r\ncontent-length: %d\r\n" % len(body))
        if content_type is not None:
            head += (b"content-type: ", content_type, b"\r\n")
        for name, value in headers:
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        request = [b"".join(head), body]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        head_only = method == b"HEAD"
        conn = self._take(url)
        if conn is not None:
            try:
                return await self._exchange(url, conn, head_only, request, deadline)
            except Unreachable:
                if conn.received:
                    raise
                # Most likely the replica closed it while it sat idle, before reading
                # this request: once more on a new connection.
        async with asyncio.timeout_at(deadline):
            conn = await self._connect(host, port)
        return await self._exchange(url, conn, head_only, request, deadline)

    async def aclose(self) -> None:
        """Close the idle connections (those in use close as their requests end)."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    def _host(self, url: str) -> tuple[str, int, bytes]:
        found = self._hosts.get(url)
        if found is None:
            try:
                parts = urlsplit(url)
                port = parts.port or 80
            except ValueError as exc:
                raise Unreachable(f"bad replica URL {url!r}: {exc}") from None
            if parts.scheme != "http" or not parts.hostname:
                raise Unreachable(f"bad replica URL {url!r}: only http://HOST:PORT")
            found = self._hosts[url] = (parts.hostname, port, parts.netloc.encode())
        return found

    def _take(self, url: str) -> _Connection | None:
        """The most recently used idle connection to ``url`` that is still fresh."""
        idle = self._idle.get(url)
        now = self.clock()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_S:
                return conn
            conn.close()
        return None

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, host, port)
        except OSError as exc:
            raise Unreachable(f"cannot connect: {exc}") from None
        return conn

    async def _exchange(
        self, url: str, conn: _Connection, head: bool, request: list[bytes], deadline: float
    ) -> Answer:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Answer] = loop.create_future()
        timer = loop.call_at(deadline, _expire, waiter)
        conn.start(waiter, head, request)
        try:
            answer = await waiter
        except BaseException:
            conn.close()  # in whatever state it was left: never reused
            raise
        finally:
            timer.cancel()
        if conn.reusable and not self._closed:
            conn.idle_since = self.clock()
            idle = self._idle.setdefault(url, [])
            if len(idle) >= MAX_IDLE:
                idle.pop(0).close()
            idle.append(conn)
        else:
            conn.close()
        return answer


def _expire(waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
