"""The gateway's client to the replicas (:class:`cnai.serving.upstream.Upstreams`),
against scripted raw HTTP/1.1 servers on loopback ports."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from cnai.serving.upstream import Answer, Unreachable, Upstreams

from .conftest import free_port

HANG = b"<hang>"


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """The client's tests on both loops: the platform serves on uvloop."""
    return request.param  # a Scripted answer: read the request, never answer


OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


class Scripted:
    """A raw HTTP/1.1 server on a loopback port: each request it reads gets the next of
    ``answers`` as it is (None: the connection is closed instead, HANG: no answer ever);
    an answer saying ``connection: close`` closes the connection after it."""

    def __init__(self, *answers: bytes | None) -> None:
        self.answers = list(answers)
        self.connections = 0
        self.requests: list[bytes] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()
        for task in self._tasks:  # those waiting for a next request on a kept connection
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        self.connections += 1
        try:
            while not self._stop.is_set():
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"content-length: (\d+)", head)
                body = await reader.readexactly(int(length.group(1)) if length else 0)
                self.requests.append(head + body)
                answer = self.answers.pop(0)
                if answer is None:
                    break
                if answer == HANG:
                    await self._stop.wait()
                    break
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def fetch(up: Upstreams, url: str, method: bytes = b"GET", timeout: float = 5) -> Answer:
    return await up.request(url, method, b"/v2?x=1", b"{}", b"application/json", timeout)


@pytest.mark.parametrize(
    ("answer", "status", "body", "content_type"),
    [
        pytest.param(OK, 200, b"ok", b"text/plain", id="content-length"),
        pytest.param(
            b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            400,
            b"abcde",
            None,
            id="chunked",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end",
            200,
            b"to the end",
            None,
            id="body-ends-with-the-connection",
        ),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", 204, b"", None, id="no-content"),
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\n" + OK, 200, b"ok", b"text/plain", id="after-100"
        ),
    ],
)
@pytest.mark.anyio
async def test_client_reads_each_kind_of_answer(
    answer: bytes, status: int, body: bytes, content_type: bytes | None
) -> None:
    up = Upstreams()
    async with Scripted(answer) as url:
        got = await fetch(up, url)
        assert (got.status, got.body, got.content_type) == (status, body, content_type)
    await up.aclose()


@pytest.mark.anyio
async def test_client_sends_the_request_as_given() -> None:
    up = Upstreams()
    scripted = Scripted(OK)
    async with scripted as url:
        await fetch(up, url, b"POST")
    await up.aclose()
    authority = url.removeprefix("http://").encode()
    assert scripted.requests == [
        b"POST /v2?x=1 HTTP/1.1\r\nhost: " + authority + b"\r\ncontent-length: 2\r\n"
        b"content-type: application/json\r\n\r\n{}"
    ]


@pytest.mark.anyio
async def test_client_keeps_connections_alive_until_they_idle_too_long() -> None:
    now = [0.0]
    up = Upstreams(clock=lambda: now[0])
    scripted = Scripted(OK, OK, OK)
    async with scripted as url:
        await fetch(up, url)
        await fetch(up, url)
        assert scripted.connections == 1
        now[0] += 4.5  # past KEEPALIVE_S: the replica may be closing it
        await fetch(up, url)
        assert scripted.connections == 2
    await up.aclose()


@pytest.mark.anyio
async def test_client_resends_once_on_a_connection_closed_while_idle() -> None:
    up = Upstreams()
    scripted = Scripted(OK, None, OK)
    async with scripted as url:
        await fetch(up, url)
        got = await fetch(up, url)
        assert (got.status, scripted.connections, len(scripted.requests)) == (200, 2, 3)
    await up.aclose()


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param((b"garbage\r\n\r\n",), id="bad-http"),
        pytest.param((None,), id="closed-before-answering"),
        pytest.param(
            (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nshort",),
            id="lost-in-the-body",
        ),
    ],
)
@pytest.mark.anyio
async def test_client_failures_are_unreachable(answers: tuple[bytes | None, ...]) -> None:
    up = Upstreams()
    async with Scripted(*answers) as url:
        with pytest.raises(Unreachable):
            await fetch(up, url)
    await up.aclose()


@pytest.mark.anyio
async def test_client_refused_and_timed_out() -> None:
    up = Upstreams()
    with pytest.raises(Unreachable, match="cannot connect"):
        await fetch(up, f"http://127.0.0.1:{free_port()}")
    scripted = Scripted(HANG, OK)
    async with scripted as url:
        with pytest.raises(TimeoutError):
            await fetch(up, url, timeout=0.05)
        assert (await fetch(up, url)).status == 200
        assert scripted.connections == 2  # the one that timed out is not reused
    await up.aclose()


@pytest.mark.anyio
async def test_client_head_answer_has_no_body() -> None:
    up = Upstreams()
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 10\r\n\r\n"
    async with Scripted(answer) as url:
        got = await fetch(up, url, b"HEAD")
        assert (got.status, got.body, got.length) == (200, b"", b"10")
    await up.aclose()
