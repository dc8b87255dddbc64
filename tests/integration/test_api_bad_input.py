"""Bad input over real HTTP: every rejection is a 4xx naming the field and the rule.

Nothing a client sends may produce a 500 or a half-written object: each case runs in a
fresh namespace, and afterwards that namespace holds exactly what it held before.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from harness import unique

from cnai import Client
from cnai.core.kinds import Secret
from cnai.core.server.body import DEFAULT_MAX_BODY_BYTES

GV = "cnai.io/v1alpha1"
API = f"/apis/{GV}"
SECRETS = API + "/namespaces/{ns}/secrets"
EXISTING = "existing"  # a Secret every case's namespace starts with
JSON = "application/json"
YAML = "application/yaml"
MERGE = "application/merge-patch+json"


def secret(name: str = "s1", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": GV, "kind": "Secret", "metadata": {"name": name}, **fields}


def meta(**fields: Any) -> dict[str, Any]:
    """A Secret named s1 with extra metadata fields."""
    return {"apiVersion": GV, "kind": "Secret", "metadata": {"name": "s1", **fields}}


def j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@dataclass(frozen=True)
class Bad:
    """One bad request and the rejection it must get."""

    body: bytes | None
    status: int
    reason: str
    field: str | None = None  # a details.causes[].field the Status must name
    says: str | None = None  # text the message must contain
    method: str = "POST"
    path: str = SECRETS
    ctype: str = JSON


def case(id: str, *args: Any, **kw: Any) -> Any:
    return pytest.param(Bad(*args, **kw), id=id)


LAUGHS = b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + b"".join(
    b"%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n" % ((c, c) + (c - 1,) * 9)
    for c in range(ord("b"), ord("j"))
)

BODY_CASES = [
    # -- what kind, and which API -------------------------------------------------------
    case("unknown-plural", j(secret()), 404, "NotFound", says="widgets",
         path=API + "/namespaces/{ns}/widgets"),
    case("unknown-kind-in-body", j({**secret(), "kind": "Widget"}), 422, "Invalid", "kind"),
    case("wrong-api-version", j({**secret(), "apiVersion": "v1"}), 422, "Invalid", "apiVersion",
         says="must be cnai.io/v1alpha1"),
    case("missing-api-version", j({"kind": "Secret", "metadata": {"name": "s1"}}), 422,
         "Invalid", "apiVersion"),
    case("kind-does-not-match-path", j({**secret(), "kind": "Namespace"}), 422, "Invalid",
         "kind", says="must be Secret for secrets"),
    case("yaml-list-kind-is-not-unwrapped",
         b"kind: SecretList\nitems:\n- {apiVersion: cnai.io/v1alpha1, kind: Secret, "
         b"metadata: {name: s1}}\n", 422, "Invalid", "kind", ctype=YAML),
    case("yaml-kind-is-a-number",
         b"apiVersion: cnai.io/v1alpha1\nkind: 5\nmetadata: {name: s1}\n", 422, "Invalid",
         "kind", ctype=YAML),
    case("cluster-scoped-kind-under-a-namespace",
         j({"apiVersion": GV, "kind": "Namespace", "metadata": {"name": "n1"}}), 404,
         "NotFound", says="cluster-scoped", path=API + "/namespaces/{ns}/namespaces"),
    case("namespaced-kind-created-without-namespace", j(secret()), 404, "NotFound",
         says="namespaced", path=API + "/secrets"),
    case("namespace-does-not-exist", j(secret()), 404, "NotFound", says="namespace",
         path=API + "/namespaces/no-such-ns-9f3/secrets"),
    # -- syntax ----------------------------------------------------------------------
    case("malformed-json", b'{"apiVersion": "cnai.io/v1alpha1", "kind": ', 400, "BadRequest",
         says="malformed JSON"),
    case("json-not-utf8", b'{"kind": "\xff\xfe"}', 400, "BadRequest", says="JSON"),
    case("json-nested-too-deeply", b"[" * 50_000, 400, "BadRequest", says="JSON"),
    case("json-lone-surrogate", b'{"apiVersion": "\\ud800"}', 400, "BadRequest", says="JSON"),
    case("malformed-yaml", b"apiVersion: cnai.io/v1alpha1\nkind: [Secret\nmetadata: x\n", 400,
         "BadRequest", says="malformed YAML at line", ctype=YAML),
    case("yaml-alias-bomb", LAUGHS, 400, "BadRequest", says="aliases", ctype=YAML),
    case("yaml-nested-too-deeply", b"- " * 20_000 + b"x\n", 400, "BadRequest",
         says="nested too deeply", ctype=YAML),
    case("yaml-two-documents", b"kind: Secret\n---\nkind: Secret\n", 400, "BadRequest",
         says="exactly one", ctype=YAML),
    case("yaml-not-utf8", b"kind: \xff\xfe\n", 400, "BadRequest", says="UTF-8", ctype=YAML),
    case("body-is-a-json-list", j([secret()]), 400, "BadRequest", says="not a list"),
    case("body-is-a-json-scalar", b"42", 400, "BadRequest", says="scalar"),
    case("body-is-a-yaml-scalar", b"just some text\n", 400, "BadRequest", says="not a mapping",
         ctype=YAML),
    case("empty-body", b"", 400, "BadRequest", says="empty"),
    case("whitespace-body", b"  \n\t ", 400, "BadRequest", says="empty"),
    case("text-plain-body", j(secret()), 415, "UnsupportedMediaType", says="application/json",
         ctype="text/plain"),
    case("xml-body", b"<secret/>", 415, "UnsupportedMediaType", ctype="application/xml"),
    # -- names ---------------------------------------------------------------------------
    case("name-uppercase", j(secret("Bad")), 422, "Invalid", "metadata.name",
         says="DNS-1123 label"),
    case("name-underscore", j(secret("bad_name")), 422, "Invalid", "metadata.name"),
    case("name-too-long", j(secret("a" * 64)), 422, "Invalid", "metadata.name",
         says="at most 63"),
    case("name-empty", j(secret("")), 422, "Invalid", "metadata.name", says="required"),
    case("name-missing", j({"apiVersion": GV, "kind": "Secret", "metadata": {}}), 422,
         "Invalid", "metadata.name"),
    case("name-leading-dash", j(secret("-x")), 422, "Invalid", "metadata.name"),
    case("name-with-dot", j(secret("a.b")), 422, "Invalid", "metadata.name"),
    case("name-not-a-string", j(meta(name=123)), 422, "Invalid", "metadata.name"),
    case("name-path-traversal", j(secret("../etc")), 422, "Invalid", "metadata.name"),
    case("generate-name-makes-bad-name", j({**secret(""), "metadata": {"generateName": "X_"}}),
         422, "Invalid", "metadata.name"),
    # -- fields and types --------------------------------------------------------------
    case("metadata-not-an-object", j({**secret(), "metadata": "s1"}), 422, "Invalid",
         "metadata"),
    case("unknown-top-level-field", j(secret(spec={"foo": 1})), 422, "Invalid", "spec",
         says="unknown field"),
    case("unknown-spec-field",
         j({"apiVersion": GV, "kind": "Namespace", "metadata": {"name": "n1"},
            "spec": {"foo": 1}}),
         422, "Invalid", "spec.foo", says="unknown field", path=API + "/namespaces"),
    case("unknown-metadata-field", j(meta(colour="blue")), 422, "Invalid", "metadata.colour"),
    case("wrong-type-bool", j(secret(immutable="certainly")), 422, "Invalid", "immutable"),
    case("wrong-type-map", j(secret(data=["a"])), 422, "Invalid", "data"),
    case("wrong-type-int",
         j({"apiVersion": GV, "kind": "Event", "metadata": {"name": "e1"},
            "involvedObject": {"kind": "Secret", "name": "x"}, "count": "many"}),
         422, "Invalid", "count", path=API + "/namespaces/{ns}/events"),
    case("event-without-involved-object",
         j({"apiVersion": GV, "kind": "Event", "metadata": {"name": "e1"}}), 422, "Invalid",
         "involvedObject", says="required", path=API + "/namespaces/{ns}/events"),
    case("metadata-namespace-differs-from-path", j(meta(namespace="elsewhere")), 422,
         "Invalid", "metadata.namespace", says="request path"),
    case("namespace-on-cluster-scoped-kind",
         j({"apiVersion": GV, "kind": "Namespace",
            "metadata": {"name": "n1", "namespace": "default"}}),
         422, "Invalid", "metadata.namespace", says="cluster-scoped", path=API + "/namespaces"),
    case("label-key-invalid", j(meta(labels={"bad key!": "v"})), 422, "Invalid",
         "metadata.labels"),
    case("label-key-prefix-invalid", j(meta(labels={"Bad_Prefix/app": "v"})), 422, "Invalid",
         "metadata.labels", says="prefix"),
    case("label-value-invalid", j(meta(labels={"app": "has space"})), 422, "Invalid",
         "metadata.labels"),
    case("label-value-not-a-string", j(meta(labels={"app": 7})), 422, "Invalid",
         "metadata.labels.app"),
    case("annotation-key-invalid", j(meta(annotations={"no spaces": "v"})), 422, "Invalid",
         "metadata.annotations"),
    case("finalizers-not-a-list", j(meta(finalizers="x")), 422, "Invalid",
         "metadata.finalizers"),
    case("owner-reference-without-uid", j(meta(ownerReferences=[{"kind": "X", "name": "y"}])),
         422, "Invalid", "metadata.ownerReferences[0].uid", says="required"),
    case("secret-data-not-base64", j(secret(data={"password": "not base64!"})), 422, "Invalid",
         "data", says="base64"),
    case("secret-data-key-invalid", j(secret(data={"bad key": "eA=="})), 422, "Invalid",
         "data.bad key"),
    case("secret-string-data-not-a-string", j(secret(stringData={"a": 1})), 422, "Invalid",
         "stringData.a"),
    # -- writes to an existing object ----------------------------------------------------
    case("put-name-differs-from-path", j(secret("other")), 422, "Invalid", "metadata.name",
         method="PUT", path=SECRETS + "/" + EXISTING),
    case("put-to-missing-object", j(secret("missing")), 404, "NotFound", method="PUT",
         path=SECRETS + "/missing"),
    case("put-invalid-label", j(secret(EXISTING) | {"metadata": {"name": EXISTING,
                                                                 "labels": {"a": "b c"}}}),
         422, "Invalid", "metadata.labels", method="PUT", path=SECRETS + "/" + EXISTING),
    case("put-status-of-kind-without-status", j(secret(EXISTING)), 404, "NotFound",
         says="no status", method="PUT", path=SECRETS + "/" + EXISTING + "/status"),
    case("put-status-metadata-not-an-object", j({"metadata": "x", "status": {}}), 422,
         "Invalid", "metadata", method="PUT", path=API + "/namespaces/{ns}/status"),
    case("put-status-bad-phase", j({"status": {"phase": "Exploded"}}), 422, "Invalid",
         "status.phase", method="PUT", path=API + "/namespaces/{ns}/status"),
    case("patch-invalid-label", j({"metadata": {"labels": {"a": "b c"}}}), 422, "Invalid",
         "metadata.labels", method="PATCH", path=SECRETS + "/" + EXISTING, ctype=MERGE),
    case("patch-removes-metadata", j({"metadata": None}), 422, "Invalid", "metadata",
         method="PATCH", path=SECRETS + "/" + EXISTING, ctype=MERGE),
    case("patch-wrong-patch-type", j([{"op": "remove", "path": "/data"}]), 415,
         "UnsupportedMediaType", method="PATCH", path=SECRETS + "/" + EXISTING,
         ctype="application/json-patch+json"),
    case("patch-body-is-a-list", j([1]), 400, "BadRequest", method="PATCH",
         path=SECRETS + "/" + EXISTING, ctype=MERGE),
    case("post-to-an-item", j(secret()), 405, "MethodNotAllowed",
         path=SECRETS + "/" + EXISTING),
    case("delete-a-collection", None, 405, "MethodNotAllowed", method="DELETE"),
    case("token-namespace-not-a-string", j({"namespace": 5}), 400, "BadRequest",
         says="namespace", path="/auth/v1/tokens"),
    case("token-for-missing-namespace", j({"namespace": "no-such-ns-9f3"}), 404, "NotFound",
         path="/auth/v1/tokens"),
]  # fmt: skip

QUERY_CASES = [
    case("label-selector-unclosed-set", None, 400, "BadRequest", says="labelSelector",
         method="GET", path=SECRETS + "?labelSelector=a+in+(x"),
    case("label-selector-double-equals-value", None, 400, "BadRequest", says="labelSelector",
         method="GET", path=SECRETS + "?labelSelector=a=b=c"),
    case("label-selector-on-watch", None, 400, "BadRequest", says="labelSelector",
         method="GET", path=SECRETS + "?watch=true&labelSelector=(("),
    case("field-selector-without-operator", None, 400, "BadRequest", says="fieldSelector",
         method="GET", path=SECRETS + "?fieldSelector=metadata.name"),
    case("timeout-seconds-not-a-number", None, 400, "BadRequest", says="timeoutSeconds",
         method="GET", path=SECRETS + "?watch=true&timeoutSeconds=soon"),
    case("timeout-seconds-nan", None, 400, "BadRequest", says="timeoutSeconds",
         method="GET", path=SECRETS + "?watch=true&timeoutSeconds=nan"),
    case("timeout-seconds-infinite", None, 400, "BadRequest", says="timeoutSeconds",
         method="GET", path=SECRETS + "?watch=true&timeoutSeconds=inf"),
    case("timeout-seconds-negative", None, 400, "BadRequest", says="timeoutSeconds",
         method="GET", path=SECRETS + "?watch=true&timeoutSeconds=-1"),
    case("get-cluster-path-of-namespaced-kind", None, 404, "NotFound", says="namespaced",
         method="GET", path=API + "/secrets/" + EXISTING),
    case("get-unknown-plural", None, 404, "NotFound", says="widgets", method="GET",
         path=API + "/widgets"),
    case("get-no-such-endpoint", None, 404, "NotFound", says="no such endpoint",
         method="GET", path="/apis/other.io/v1"),
]  # fmt: skip


def _snapshot(http: httpx.Client, ns: str) -> dict[str, Any]:
    """Everything a bad request could have touched: the namespace and what is in it."""
    out: dict[str, Any] = {}
    for plural in ("secrets", "events"):
        items = http.get(f"{API}/namespaces/{ns}/{plural}").json()["items"]
        out[plural] = {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in items}
    out["namespace"] = http.get(f"{API}/namespaces/{ns}").json()
    names = [i["metadata"]["name"] for i in http.get(API + "/namespaces").json()["items"]]
    out["n1-exists"] = "n1" in names
    out["tokens"] = len(http.get("/auth/v1/tokens").json()["items"])
    return out


@pytest.fixture
def seeded(client: Client, namespace: str) -> str:
    client.create(Secret.new(EXISTING, namespace, string_data={"k": "v"}))
    return namespace


def _send(http: httpx.Client, bad: Bad, ns: str) -> httpx.Response:
    headers = {"Content-Type": bad.ctype} if bad.body is not None else {}
    return http.request(bad.method, bad.path.format(ns=ns), content=bad.body, headers=headers)


def _assert_rejection(resp: httpx.Response, bad: Bad) -> None:
    assert resp.status_code == bad.status, resp.text
    status = resp.json()
    assert status["kind"] == "Status"
    assert status["reason"] == bad.reason
    assert status["code"] == bad.status
    if bad.field is not None:
        fields = [c["field"] for c in status["details"]["causes"]]
        assert bad.field in fields, status
        assert f"{bad.field}: " in status["message"]
    if bad.says is not None:
        assert bad.says in status["message"], status


@pytest.mark.parametrize("bad", BODY_CASES + QUERY_CASES)
def test_bad_input_is_rejected_with_the_field_and_nothing_is_written(
    http: httpx.Client, seeded: str, bad: Bad
) -> None:
    before = _snapshot(http, seeded)
    _assert_rejection(_send(http, bad, seeded), bad)
    assert _snapshot(http, seeded) == before
    assert http.get(f"{API}/namespaces/{seeded}/secrets/s1").status_code == 404


def test_error_messages_never_echo_secret_values(http: httpx.Client, namespace: str) -> None:
    leak = "hunter2-do-not-echo"
    body = secret("BadName", stringData={"password": leak}, data={"x": leak})
    resp = http.post(SECRETS.format(ns=namespace), json=body)
    assert resp.status_code == 422
    assert leak not in resp.text


# -- body size limit (3 MiB, as documented in docs/api.md) ---------------------------------


def _padded_secret(size: int) -> bytes:
    """A valid Secret's JSON padded with whitespace to exactly ``size`` bytes."""
    raw = j(secret("big", data={"blob": "eA=="}))
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 256 * 1024):
        yield body[start : start + 256 * 1024]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_3_mib_is_refused_with_413(
    http: httpx.Client, namespace: str, chunked: bool
) -> None:
    assert DEFAULT_MAX_BODY_BYTES == 3 * 1024 * 1024
    body = _padded_secret(DEFAULT_MAX_BODY_BYTES + 1)
    content: bytes | Iterator[bytes] = _chunks(body) if chunked else body
    resp = http.post(SECRETS.format(ns=namespace), content=content, headers={"Content-Type": JSON})
    assert resp.status_code == 413
    assert resp.json()["reason"] == "RequestEntityTooLarge"
    assert str(DEFAULT_MAX_BODY_BYTES) in resp.json()["message"]
    assert http.get(f"{SECRETS.format(ns=namespace)}/big").status_code == 404
    assert http.get("/healthz").text == "ok"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_of_exactly_3_mib_is_accepted(
    http: httpx.Client, namespace: str, chunked: bool
) -> None:
    body = _padded_secret(DEFAULT_MAX_BODY_BYTES)
    content: bytes | Iterator[bytes] = _chunks(body) if chunked else body
    resp = http.post(SECRETS.format(ns=namespace), content=content, headers={"Content-Type": JSON})
    assert resp.status_code == 201, resp.text


