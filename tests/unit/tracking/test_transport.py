"""The SDK's standard-library HTTP client (tracking.transport) against a real server on a
loopback port: bodies, targets, streamed uploads, keep-alive and its failures."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cnai.tracking import transport
from cnai.tracking.transport import Transport, TransportError

from .conftest import RecordingServer


@pytest.fixture
def http(server: RecordingServer) -> Iterator[Transport]:
    with Transport(server.url, headers={"Authorization": "Bearer tok"}, timeout=10) as t:
        yield t


class _Reads(io.BufferedReader):
    """A file that remembers how much each read asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(path))
        self.sizes: list[int | None] = []

    def read(self, size: int | None = -1) -> bytes:
        self.sizes.append(size)
        return super().read(size)


def test_a_json_body_goes_with_the_auth_header_and_the_answer_parses(
    http: Transport, server: RecordingServer
) -> None:
    answer = http.post("/runs", json={"name": "r", "params": {"lr": "0.1"}})
    assert answer.status_code == 200
    assert answer.json()["method"] == "POST"
    assert server.bodies("/runs") == [{"name": "r", "params": {"lr": "0.1"}}]
    seen = server.seen[0]
    assert seen.headers["authorization"] == "Bearer tok"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["content-length"] == str(len(seen.body))


@pytest.mark.parametrize(
    ("base", "path", "params", "target"),
    [
        pytest.param("", "/runs", None, "/runs", id="plain-path"),
        pytest.param("/prefix/", "/runs", None, "/prefix/runs", id="base-url-path-prefixes-it"),
        pytest.param(
            "", "/runs", {"limit": 5, "group": "a b&c"}, "/runs?limit=5&group=a+b%26c", id="params"
        ),
        pytest.param(
            "", "/artifacts/my file#1.txt", None, "/artifacts/my%20file%231.txt", id="path-quoted"
        ),
        pytest.param("", "/artifacts/a%2Fb", None, "/artifacts/a%2Fb", id="escapes-kept"),
    ],
)
def test_the_request_target(
    server: RecordingServer, base: str, path: str, params: dict[str, Any] | None, target: str
) -> None:
    with Transport(server.url + base) as http:
        assert http.get(path, params=params).status_code == 200
    assert server.seen[0].path == target
    if params:
        query = parse_qs(urlsplit(server.seen[0].path).query)
        assert query == {k: [str(v)] for k, v in params.items()}


def test_a_file_is_streamed_with_its_length(
    http: Transport, server: RecordingServer, tmp_path: Path
) -> None:
    payload = os.urandom(300_001)
    path = tmp_path / "model.bin"
    path.write_bytes(payload)
    with _Reads(path) as f:
        answer = http.put("/artifacts/model.bin", content=f, timeout=None)
    assert answer.status_code == 200
    seen = server.seen[0]
    assert seen.body == payload
    assert seen.headers["content-length"] == str(len(payload))
    assert "transfer-encoding" not in seen.headers
    # Sent block by block, never read whole.
    assert f.sizes
    assert all(size is not None and 0 < size < len(payload) for size in f.sizes)


def test_two_requests_share_one_kept_alive_connection(
    http: Transport, server: RecordingServer
) -> None:
    http.get("/a")
    http.get("/b")
    assert [s.connection for s in server.seen] == [1, 1]
    assert server.connections == 1


def test_a_connection_idle_too_long_is_not_reused(
    http: Transport, server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    http.get("/a")
    monkeypatch.setattr(transport, "IDLE_S", 0.0)  # any idle time is too long now
    time.sleep(0.01)
    http.get("/b")
    assert [s.connection for s in server.seen] == [1, 2]


def test_each_thread_has_its_own_connection(http: Transport, server: RecordingServer) -> None:
    http.get("/main")
    other = threading.Thread(target=http.get, args=("/other",))
    other.start()
    other.join()
    http.get("/main-again")
    assert [s.connection for s in server.seen] == [1, 2, 1]


def test_a_connection_the_server_closed_while_idle_is_replaced_once(
    http: Transport, server: RecordingServer
) -> None:
    http.get("/hang-up")  # the server closes the connection after answering
    answer = http.post("/log", json={"n": 1})
    assert answer.json()["path"] == "/log"
    assert [s.connection for s in server.seen] == [1, 2]
    assert server.bodies("/log") == [{"n": 1}]


def test_a_streamed_upload_is_resent_whole_on_the_fresh_connection(
    http: Transport, server: RecordingServer, tmp_path: Path
) -> None:
    payload = os.urandom(200_000)
    path = tmp_path / "f.bin"
    path.write_bytes(payload)
    http.get("/hang-up")
    with path.open("rb") as f:
        assert http.put("/artifacts/f.bin", content=f).status_code == 200
    assert server.seen[-1].body == payload


def test_close_closes_the_connections(http: Transport, server: RecordingServer) -> None:
    http.get("/a")
    http.close()
    http.get("/b")  # a request after close() opens a fresh connection
    assert [s.connection for s in server.seen] == [1, 2]


def test_a_refused_connection_raises_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Transport(f"http://127.0.0.1:{port}") as http, pytest.raises(TransportError):
        http.get("/runs")


def test_no_answer_within_the_timeout_raises_transport_error(server: RecordingServer) -> None:
    with Transport(server.url, timeout=0.2) as http, pytest.raises(TransportError):
        http.get("/stall")
    assert [s.path for s in server.seen] == ["/stall"]  # timed out, not retried


def test_a_body_that_is_not_json_raises_value_error(http: Transport) -> None:
    answer = http.get("/text")
    assert answer.status_code == 200
    assert "not json" in answer.text
    with pytest.raises(ValueError):  # noqa: PT011 - json.JSONDecodeError, as httpx raises
        answer.json()


@pytest.mark.parametrize("url", ["127.0.0.1:8470", "ftp://host/", "http://"])
def test_a_base_url_that_is_not_http_is_refused_at_once(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        Transport(url)
