"""cnai's tracking API on a real platform: runs, columns of points, histories, tokens."""

from __future__ import annotations

from typing import Any

import httpx
from harness import RunningPlatform

from cnai import Client

BASE = "/apis/tracking.cnai.io/v1/namespaces"


def columns(steps: list[int], values: list[float]) -> dict[str, list[Any]]:
    return {"steps": steps, "values": values, "timestamps": [1_700_000_000_000 + s for s in steps]}


def test_log_columns_and_read_them_back(http: httpx.Client, namespace: str) -> None:
    created = http.post(
        f"{BASE}/{namespace}/runs",
        json={"group": "sweep", "name": "r1", "params": {"lr": 0.01}, "tags": {"team": "a"}},
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert (run["status"], run["params"], run["tags"]) == ("RUNNING", {"lr": "0.01"}, {"team": "a"})

    steps = list(range(2000))
    logged = http.post(
        f"{BASE}/{namespace}/runs/{run['id']}/log",
        json={"metrics": {"train/loss": columns(steps, [1 / (s + 1) for s in steps])}},
    )
    assert logged.json() == {"points": 2000}
    history = http.get(f"{BASE}/{namespace}/runs/{run['id']}/metrics/train/loss").json()
    assert history["steps"] == steps
    assert history["values"][9] == 0.1

    many = http.post(
        f"{BASE}/{namespace}/metrics:history", json={"key": "train/loss", "runs": [run["id"]]}
    ).json()
    assert many["runs"][run["id"]]["values"][-1] == 1 / 2000
    listed = http.get(f"{BASE}/{namespace}/runs", params={"group": "sweep"}).json()["items"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert listed[0]["metrics"]["train/loss"]["step"] == 1999

    done = http.patch(
        f"{BASE}/{namespace}/runs/{run['id']}", json={"status": "FINISHED", "endTime": 5}
    )
    assert (done.json()["status"], done.json()["endTime"]) == ("FINISHED", 5)


def test_bad_input_gets_a_clear_4xx_and_writes_nothing(http: httpx.Client, namespace: str) -> None:
    run = http.post(f"{BASE}/{namespace}/runs", json={"params": {"lr": "0.1"}}).json()
    url = f"{BASE}/{namespace}/runs/{run['id']}/log"
    cases = [
        ({"metrics": {"loss": columns([0, 1], [1.0, float("nan")])}}, "values[1]: nan"),
        ({"metrics": {"loss": {"steps": [0], "values": [1.0]}}}, "timestamps must be lists"),
        ({"params": {"lr": "0.2"}, "metrics": {"loss": columns([0], [1.0])}}, "already logged"),
        ({"metrics": {"": columns([0], [1.0])}}, "non-empty"),
    ]
    for body, message in cases:
        # NaN is not JSON: send the body as Python's json writes it (NaN literal).
        answer = http.post(
            url, content=_json_with_nan(body), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400, (body, answer.text)
        assert message in answer.json()["message"], answer.text
    assert http.get(f"{BASE}/{namespace}/runs/{run['id']}/metrics/loss").json()["steps"] == []
    missing = http.post(f"{BASE}/{namespace}/runs/nope/log", json={"params": {"a": "b"}})
    assert missing.status_code == 404


def test_a_namespace_token_sees_only_its_namespace(
    platform: RunningPlatform, client: Client, http: httpx.Client, namespace: str
) -> None:
    other = http.post(f"{BASE}/default/runs", json={"name": "not-yours"}).json()
    token = client.create_token(namespace, "tracking test")["token"]
    with httpx.Client(
        base_url=platform.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as mine:
        assert mine.post(f"{BASE}/{namespace}/runs", json={}).status_code == 201
        assert mine.get(f"{BASE}/default/runs/{other['id']}").status_code == 403
        assert mine.get(f"{BASE}/{namespace}/runs/{other['id']}").status_code == 404
    anonymous = httpx.get(f"{platform.url}{BASE}/{namespace}/runs", timeout=30)
    assert anonymous.status_code == 401


def _json_with_nan(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()


def test_a_huge_batch_gets_413_with_the_limit_and_writes_nothing(
    http: httpx.Client, namespace: str
) -> None:
    run = http.post(f"{BASE}/{namespace}/runs", json={}).json()
    steps = list(range(400_000))  # about 14 MB of JSON: over the 3 MiB limit
    answer = http.post(
        f"{BASE}/{namespace}/runs/{run['id']}/log",
        json={"metrics": {"loss": columns(steps, [0.5] * len(steps))}},
    )
    assert answer.status_code == 413
    assert "larger than the limit of 3145728 bytes" in answer.json()["message"]
    assert http.get(f"{BASE}/{namespace}/runs/{run['id']}/metrics/loss").json()["steps"] == []
