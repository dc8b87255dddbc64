"""Request bodies: a size limit enforced while reading, and JSON/YAML decoding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_core import from_json
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cnai.core.errors import ApiError, BadRequest, RequestTooLarge, UnsupportedMediaType
from cnai.core.manifests import parse_documents

# 3 MiB, as the Kubernetes API server's default request limit; objects are small and
# large payloads (datasets, models, artifacts) go to the artifact store instead.
DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024

_JSON_TYPES = {"", "application/json", "application/merge-patch+json", "text/json"}
_YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"request body is larger than the limit of {limit} bytes")


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``, by Content-Length or while streaming them in."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
        limit_for: Callable[[str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # The limit of a path, where some (artifact uploads) have their own.
        self.limit_for = limit_for or (lambda _path: max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope.get("path", ""))
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > max_bytes:
                    await _send_error(send, _too_large(max_bytes))
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _too_large(max_bytes)
            return message

        await self.app(scope, limited, send)


async def _send_error(send: Send, err: ApiError) -> None:
    from pydantic_core import to_json

    body = to_json(err.to_status())
    await send(
        {
            "type": "http.response.start",
            "status": err.code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_object(request: Request) -> dict[str, Any]:
    """Decode the body as one JSON or YAML object, with a clear 4xx when it is not."""
    raw = await request.body()
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON or YAML object")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in _JSON_TYPES:
        try:
            data = from_json(raw)
        except ValueError as exc:
            raise BadRequest(f"malformed JSON: {exc}") from None
    elif ctype in _YAML_TYPES:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("YAML body is not valid UTF-8") from None
        docs = parse_documents(text, "request body", expand_lists=False)
        if len(docs) != 1:
            raise BadRequest("send exactly one YAML document per request")
        data = docs[0]
    else:
        raise UnsupportedMediaType(
            f"content type {ctype!r} is not supported; use application/json or application/yaml"
        )
    if not isinstance(data, dict):
        raise BadRequest("the request body must be an object, not a list or a scalar")
    return data
