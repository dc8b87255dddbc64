"""A real HTTP/1.1 server on a loopback port that records what it is sent, for the SDK's
transport and worker-path tests.

It answers every request 200 with a JSON echo of it (``{"method", "path", "length"}``),
keeps connections alive, and counts the connections it accepts. Paths ending in
``/text`` get a body that is not JSON; ``/hang-up`` closes the connection after the
answer without saying so (as a server does to an idle keep-alive connection); ``/stall``
never answers until the test ends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest


@dataclass(frozen=True)
class Seen:
    """One request as the server read it."""

    method: str
    path: str  # the request target, query included, as sent
    headers: dict[str, str]  # lower-case names
    body: bytes
    connection: int  # which accepted connection it came on, from 1


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Seen] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.release = threading.Event()  # set at teardown: /stall gives up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self, suffix: str) -> list[Any]:
        """The JSON bodies of the requests whose path ends with ``suffix``."""
        return [json.loads(s.body) for s in self.seen if urlsplit(s.path).path.endswith(suffix)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless a side says close
    server: RecordingServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.number = self.server.connections

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output

    def do_GET(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.server.lock:
            self.server.seen.append(Seen(self.command, self.path, headers, body, self.number))
        route = urlsplit(self.path).path
        if route.endswith("/stall"):
            self.server.release.wait()
            self.close_connection = True
            return
        if route.endswith("/text"):
            payload = b"<html>not json</html>"
        else:
            echo = {"method": self.command, "path": self.path, "length": len(body)}
            payload = json.dumps(echo).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if route.endswith("/hang-up"):
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_GET


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    srv = RecordingServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)
