"""InferenceService end to end: a real platform, real model-server processes, the gateway.

Each test serves small scikit-learn models from files (no registry needed) and talks to
them only through the platform's stable URL ``/serving/{namespace}/{name}/...``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from harness import RunningPlatform, unique, wait_until
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from cnai import Client
from cnai.core.errors import ApiError
from cnai.core.kinds import Event
from cnai.serving.api import SERVICE_LABEL, InferenceService, InferenceServicePhase

ROW = [5.1, 3.5, 1.4, 0.2]


def constant_model(path: Path, label: int) -> Path:
    """A classifier that always answers ``label`` (so answers tell revisions apart)."""
    x = np.array([ROW, [6.0, 3.0, 5.0, 2.0]])
    model = DummyClassifier(strategy="constant", constant=label).fit(x, [label, 1 - label])
    joblib.dump(model, path)
    return path


@pytest.fixture(autouse=True)
def stop_services(client: Client, namespace: str) -> Iterator[None]:
    """Delete the test's InferenceServices and wait for their replicas to stop: pods
    outlive the platform (a restart adopts them), and model servers never end alone."""
    yield
    for isvc in client.list(InferenceService, namespace).items:
        client.delete(InferenceService, isvc.metadata.name, namespace)
    wait_until(
        lambda: not client.list("pod", namespace, label_selector=SERVICE_LABEL).items,
        30,
        "the replicas stopped",
    )


def service(name: str, model: Path, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"model": str(model), "format": "sklearn"}, **spec},
    }


def infer(
    http: httpx.Client, ns: str, name: str, rows: list[list[float]] | None = None
) -> httpx.Response:
    rows = rows if rows is not None else [ROW]
    body = {
        "inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]
    }
    return http.post(f"/serving/{ns}/{name}/v2/models/{name}/infer", json=body)


def label(answer: httpx.Response) -> int:
    assert answer.status_code == 200, answer.text
    return int(answer.json()["outputs"][0]["data"][0])


def phase_of(client: Client, ns: str, name: str) -> InferenceService:
    return client.get(InferenceService, name, ns)


def ready(client: Client, ns: str, name: str, timeout: float = 60) -> InferenceService:
    wait_until(
        lambda: phase_of(client, ns, name).status.phase is InferenceServicePhase.READY,
        timeout,
        f"{name} ready",
    )
    return phase_of(client, ns, name)


def test_a_model_is_served_at_one_url_by_both_protocols(
    client: Client, http: httpx.Client, platform: RunningPlatform, namespace: str, tmp_path: Path
) -> None:
    x = np.array([ROW, [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]] * 4)
    y = np.array([0, 2, 1] * 4)
    model = LogisticRegression(max_iter=500).fit(x, y)
    joblib.dump(model, tmp_path / "iris.joblib")
    name = unique("iris")
    client.create(service(name, tmp_path / "iris.joblib"), namespace)
    isvc = ready(client, namespace, name)
    assert isvc.status.url == f"{platform.url}/serving/{namespace}/{name}"
    assert [r.name for r in isvc.status.revisions] == [f"{name}-00001"]
    assert isvc.status.revisions[0].traffic_percent == 100
    rows = x[:3].tolist()
    answer = infer(http, namespace, name, rows)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == model.predict(np.array(rows)).tolist()
    v1 = http.post(
        f"/serving/{namespace}/{name}/v1/models/{name}:predict", json={"instances": rows}
    )
    assert v1.json()["predictions"] == model.predict(np.array(rows)).tolist()
    # The replica's 400 comes back as it is: a wrong shape names its field.
    bad = http.post(
        f"/serving/{namespace}/{name}/v2/models/{name}/infer",
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1.0]}]},
    )
    assert bad.status_code == 400
    assert "shape" in bad.json()["error"]


def test_an_unknown_service_is_404_and_bad_specs_are_refused(
    client: Client, http: httpx.Client, namespace: str, tmp_path: Path
) -> None:
    assert infer(http, namespace, "nothing-here").status_code == 404
    body = service(unique("bad"), tmp_path / "m.joblib", minReplicas=3, maxReplicas=2)
    with pytest.raises(ApiError) as caught:
        client.create(body, namespace)
    assert "maxReplicas" in str(caught.value)
    body = service(unique("bad"), tmp_path / "m.joblib")
    body["spec"]["predictor"]["model"] = "models:/digits"
    with pytest.raises(ApiError) as caught:
        client.create(body, namespace)
    assert "spec.predictor.model" in str(caught.value)


def test_a_model_that_cannot_load_is_never_ready(
    client: Client, http: httpx.Client, namespace: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.joblib"
    broken.write_bytes(b"not a pickle")
    name = unique("broken")
    client.create(service(name, broken, requestTimeoutSeconds=1), namespace)
    wait_until(
        lambda: phase_of(client, namespace, name).status.reason == "ModelLoadFailed",
        60,
        "the load failure in status",
    )
    isvc = phase_of(client, namespace, name)
    assert isvc.status.phase is InferenceServicePhase.FAILED
    assert "broken.joblib" in isvc.status.message or "pickle" in isvc.status.message
    held = infer(http, namespace, name)
    assert held.status_code == 503  # held for requestTimeoutSeconds, then refused
    missing = unique("missing")
    client.create(service(missing, tmp_path / "nowhere.joblib"), namespace)
    wait_until(
        lambda: phase_of(client, namespace, missing).status.reason == "ModelUnavailable",
        30,
        "a missing model file in status",
    )


def test_scale_from_zero_holds_the_first_request_and_answers_it(
    client: Client, http: httpx.Client, namespace: str, tmp_path: Path
) -> None:
    model = constant_model(tmp_path / "one.joblib", 1)
    name = unique("zero")
    scaling = {
        "metric": "rps",
        "target": 50,
        "stableWindowSeconds": 10,
        "scaleToZeroGraceSeconds": 0,
    }
    client.create(service(name, model, minReplicas=0, maxReplicas=2, scaling=scaling), namespace)
    ready(client, namespace, name)
    wait_until(
        lambda: phase_of(client, namespace, name).status.replicas_text == "0/0",
        60,
        "scaled to zero",
    )
    # No replica: the gateway holds the request while one starts, then answers it.
    assert label(infer(http, namespace, name)) == 1
    isvc = phase_of(client, namespace, name)
    assert isvc.status.revisions[-1].ready_replicas >= 1
    # Each change of size is an event that says why: down to zero, then up for the request.
    events = client.list(
        Event, namespace, field_selector=f"involvedObject.uid={isvc.metadata.uid}"
    ).items
    rescaled = [e.message for e in events if e.reason == "Rescaled"]
    revision = isvc.status.revisions[-1].name
    assert any(m.startswith(f"{revision}: 1 -> 0 replicas (ScaledToZero") for m in rescaled), (
        rescaled
    )
    assert any(m.startswith(f"{revision}: 0 -> 1 replicas (Activating") for m in rescaled), rescaled


def test_a_canary_takes_its_share_and_a_rollback_and_a_promotion_move_all_traffic(
    client: Client, platform: RunningPlatform, namespace: str, tmp_path: Path
) -> None:
    zero, one = (
        constant_model(tmp_path / "zero.joblib", 0),
        constant_model(tmp_path / "one.joblib", 1),
    )
    name = unique("canary")
    client.create(service(name, zero), namespace)
    ready(client, namespace, name)
    # Continuous load from another thread through every change: no request may fail.
    failures: list[str] = []
    answers: Counter[int] = Counter()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(
            base_url=platform.url,
            headers={"Authorization": f"Bearer {platform.admin_token()}"},
            timeout=30,
        ) as h:
            while not stop.is_set():
                answer = infer(h, namespace, name)
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code}: {answer.text}")
                else:
                    answers[label(answer)] += 1

    def settle() -> None:
        """Let a request routed before the change finish, then count afresh."""
        seen = sum(answers.values())
        wait_until(lambda: sum(answers.values()) >= seen + 3, 30, "answers after the change")
        answers.clear()

    loader = threading.Thread(target=load)
    loader.start()
    try:
        patch = {"spec": {"predictor": {"model": str(one)}, "canaryTrafficPercent": 30}}
        client.patch(InferenceService, name, patch, namespace)
        wait_until(
            lambda: (
                [r.traffic_percent for r in phase_of(client, namespace, name).status.revisions]
                == [70, 30]
            ),
            60,
            "a 70/30 split",
        )
        settle()
        wait_until(lambda: sum(answers.values()) >= 200, 60, "200 answers under the split")
        assert answers[0] > answers[1] > 0  # both revisions answer, the stable one more
        client.patch(InferenceService, name, {"spec": {"canaryTrafficPercent": 0}}, namespace)
        wait_until(
            lambda: phase_of(client, namespace, name).status.revisions[0].traffic_percent == 100,
            30,
            "rolled back",
        )
        settle()
        wait_until(lambda: sum(answers.values()) >= 50, 60, "answers after the rollback")
        assert answers[1] == 0
        client.patch(InferenceService, name, {"spec": {"canaryTrafficPercent": None}}, namespace)
        wait_until(
            lambda: (
                [r.traffic_percent for r in phase_of(client, namespace, name).status.revisions]
                == [100]
            ),
            60,
            "promoted, the old revision drained and gone",
        )
        settle()
        wait_until(lambda: sum(answers.values()) >= 50, 60, "answers after the promotion")
        assert answers[0] == 0
    finally:
        stop.set()
        loader.join()
    assert failures == []