# -- a bounded, seeded fuzz loop -----------------------------------------------------------

_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**70, 1.5, "", "x" * 300, "Ünïcødé", "a/b", "../..", "\x00",
    "eA==", "UPPER", [], [1, "a"], {}, {"a": {"b": {"c": [None]}}}, {"metadata": None},
]  # fmt: skip
_KEYS = [
    "apiVersion", "kind", "metadata", "name", "namespace", "labels", "annotations", "data",
    "stringData", "type", "immutable", "status", "spec", "finalizers", "resourceVersion",
    "generateName", "ownerReferences", "uid", "generation", "x",
]  # fmt: skip


def _containers(obj: Any) -> list[Any]:
    found = [obj] if isinstance(obj, (dict, list)) else []
    children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else []
    for child in children:
        found.extend(_containers(child))
    return found


def _mutate(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    """One to three structural mutations of a JSON document."""
    doc = json.loads(json.dumps(doc))
    for _ in range(rng.randint(1, 3)):
        target = rng.choice(_containers(doc))
        if isinstance(target, dict):
            action = rng.random()
            if action < 0.3 and target:
                del target[rng.choice(list(target))]
            elif action < 0.7 and target:
                target[rng.choice(list(target))] = rng.choice(_VALUES)
            else:
                target[rng.choice(_KEYS)] = rng.choice(_VALUES)
        elif target:
            target[rng.randrange(len(target))] = rng.choice(_VALUES)
        else:
            target.append(rng.choice(_VALUES))
    return doc


def _corrupt(rng: random.Random, raw: bytes) -> bytes:
    """A byte-level corruption: truncate, insert or flip."""
    pos = rng.randrange(len(raw))
    choice = rng.random()
    if choice < 0.33:
        return raw[:pos]
    if choice < 0.66:
        return raw[:pos] + bytes([rng.randrange(256)]) + raw[pos:]
    return raw[:pos] + bytes([raw[pos] ^ (1 << rng.randrange(8))]) + raw[pos + 1 :]


def test_fuzzed_secrets_never_get_a_5xx_and_the_server_stays_healthy(
    http: httpx.Client, client: Client, seeded: str
) -> None:
    rng = random.Random(20240314)
    base = secret(
        "fuzz",
        metadata={"name": "fuzz", "labels": {"app": "web"}, "annotations": {"a": "b"}},
        data={"k": "dmFsdWU="},
        stringData={"p": "q"},
        type="Opaque",
    )
    collection = SECRETS.format(ns=seeded)
    statuses: dict[int, int] = {}
    for i in range(300):
        doc = _mutate(rng, base)
        if isinstance(doc.get("metadata"), dict) and isinstance(doc["metadata"].get("name"), str):
            doc["metadata"]["name"] = f"fuzz-{i}"
        raw = j(doc)
        if rng.random() < 0.25:
            raw = _corrupt(rng, raw)
        ctype = rng.choice([JSON, JSON, JSON, YAML, MERGE, "text/plain"])
        method, path = rng.choice(
            [("POST", collection)] * 6
            + [("PUT", f"{collection}/{EXISTING}"), ("PATCH", f"{collection}/{EXISTING}")]
        )
        if method == "PATCH":
            ctype = MERGE
        resp = http.request(method, path, content=raw, headers={"Content-Type": ctype})
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        assert resp.status_code < 500, (i, method, raw[:300], resp.text)
        if resp.status_code >= 400:
            assert resp.json()["kind"] == "Status"
        if i % 50 == 0:
            assert http.get("/healthz").text == "ok"
    # The mutations exercised both sides: some writes were accepted, most refused.
    assert any(code < 300 for code in statuses), statuses
    assert any(code >= 400 for code in statuses), statuses
    # Whatever was stored is a well-formed Secret.
    stored = client.list(Secret, seeded).items
    assert {s.metadata.name for s in stored} >= {EXISTING}
    assert all(s.string_data is None for s in stored)
    created = client.create(Secret.new(unique("after-fuzz"), seeded))
    assert created.metadata.uid
