"""Request bodies through the real app: the size limit, decoding, and the 4xx for each fault."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from ..builders import make_secret
from .api_harness import MAX_BODY, Api

pytestmark = pytest.mark.anyio

SECRETS = "/namespaces/default/secrets"
JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}


def secret_json(name: str = "s", size: int | None = None) -> bytes:
    """A valid Secret body, padded with an annotation to exactly ``size`` bytes."""
    body = make_secret(name).annotations(pad="").build()
    raw = json.dumps(body).encode()
    if size is not None:
        body["metadata"]["annotations"]["pad"] = "x" * (size - len(raw))
        raw = json.dumps(body).encode()
        assert len(raw) == size
    return raw


async def chunks(total: int, size: int = 512) -> AsyncIterator[bytes]:
    raw = secret_json("streamed", total)
    for i in range(0, len(raw), size):
        yield raw[i : i + size]


async def test_body_at_the_limit_is_accepted(api: Api) -> None:
    resp = await api.request("POST", SECRETS, content=secret_json(size=MAX_BODY), headers=JSON)
    assert resp.status_code == 201, resp.text


async def test_oversize_body_by_content_length_is_413(api: Api) -> None:
    resp = await api.request("POST", SECRETS, content=secret_json(size=MAX_BODY + 1), headers=JSON)
    assert resp.status_code == 413
    assert resp.json()["reason"] == "RequestEntityTooLarge"
    assert str(MAX_BODY) in resp.json()["message"]
    assert (await api.store.list("secrets")).items == []


async def test_oversize_declared_length_is_refused_before_authentication(api: Api) -> None:
    resp = await api.client.post(
        "/apis/cnai.io/v1alpha1" + SECRETS,
        content=secret_json(size=MAX_BODY + 10),
        headers=JSON,
    )
    assert resp.status_code == 413


async def test_oversize_streamed_body_without_content_length_is_413(api: Api) -> None:
    resp = await api.request("POST", SECRETS, content=chunks(MAX_BODY * 3), headers=JSON)
    assert "content-length" not in resp.request.headers
    assert resp.request.headers["transfer-encoding"] == "chunked"
    assert resp.status_code == 413
    assert resp.json()["reason"] == "RequestEntityTooLarge"
    assert (await api.store.list("secrets")).items == []


async def test_small_streamed_body_without_content_length_is_accepted(api: Api) -> None:
    resp = await api.request("POST", SECRETS, content=chunks(MAX_BODY - 100), headers=JSON)
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        pytest.param("application/json", b"{not json", "malformed JSON", id="malformed-json"),
        pytest.param("application/json", b"[1, 2]", "must be an object", id="json-array"),
        pytest.param("application/json", b'"text"', "must be an object", id="json-string"),
        pytest.param("application/json", b"42", "must be an object", id="json-number"),
        pytest.param("application/json", b"null", "must be an object", id="json-null"),
        pytest.param("application/json", b"   ", "request body is empty", id="blank-body"),
        pytest.param("application/json", b"", "request body is empty", id="empty-body"),
        pytest.param(
            "application/yaml",
            b"kind: Secret\nmetadata: [unclosed\n",
            "request body: malformed YAML at line",
            id="malformed-yaml",
        ),
        pytest.param(
            "application/yaml", b"- a\n- b\n", "document 1 is not a mapping", id="yaml-list"
        ),
        pytest.param("text/yaml", b"just text\n", "not a mapping", id="yaml-scalar"),
        pytest.param(
            "application/yaml",
            b"metadata: {name: a}\n---\nmetadata: {name: b}\n",
            "exactly one YAML document",
            id="yaml-two-documents",
        ),
        pytest.param("application/yaml", b"a: &x 1\nb: *x\n", "aliases", id="yaml-alias-refused"),
        pytest.param(
            "application/yaml", b"kind: Secret\nx: \xff\xfe\n", "not valid UTF-8", id="yaml-bytes"
        ),
    ],
)
async def test_undecodable_bodies_are_400(
    api: Api, content_type: str, body: bytes, message: str
) -> None:
    resp = await api.request("POST", SECRETS, content=body, headers={"Content-Type": content_type})
    assert resp.status_code == 400, resp.text
    status = resp.json()
    assert status["reason"] == "BadRequest"
    assert message in status["message"]


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text-plain"),
        pytest.param("application/xml", id="xml"),
        pytest.param("multipart/form-data; boundary=x", id="form"),
    ],
)
async def test_unsupported_content_types_are_415(api: Api, content_type: str) -> None:
    resp = await api.request(
        "POST", SECRETS, content=secret_json(), headers={"Content-Type": content_type}
    )
    assert resp.status_code == 415
    assert resp.json()["reason"] == "UnsupportedMediaType"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("application/json; charset=utf-8", secret_json(), id="json-with-charset"),
        pytest.param("", secret_json(), id="no-content-type-means-json"),
        pytest.param(
            "application/yaml",
            b"apiVersion: cnai.io/v1alpha1\nkind: Secret\nmetadata:\n  name: s\n",
            id="yaml",
        ),
        pytest.param(
            "Application/X-YAML",
            b"apiVersion: cnai.io/v1alpha1\nkind: Secret\nmetadata: {name: s}\n",
            id="yaml-type-any-case",
        ),
    ],
)
async def test_supported_bodies_create(api: Api, content_type: str, body: bytes) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await api.request("POST", SECRETS, content=body, headers=headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["metadata"]["name"] == "s"


async def test_yaml_with_empty_kind_reaches_admission(api: Api) -> None:
    body = b"apiVersion: cnai.io/v1alpha1\nkind:\nmetadata: {name: s}\n"
    resp = await api.request("POST", SECRETS, content=body, headers=YAML)
    assert resp.status_code == 422
    assert resp.json()["details"]["causes"][0]["field"] == "kind"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer cnai_nope_nope"}, id="unknown-token"),
        pytest.param({"Authorization": "Token abc"}, id="wrong-scheme"),
    ],
)
async def test_writes_without_a_valid_token_are_401(api: Api, headers: dict[str, str]) -> None:
    resp = await api.client.post(
        "/apis/cnai.io/v1alpha1" + SECRETS, content=secret_json(), headers={**JSON, **headers}
    )
    assert resp.status_code == 401
    assert resp.json()["reason"] == "Unauthorized"
    assert (await api.store.list("secrets")).items == []
