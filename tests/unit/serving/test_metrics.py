"""The model server's /metrics, scraped over HTTP and parsed as Prometheus does."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cnai.serving.metrics import DURATION_BUCKETS, ServerMetrics

from .conftest import Models, Running, Serve, v2

Labels = tuple[tuple[str, str], ...]


def scrape(server: Running) -> dict[tuple[str, Labels], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    answer = server.client.get("/metrics")
    assert answer.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def labels(**kw: str) -> Labels:
    return tuple(sorted(kw.items()))


def test_requests_latency_batches_and_readiness_are_counted(serve: Serve, models: Models) -> None:
    server = serve(models.pickle)
    http = server.client
    for n in (1, 2, 3):
        rows = models.x[:n].reshape(-1).tolist()
        assert http.post("/v2/models/iris/infer", json=v2(rows, [n, 4])).status_code == 200
    for _ in range(2):
        answer = http.post("/v1/models/iris:predict", json={"instances": [[1, 2, 3, 4]]})
        assert answer.status_code == 200
    assert http.post("/v2/models/iris/infer", json=v2([1, 2], [1, 2])).status_code == 400
    assert http.post("/v2/models/iris/infer", content=b"{").status_code == 400
    assert http.post("/v2/models/other/infer", json=v2([1] * 4, [1, 4])).status_code == 404

    samples = scrape(server)
    count = "cnai_inference_requests_total"
    assert samples[(count, labels(model="iris", protocol="v2", code="200"))] == 3
    assert samples[(count, labels(model="iris", protocol="v2", code="400"))] == 2
    assert samples[(count, labels(model="iris", protocol="v1", code="200"))] == 2
    assert not any(dict(lbl).get("model") == "other" for _, lbl in samples)

    duration = "cnai_inference_request_duration_seconds"
    assert samples[(duration + "_count", labels(model="iris", protocol="v2"))] == 5
    assert samples[(duration + "_count", labels(model="iris", protocol="v1"))] == 2
    assert samples[(duration + "_sum", labels(model="iris", protocol="v2"))] > 0
    bounds = sorted(
        float(dict(lbl)["le"])
        for name, lbl in samples
        if name == duration + "_bucket" and dict(lbl)["protocol"] == "v2"
    )
    assert bounds == [*DURATION_BUCKETS, float("inf")]

    # Five predict calls (the 400s never reached the model) of 1+2+3+1+1 rows.
    assert samples[("cnai_inference_batch_size_count", labels(model="iris"))] == 5
    assert samples[("cnai_inference_batch_size_sum", labels(model="iris"))] == 8
    assert samples[("cnai_inference_queue_depth", labels(model="iris"))] == 0
    assert samples[("cnai_inference_model_ready", labels(model="iris"))] == 1
    assert samples[("process_resident_memory_bytes", ())] > 0


def test_a_model_that_failed_to_load_shows_not_ready_and_its_503s(
    serve: Serve, tmp_path: Path
) -> None:
    corrupt = tmp_path / "model.pkl"
    corrupt.write_bytes(b"garbage")
    server = serve(corrupt)
    assert server.client.post("/v2/models/iris/infer", json=v2([1] * 4, [1, 4])).status_code == 503
    samples = scrape(server)
    assert samples[("cnai_inference_model_ready", labels(model="iris"))] == 0
    key = ("cnai_inference_requests_total", labels(model="iris", protocol="v2", code="503"))
    assert samples[key] == 1


def test_each_server_counts_in_its_own_registry() -> None:
    first, second = ServerMetrics(), ServerMetrics()
    first.for_model("m").observe("v2", 200, 0.001)
    first.for_model("m").observe("v2", 418, 0.001)
    assert b'cnai_inference_requests_total{code="418",model="m",protocol="v2"} 1.0' in (
        first.render()
    )
    assert b"cnai_inference_requests_total{" not in second.render()


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_the_200_series_exists_before_the_first_request(protocol: str) -> None:
    metrics = ServerMetrics()
    metrics.for_model("m")
    text = metrics.render().decode()
    assert (
        f'cnai_inference_requests_total{{code="200",model="m",protocol="{protocol}"}} 0.0' in text
    )
