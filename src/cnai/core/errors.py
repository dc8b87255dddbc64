"""API errors shaped as Kubernetes ``Status`` objects, shared by server and client.

Every rejection names the field path and the rule it breaks, e.g.
``metadata.name: must be a DNS-1123 label``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One broken rule: the dotted field path and what the rule says."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ApiError(Exception):
    """An error with an HTTP status code and a machine-readable reason."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        causes: list[FieldError] | None = None,
        kind: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.causes = causes or []
        self.kind = kind
        self.name = name

    def to_status(self) -> dict[str, Any]:
        """The Kubernetes-style Status body sent to clients."""
        details: dict[str, Any] = {}
        if self.kind:
            details["kind"] = self.kind
        if self.name:
            details["name"] = self.name
        if self.causes:
            details["causes"] = [
                {"field": c.field, "message": c.message, "reason": c.reason} for c in self.causes
            ]
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body

    @classmethod
    def from_status(cls, code: int, body: Any) -> ApiError:
        """Rebuild the most specific error from a Status body (used by the client)."""
        if not isinstance(body, dict):
            body = {"message": str(body)}
        message = str(body.get("message") or f"HTTP {code}")
        details = body.get("details") or {}
        causes = [
            FieldError(str(c.get("field", "")), str(c.get("message", "")), str(c.get("reason", "")))
            for c in details.get("causes", [])
            if isinstance(c, dict)
        ]
        err_cls = _BY_REASON.get(str(body.get("reason", ""))) or _BY_CODE.get(code, ApiError)
        err = err_cls(message, causes=causes, kind=details.get("kind"), name=details.get("name"))
        err.status_code = code
        return err

    status_code: int | None = None

    def __str__(self) -> str:
        return self.message


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Gone(ApiError):
    code = 410
    reason = "Expired"


class RequestTooLarge(ApiError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(ApiError):
    """The object breaks one or more rules; ``causes`` lists each field and rule."""

    code = 422
    reason = "Invalid"

    @classmethod
    def of(
        cls, causes: list[FieldError], kind: str | None = None, name: str | None = None
    ) -> Invalid:
        summary = "; ".join(str(c) for c in causes)
        what = f"{kind} {name!r}" if kind and name else (kind or "object")
        return cls(f"{what} is invalid: {summary}", causes=causes, kind=kind, name=name)


class ServiceUnavailable(ApiError):
    code = 503
    reason = "ServiceUnavailable"


class InsufficientStorage(ApiError):
    """The disk under the state directory is full; the write was rolled back."""

    code = 507
    reason = "InsufficientStorage"


_BY_REASON: dict[str, type[ApiError]] = {
    c.reason: c
    for c in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        AlreadyExists,
        Conflict,
        Gone,
        RequestTooLarge,
        UnsupportedMediaType,
        Invalid,
        ServiceUnavailable,
        InsufficientStorage,
    )
}
_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    413: RequestTooLarge,
    415: UnsupportedMediaType,
    422: Invalid,
    503: ServiceUnavailable,
    507: InsufficientStorage,
}


class Unreachable(ApiError):
    """The client could not reach the API server at all."""

    code = 503
    reason = "Unreachable"
