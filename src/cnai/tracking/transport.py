"""A small HTTP/1.1 client on the standard library: the tracking SDK's way to the server.

Every workload process imports cnai and logs metrics through :mod:`cnai.tracking.sdk`,
so that path must stay light: httpx (with rich, urllib.request and more behind it) costs
a training script or a tuning trial a few hundred milliseconds of CPU before its first
step. This client does only what the SDK needs: JSON bodies, query parameters, streamed
file uploads, a timeout per client or per request, and keep-alive connections, one per
thread (the SDK's sender thread and the caller's thread share a client).

A connection idle for longer than ``IDLE_S`` is not reused (uvicorn, the platform's
server, closes idle ones after 5 s), so that a request is rarely sent on a connection
the server is closing. One that still fails before any answer on a reused connection is
sent once more on a fresh one; every other failure to get an answer raises
:class:`TransportError`. Unlike httpx it reads no
proxy settings from the environment, and HTTPS verifies certificates against the
system's store (``ssl.create_default_context``).
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from json import dumps, loads
from typing import IO, Any

DEFAULT_TIMEOUT = 30.0
# A connection idle longer than this is closed rather than reused: below uvicorn's
# default keep-alive timeout (5 s), so the server has not begun to close it.
IDLE_S = 4.0

# Sent in blocks this large when streaming a file (http.client's default is 8 KiB).
_BLOCK = 1 << 16

# Characters left as they are in a request path: httpx's set (the WHATWG path
# percent-encode set's complement), "%" included so that existing escapes survive.
_PATH_SAFE = "".join(chr(i) for i in range(0x21, 0x7F) if chr(i) not in '"#<>?`{}')

# What a reused connection raises when the server had closed it while it was idle:
# RemoteDisconnected (both a ConnectionResetError and a BadStatusLine), BrokenPipeError,
# ConnectionResetError, ConnectionAbortedError. IncompleteRead is left out: it comes
# only while reading a body, after the answer has begun.
_STALE = (ConnectionError, http.client.BadStatusLine)


class TransportError(Exception):
    """No answer came: the connection was refused or lost, timed out, or spoke bad HTTP."""


class _Unset:
    """The default of ``timeout``: the client's own (``None`` means no timeout)."""


_UNSET = _Unset()


@dataclass(frozen=True)
class Response:
    """An answer, read whole before it is returned (so the connection is free again)."""

    status_code: int
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not."""
        return loads(self.content)


class Transport:
    """Requests to one server, ``base_url``, whose path prefixes every request's, with
    ``headers`` on each and a ``timeout`` in seconds (``None``: wait as long as it takes)
    unless the request names its own. Threads may share it: each gets its own
    connection, and ``close()`` closes them all."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self._kind: type[http.client.HTTPConnection] = (
            http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        )
        self._host, self._port = url.hostname, url.port
        self._prefix = url.path.rstrip("/")
        self._local = threading.local()
        self._lock = threading.Lock()
        # Every connection made, by whichever thread, so that close() reaches them all; a
        # thread that makes a request after close() reopens its own, still listed here.
        self._connections: list[http.client.HTTPConnection] = []

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Response:
        return self.request("PUT", path, **kw)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | _Unset | None = _UNSET,
    ) -> Response:
        """Send one request and read its answer. ``json`` is sent as a JSON body,
        ``content`` as it is: bytes, or a file streamed from where it stands to its end.
        Raises TransportError when no answer comes."""
        target = urllib.parse.quote(self._prefix + path, safe=_PATH_SAFE)
        if params:
            target += "?" + urllib.parse.urlencode(params, doseq=True)
        head = {**self.headers, **(headers or {})}
        body = content
        if json is not None:
            body = dumps(json).encode()
            head.setdefault("content-type", "application/json")
        if body is not None and not isinstance(body, bytes):
            # Without a length http.client would send a file chunked.
            start = body.tell()
            head["content-length"] = str(body.seek(0, os.SEEK_END) - start)
            body.seek(start)
        wait = self.timeout if isinstance(timeout, _Unset) else timeout
        conn = self._connection()
        try:
            return self._exchange(conn, method, target, body, head, wait)
        except BaseException as exc:
            conn.close()  # whatever state it was left in, the next request starts afresh
            if isinstance(exc, OSError | http.client.HTTPException):
                raise TransportError(f"{method} {self.base_url}{target}: {exc!r}") from exc
            raise

    def close(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        now = time.monotonic()
        if conn is not None and now - getattr(self._local, "used", now) > IDLE_S:
            conn.close()  # connects afresh on demand
        self._local.used = now
        if conn is None:
            conn = self._kind(self._host, self._port, timeout=self.timeout, blocksize=_BLOCK)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        body: bytes | IO[bytes] | None,
        head: dict[str, str],
        wait: float | None,
    ) -> Response:
        reused = conn.sock is not None  # http.client connects on demand when it is None
        stream = None if body is None or isinstance(body, bytes) else body
        start = 0 if stream is None else stream.tell()
        try:
            answer = _send(conn, method, target, body, head, wait)
        except _STALE:
            if not reused:
                raise
            # Most likely the server closed the connection while it sat idle, and so never
            # read this request: once more on a fresh connection, from the body's start.
            conn.close()
            if stream is not None:
                stream.seek(start)
            answer = _send(conn, method, target, body, head, wait)
        content = answer.read()
        return Response(answer.status, content, {k.lower(): v for k, v in answer.getheaders()})


def _send(
    conn: http.client.HTTPConnection,
    method: str,
    target: str,
    body: bytes | IO[bytes] | None,
    head: dict[str, str],
    wait: float | None,
) -> http.client.HTTPResponse:
    """Send the request and read the answer's status line and headers."""
    conn.timeout = wait  # used when it connects
    if conn.sock is not None:
        conn.sock.settimeout(wait)
    conn.request(method, target, body=body, headers=head)
    return conn.getresponse()
