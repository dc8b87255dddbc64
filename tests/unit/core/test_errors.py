"""API errors as Kubernetes Status bodies, and rebuilding the right error from one."""

from __future__ import annotations

import pytest

from cnai.core.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    Gone,
    InsufficientStorage,
    Invalid,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)

ALL = [
    (BadRequest, 400, "BadRequest"),
    (Unauthorized, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
    (NotFound, 404, "NotFound"),
    (MethodNotAllowed, 405, "MethodNotAllowed"),
    (AlreadyExists, 409, "AlreadyExists"),
    (Conflict, 409, "Conflict"),
    (Gone, 410, "Expired"),
    (RequestTooLarge, 413, "RequestEntityTooLarge"),
    (UnsupportedMediaType, 415, "UnsupportedMediaType"),
    (Invalid, 422, "Invalid"),
    (ServiceUnavailable, 503, "ServiceUnavailable"),
    (InsufficientStorage, 507, "InsufficientStorage"),
]


@pytest.mark.parametrize(
    ("cls", "code", "reason"), [pytest.param(*row, id=row[0].__name__) for row in ALL]
)
def test_status_round_trip_rebuilds_the_same_error(
    cls: type[ApiError], code: int, reason: str
) -> None:
    err = cls("it broke", kind="Secret", name="db", causes=[FieldError("data.k", "bad")])
    status = err.to_status()
    assert (status["code"], status["reason"], status["status"]) == (code, reason, "Failure")
    assert (status["kind"], status["apiVersion"]) == ("Status", "v1")
    back = ApiError.from_status(code, status)
    assert type(back) is cls
    assert (back.message, back.kind, back.name, back.status_code) == (
        "it broke",
        "Secret",
        "db",
        code,
    )
    assert back.causes == [FieldError("data.k", "bad", "FieldValueInvalid")]


def test_status_without_details_leaves_them_out() -> None:
    assert "details" not in NotFound("nope").to_status()


@pytest.mark.parametrize(
    ("code", "body", "cls", "message"),
    [
        pytest.param(409, {"reason": "Weird"}, Conflict, "HTTP 409", id="unknown-reason-uses-code"),
        pytest.param(418, {"message": "teapot"}, ApiError, "teapot", id="unknown-code-is-generic"),
        pytest.param(502, "Bad Gateway", ApiError, "Bad Gateway", id="non-json-body"),
        pytest.param(
            500,
            {"reason": "Invalid", "message": "m", "details": {"causes": ["junk", {"field": "f"}]}},
            Invalid,
            "m",
            id="reason-wins-and-junk-causes-are-skipped",
        ),
    ],
)
def test_from_status_is_lenient(code: int, body: object, cls: type[ApiError], message: str) -> None:
    err = ApiError.from_status(code, body)
    assert type(err) is cls
    assert err.message == message
    assert err.status_code == code


def test_invalid_of_summarizes_every_cause() -> None:
    err = Invalid.of(
        [FieldError("metadata.name", "is required"), FieldError("spec.x", "unknown field")],
        "Secret",
        "db",
    )
    assert str(err) == "Secret 'db' is invalid: metadata.name: is required; spec.x: unknown field"
    assert Invalid.of([FieldError("a", "b")]).message == "object is invalid: a: b"
    assert Invalid.of([FieldError("a", "b")], "Secret").message == "Secret is invalid: a: b"
