"""The model server's Prometheus metrics, served on its ``/metrics``.

Each server has its own ``CollectorRegistry`` rather than prometheus-client's global one,
so that two servers in one process (tests, an embedded platform) never share counts, and
the scrape shows exactly these series plus the process's own (CPU, memory, open files):

- ``cnai_inference_requests_total{model,protocol,code}``: inference requests answered;
- ``cnai_inference_request_duration_seconds{model,protocol}``: their latency in the
  server, from the request reaching the application (headers parsed) to its answer
  handed to the connection, in buckets from 0.5 ms to 5 s;
- ``cnai_inference_batch_size{model}``: rows per predict call (1 without batching);
- ``cnai_inference_queue_depth{model}``: inference requests in the server, waiting for
  a batch or being predicted (the concurrency an autoscaler scales on);
- ``cnai_inference_model_ready{model}``: 1 once the model is loaded, 0 before or if it
  failed.

Only requests to the served model are counted: a request naming another model gets its
404 but adds no series, so that clients cannot grow the label set without bound.

The request path pays for a counter increment and a histogram observation on label
children bound once (``labels()`` hashes and locks on every call): about 2 us together.
The queue depth is a plain counter the gauge reads when scraped.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

PROTOCOLS = ("v1", "v2")
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    """The metric families of one server, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "cnai_inference_requests",
            "Inference requests answered, by model, protocol and HTTP status code.",
            ["model", "protocol", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "cnai_inference_request_duration_seconds",
            "Time to answer an inference request, in seconds.",
            ["model", "protocol"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "cnai_inference_batch_size",
            "Rows per predict call.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "cnai_inference_queue_depth",
            "Inference requests in the server: waiting for a batch or being predicted.",
            ["model"],
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "cnai_inference_model_ready",
            "1 when the model is loaded and serving, else 0.",
            ["model"],
            registry=self.registry,
        )

    def for_model(self, name: str) -> ModelMetrics:
        return ModelMetrics(self, name)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class ModelMetrics:
    """One model's label children, bound once for the request path."""

    def __init__(self, metrics: ServerMetrics, model: str) -> None:
        self._metrics = metrics
        self._model = model
        self._durations = {p: metrics.duration.labels(model, p) for p in PROTOCOLS}
        # Codes seen so far; 200 is bound up front so that its series exists (at 0)
        # from the first scrape, as rate() needs.
        self._counts = {(p, 200): metrics.requests.labels(model, p, "200") for p in PROTOCOLS}
        self.batch_size = metrics.batch_size.labels(model)
        # Inference requests in the server, counted by the server on its event loop and
        # read at scrape time: a plain int where the gauge's inc() and dec() take a lock.
        self.in_flight = 0
        metrics.queue_depth.labels(model).set_function(lambda: self.in_flight)
        self.ready = metrics.model_ready.labels(model)

    def observe(self, protocol: str, code: int, seconds: float) -> None:
        """Count one answered inference request and its duration."""
        counter = self._counts.get((protocol, code))
        if counter is None:
            counter = self._metrics.requests.labels(self._model, protocol, str(code))
            self._counts[(protocol, code)] = counter
        counter.inc()
        self._durations[protocol].observe(seconds)
